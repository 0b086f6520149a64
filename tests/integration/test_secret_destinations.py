"""Security review, issue 11, over the local stack's HTTP API.

Item 3: a stored secret is never sent somewhere new unless the request that says where brings the secret
again: channel ``base_url``/``lwa_url``, FBA ``endpoint``/``lwa_url``, carrier ``base_url``, SFTP
``host``/``port``/host key. Otherwise 422 naming the field, and the stored configuration is untouched.
Item 4: changing a channel's ``type`` needs credentials; stored credentials of the wrong type never
leak their values (GET /channels, the import's answer and ``last_run``) and never 500 GET /channels.
Item 15: carrier ids that used to share an ``ORDERFLOW_CARRIER_KEY_`` variable do not.
"""

from __future__ import annotations

import httpx
import pytest

from orderflow.adapters.channel_store import ChannelStore, SecretsManagerCredentials
from orderflow.api import channels as channels_api
from orderflow.carriers.accounts import env_key_name
from orderflow.channels.config import AmazonConfig, ImportSchedule, ShopifyCredentials
from tests.integration.conftest import add_warehouse

EVIL = "https://collector.evil.example"
OFF = {"every_minutes": 60, "enabled": False}  # these channels point nowhere real: never polled


@pytest.fixture
def api(stack):
    with httpx.Client(base_url=stack.api_url, headers={"Authorization": "Bearer test-token"}, timeout=30) as http:
        yield http


@pytest.fixture(autouse=True)
def forget_channels(stack, uid):
    yield
    for config in ChannelStore().list():
        if uid in config.channel_id:
            channels_api.schedules().delete(config.channel_id)
            channels_api.credential_store().delete(config.channel_id)
            ChannelStore().delete(config.channel_id)


def refused(resp: httpx.Response, field: str) -> None:
    assert resp.status_code == 422, resp.text
    assert resp.json()["error"]["details"]["field"] == field, resp.text


def shopify(channel_id: str, **extra) -> dict:
    return {"channel_id": channel_id, "type": "shopify", "base_url": "https://shop.example.com",
            "import_schedule": OFF, **extra}


def amazon(channel_id: str, **extra) -> dict:
    return {"channel_id": channel_id, "type": "amazon", "base_url": "https://sellingpartnerapi-na.amazon.com",
            "seller_id": "A1SELLER", "marketplace_ids": ["ATVPDKIKX0DER"], "import_schedule": OFF, **extra}


def amazon_credentials(uid: str) -> dict:
    return {"client_id": f"amzn1.app.{uid}", "client_secret": f"lwa-secret-{uid}", "refresh_token": f"Atzr|{uid}"}


# -- item 3: channels -------------------------------------------------------------------------------------------


def test_a_channels_base_url_changes_only_with_its_credentials(api, uid):
    channel_id = f"dest-shop-{uid}"
    token = f"shpat_{uid}"
    assert api.post("/channels", json={**shopify(channel_id), "credentials": {"access_token": token}}).status_code == 201

    refused(api.post("/channels", json=shopify(channel_id, base_url=EVIL)), "body.credentials")
    assert api.get(f"/channels/{channel_id}").json()["base_url"] == "https://shop.example.com"  # untouched
    # the rest of the configuration may change without them
    renamed = api.post("/channels", json=shopify(channel_id, name="Renamed"))
    assert renamed.status_code == 200 and renamed.json()["credentials"]["stored"] is True
    # with the credentials in the same request, it may move
    moved = api.post("/channels", json={**shopify(channel_id, base_url=EVIL), "credentials": {"access_token": token}})
    assert moved.status_code == 200 and moved.json()["base_url"] == EVIL


def test_an_amazon_channels_lwa_url_changes_only_with_its_credentials(api, uid):
    channel_id = f"dest-amzn-{uid}"
    assert api.post("/channels", json={**amazon(channel_id), "credentials": amazon_credentials(uid)}).status_code == 201
    refused(api.post("/channels", json=amazon(channel_id, lwa_url=EVIL)), "body.credentials")
    assert api.get(f"/channels/{channel_id}").json()["lwa_url"] == "https://api.amazon.com"
    moved = api.post("/channels", json={**amazon(channel_id, lwa_url=EVIL), "credentials": amazon_credentials(uid)})
    assert moved.status_code == 200 and moved.json()["lwa_url"] == EVIL


# -- item 4: another type, and stored credentials of the wrong type ---------------------------------------------


def test_changing_a_channels_type_needs_credentials_and_nothing_leaks(api, uid):
    channel_id = f"retype-{uid}"
    token = f"shpat_secret_{uid}"
    assert api.post("/channels", json={**shopify(channel_id), "credentials": {"access_token": token}}).status_code == 201

    retyped = api.post("/channels", json=amazon(channel_id, base_url="https://shop.example.com"))
    refused(retyped, "body.credentials")
    assert token not in retyped.text
    assert api.get(f"/channels/{channel_id}").json()["type"] == "shopify"  # untouched
    listed = api.get("/channels")
    assert listed.status_code == 200 and token not in listed.text
    # with credentials for the new type it may change
    ok = api.post("/channels", json={**amazon(channel_id, base_url="https://shop.example.com"),
                                     "credentials": amazon_credentials(uid)})
    assert ok.status_code == 200 and ok.json()["type"] == "amazon"


def test_stored_credentials_of_the_wrong_type_never_leak_nor_break_the_list(api, uid):
    """Credentials written for a Shopify channel under what is now an Amazon channel (e.g. by an older
    version, before a type change needed credentials): shown as invalid, never spelled out."""
    channel_id = f"mixed-{uid}"
    token = f"shpat_leak_{uid}"
    ChannelStore().put(AmazonConfig(channel_id=channel_id, base_url="http://127.0.0.1:9", seller_id="S",
                                    marketplace_ids=["ATVPDKIKX0DER"], import_schedule=ImportSchedule(enabled=False)))
    SecretsManagerCredentials().put(channel_id, ShopifyCredentials(access_token=token, webhook_secret=token))

    listed = api.get("/channels")
    assert listed.status_code == 200, listed.text
    assert token not in listed.text
    shown = api.get(f"/channels/{channel_id}")
    assert shown.status_code == 200 and token not in shown.text
    assert shown.json()["credentials"]["stored"] is True and shown.json()["credentials"]["valid"] is False

    imported = api.post(f"/channels/{channel_id}/import")
    assert imported.status_code == 422 and token not in imported.text
    assert imported.json()["error"]["details"]["field"] == "credentials"
    last_run = api.get(f"/channels/{channel_id}").json()["import"]["last_run"]
    assert last_run and token not in str(last_run)
    assert token not in str(ChannelStore().cursor(channel_id).last_run)


# -- item 3: FBA endpoints ----------------------------------------------------------------------------------------


def test_an_fba_accounts_endpoints_change_only_with_the_channels_credentials(api, ports, uid):
    channel_id = f"fba-chan-{uid}"
    credentials = amazon_credentials(uid)
    assert api.post("/channels", json={**amazon(channel_id), "credentials": credentials}).status_code == 201
    warehouse_id = f"fba-dest-{uid}"
    add_warehouse(ports, warehouse_id, kind="fba")
    assert api.put(f"/fba/{warehouse_id}", json={"channel_id": channel_id}).status_code == 201

    for field in ("endpoint", "lwa_url"):
        refused(api.put(f"/fba/{warehouse_id}", json={"channel_id": channel_id, field: EVIL}), "credentials")
        wrong = {**credentials, "refresh_token": "Atzr|guess"}
        refused(api.put(f"/fba/{warehouse_id}", json={"channel_id": channel_id, field: EVIL, "credentials": wrong}),
                "credentials")
    stored = api.get(f"/fba/{warehouse_id}").json()
    assert stored.get("endpoint") is None and stored.get("lwa_url") is None  # untouched

    # the channel's own endpoint needs nothing more
    own = api.put(f"/fba/{warehouse_id}", json={"channel_id": channel_id,
                                                 "endpoint": "https://sellingpartnerapi-na.amazon.com"})
    assert own.status_code == 200, own.text
    moved = api.put(f"/fba/{warehouse_id}", json={"channel_id": channel_id, "endpoint": EVIL,
                                                   "credentials": credentials})
    assert moved.status_code == 200 and moved.json()["endpoint"] == EVIL and "credentials" not in moved.json()
    assert credentials["client_secret"] not in moved.text
    # the same endpoint again (another comment) needs nothing more; another one does
    again = api.put(f"/fba/{warehouse_id}", json={"channel_id": channel_id, "endpoint": EVIL, "comment": "Thanks"})
    assert again.status_code == 200, again.text
    refused(api.put(f"/fba/{warehouse_id}", json={"channel_id": channel_id, "endpoint": EVIL + ".two"}),
            "credentials")
    assert api.get(f"/fba/{warehouse_id}").json()["endpoint"] == EVIL


# -- item 3 and 15: carriers --------------------------------------------------------------------------------------


def test_a_carriers_base_url_changes_only_with_its_key(api, uid):
    carrier_id = f"ep-dest-{uid}"
    key = f"EZTK{uid}"
    assert api.put(f"/carriers/{carrier_id}", json={"type": "easypost", "api_key": key}).status_code == 201
    refused(api.put(f"/carriers/{carrier_id}", json={"type": "easypost", "base_url": EVIL}), "api_key")
    refused(api.put(f"/carriers/{carrier_id}", json={"type": "shippo", "base_url": EVIL}), "api_key")
    assert api.get(f"/carriers/{carrier_id}").json()["base_url"] == "https://api.easypost.com"  # untouched
    assert api.put(f"/carriers/{carrier_id}", json={"type": "easypost", "name": "Main"}).status_code == 200
    moved = api.put(f"/carriers/{carrier_id}", json={"type": "easypost", "base_url": EVIL, "api_key": key})
    assert moved.status_code == 200 and moved.json()["base_url"] == EVIL and key not in moved.text


def test_a_key_from_the_environment_goes_to_a_new_base_url_only_when_given(api, uid, monkeypatch):
    carrier_id = f"env-dest-{uid}"
    key = f"EZTK_env_{uid}"
    monkeypatch.setenv(env_key_name(carrier_id), key)
    # a new account on the carrier's public API may use it
    assert api.put(f"/carriers/{carrier_id}", json={"type": "easypost"}).status_code == 201
    refused(api.put(f"/carriers/{carrier_id}", json={"type": "easypost", "base_url": EVIL}), "api_key")
    # the environment's key wins over a stored one: another key would not stop it from going there
    refused(api.put(f"/carriers/{carrier_id}", json={"type": "easypost", "base_url": EVIL, "api_key": "other"}),
            "api_key")
    assert api.get(f"/carriers/{carrier_id}").json()["base_url"] == "https://api.easypost.com"
    moved = api.put(f"/carriers/{carrier_id}", json={"type": "easypost", "base_url": EVIL, "api_key": key})
    assert moved.status_code == 200, moved.text
    # a new account somewhere else, under an id whose variable is set, needs the key too
    other = f"env-new-{uid}"
    monkeypatch.setenv(env_key_name(other), key)
    refused(api.put(f"/carriers/{other}", json={"type": "easypost", "base_url": EVIL}), "api_key")


def test_carrier_ids_differing_in_dash_and_underscore_do_not_share_a_key(api, uid, monkeypatch):
    key = f"EZTK_dash_{uid}"
    monkeypatch.setenv(env_key_name(f"ups-{uid}"), key)
    assert api.put(f"/carriers/ups-{uid}", json={"type": "easypost"}).json()["has_api_key"] is True
    # ups_<uid> has no key of its own: it must not borrow ups-<uid>'s
    refused(api.put(f"/carriers/ups_{uid}", json={"type": "easypost"}), "api_key")


# -- item 3: SFTP suppliers ---------------------------------------------------------------------------------------


def test_a_suppliers_sftp_server_changes_only_with_its_credentials(api, ports, uid):
    from orderflow.models import Warehouse

    warehouse_id = f"sup-dest-{uid}"
    ports.settings.put_warehouse(Warehouse(warehouse_id=warehouse_id, name=warehouse_id, kind="dropship"))
    sftp = {"host": "sftp.example.com", "port": 22, "username": "acme",
            "host_key_fingerprint": "SHA256:" + "A" * 43}
    password = f"pw-{uid}"
    body = {"enabled": False, "sftp": sftp}  # disabled: never polled
    assert api.put(f"/suppliers/{warehouse_id}", json={**body, "credentials": {"password": password}}).status_code == 201

    for change in ({"host": "sftp.evil.example"}, {"port": 2222}, {"host_key_fingerprint": "SHA256:" + "B" * 43}):
        resp = api.put(f"/suppliers/{warehouse_id}", json={**body, "sftp": {**sftp, **change}})
        refused(resp, "credentials")
        assert password not in resp.text
    assert api.get(f"/suppliers/{warehouse_id}").json()["sftp"] == {**sftp, "accept_unknown_host_key": False,
                                                                    "timeout_seconds": 15}
    # the rest may change without them (the user name too: the same server)
    assert api.put(f"/suppliers/{warehouse_id}", json={**body, "name": "Acme",
                                                       "sftp": {**sftp, "username": "acme2"}}).status_code == 200
    moved = api.put(f"/suppliers/{warehouse_id}", json={**body, "sftp": {**sftp, "host": "sftp2.example.com"},
                                                        "credentials": {"password": password}})
    assert moved.status_code == 200 and moved.json()["sftp"]["host"] == "sftp2.example.com"
