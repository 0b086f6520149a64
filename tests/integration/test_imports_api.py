"""Channels over the local stack's HTTP API: connect one, import now, webhooks with good and bad
signatures, credentials kept out of the table and the logs, one schedule per channel, the handler."""

from __future__ import annotations

import json
import logging
import time
import uuid
from decimal import Decimal

import httpx
import pytest

from orderflow.adapters.aws import client
from orderflow.adapters.channel_store import (
    SCHEDULE_GROUP_ENV,
    SCHEDULER_ROLE_ENV,
    ChannelStore,
    SecretsManagerCredentials,
)
from orderflow.api import channels as channels_api
from orderflow.channels.webhooks import sign
from orderflow.models import OrderStatus
from orderflow.settings import get_settings
from orderflow_local.lambda_binding import LocalLambdaContext
from orderflow_local.sandbox import AmazonSandbox, ShopifySandbox, WooCommerceSandbox
from orderflow_local.scheduler import LocalScheduler
from tests.integration.conftest import add_warehouse, wait_for


@pytest.fixture
def api(stack):
    with httpx.Client(base_url=stack.api_url, headers={"Authorization": "Bearer test-token"}, timeout=30) as http:
        yield http


@pytest.fixture(autouse=True)
def forget_channels(stack, uid):
    """Each test's channels are disconnected after it (the stack is shared by the session)."""
    yield
    for config in ChannelStore().list():
        if uid in config.channel_id:
            channels_api.schedules().delete(config.channel_id)
            channels_api.credential_store().delete(config.channel_id)
            ChannelStore().delete(config.channel_id)


@pytest.fixture
def stocked(ports, uid):
    skus = {f"A-{uid}": Decimal("10.00"), f"B-{uid}": Decimal("3.00")}
    add_warehouse(ports, f"w-{uid}")
    for sku in skus:
        ports.inventory.set_on_hand(sku, f"w-{uid}", 500)
    return skus


@pytest.fixture
def shops(stack, stocked, uid):
    """A Shopify and a WooCommerce sandbox that send their signed webhooks to the stack's API."""
    secret = f"whsec-{uid}"
    made = {
        "shopify": ShopifySandbox(catalog=stocked, webhook_url=f"{stack.api_url}/webhooks/shop-{uid}",
                                  webhook_secret=secret),
        "woocommerce": WooCommerceSandbox(catalog=stocked, webhook_url=f"{stack.api_url}/webhooks/woo-{uid}",
                                          webhook_secret=secret),
    }
    for shop in made.values():
        shop.start()
    yield made
    for shop in made.values():
        shop.stop()


def post_channel(api, shop, channel_id: str, **extra) -> httpx.Response:
    config, credentials = shop.channel(channel_id, **extra)
    body = {**config.model_dump(mode="json"), "credentials": {
        k: v.get_secret_value() for k, v in credentials if v is not None}}
    return api.post("/channels", json=body)


def wait_until(check, timeout: float = 20):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError("condition not met in time")


def import_when_free(api, channel_id: str, **params) -> dict:
    """POST /channels/{id}/import; while the channel's schedule has its own run going (the channel answers
    "busy": its schedule may fire at any time), asked again once that run ended."""
    return wait_until(lambda: (r := api.post(f"/channels/{channel_id}/import", params=params).json())
                      .get("stopped") != "busy" and r, timeout=60)


def test_connect_a_channel_and_import_now(api, ports, shops, uid):
    shop = shops["shopify"]
    shop.webhook_url = None  # polling only here
    ids = [shop.add_order() for _ in range(4)]
    # its schedule off: the local scheduler runs a new schedule at once, and this test counts what the
    # API's import does (the schedule's own run is test_each_channel_gets_its_schedule_and_the_local_stack_runs_it)
    created = post_channel(api, shop, f"shop-{uid}", page_size=2, name="My shop",
                           import_schedule={"every_minutes": 5, "enabled": False})
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["credentials"] == {"stored": True, "fields": ["access_token", "webhook_secret"]}
    assert body["schedule"]["expression"] == "rate(5 minutes)"
    report = api.post(f"/channels/shop-{uid}/import")
    assert report.status_code == 200, report.text
    assert {k: report.json()[k] for k in ("new", "updated", "skipped", "failed", "pages", "more")} == \
        {"new": 4, "updated": 0, "skipped": 0, "failed": 0, "pages": 2, "more": False}
    for external_id in ids:
        wait_for(ports, ports.orders.find_by_channel_ref(f"shop-{uid}", external_id).order_id, OrderStatus.PAID)
    listed = {c["channel_id"]: c for c in api.get("/channels").json()["channels"]}
    assert listed[f"shop-{uid}"]["import"]["last_run"]["new"] == 4
    assert listed[f"shop-{uid}"]["import"]["last_run"]["failed"] == 0
    assert listed[f"shop-{uid}"]["import"]["watermark"]
    again = api.post(f"/channels/shop-{uid}/import", params={"max_pages": 1}).json()
    assert (again["new"], again["skipped"], again["more"], again["stopped"]) == (0, 2, True, "page_limit")


def test_credentials_live_in_secrets_manager_never_in_the_settings_table_or_the_logs(api, shops, uid, caplog):
    shop = shops["woocommerce"]
    shop.webhook_url = None
    shop.consumer_secret = f"cs_{uuid.uuid4().hex}"
    caplog.set_level(logging.DEBUG, logger="orderflow")  # all of ours, even debug (botocore debug dumps bodies)
    assert post_channel(api, shop, f"woo-{uid}").status_code == 201
    shop.add_order()
    assert api.post(f"/channels/woo-{uid}/import").json()["new"] == 1
    item = client("dynamodb").get_item(TableName=get_settings().settings_table,
                                       Key={"entity": {"S": "channel"}, "id": {"S": f"woo-{uid}"}})["Item"]
    assert shop.consumer_secret not in json.dumps(item) and "credentials" not in item
    secret = client("secretsmanager").get_secret_value(SecretId=f"orderflow/channels/woo-{uid}")
    assert json.loads(secret["SecretString"])["consumer_secret"] == shop.consumer_secret
    assert shop.consumer_secret not in api.get(f"/channels/woo-{uid}").text
    assert shop.consumer_secret not in caplog.text
    stored = SecretsManagerCredentials().get(f"woo-{uid}", "woocommerce")
    assert stored.consumer_secret.get_secret_value() == shop.consumer_secret


def test_channel_mistakes_are_4xx_naming_the_field(api, shops, uid):
    shop = shops["shopify"]
    no_credentials = shop.channel(f"nocred-{uid}")[0].model_dump(mode="json")
    refused = api.post("/channels", json=no_credentials)
    assert refused.status_code == 422 and "credentials" in refused.text
    bad = api.post("/channels", json={"channel_id": f"x-{uid}", "type": "shopify", "base_url": "http://evil.example.com",
                                      "credentials": {"access_token": "t"}})
    assert bad.status_code == 422 and "base_url" in bad.json()["error"]["message"]
    unknown_type = api.post("/channels", json={"channel_id": f"x-{uid}", "type": "ebay", "base_url": "https://e.com"})
    assert unknown_type.status_code == 422
    assert api.get(f"/channels/none-{uid}").status_code == 404
    assert api.post(f"/channels/none-{uid}/import").status_code == 404
    # updating without credentials keeps the stored ones (no schedule: its first run would hold the
    # channel's lease, and the import below would answer 200 "busy" instead of trying the credentials)
    manual = {"import_schedule": {"every_minutes": 5, "enabled": False}}
    assert post_channel(api, shop, f"upd-{uid}", **manual).status_code == 201
    update = api.post("/channels", json={**shop.channel(f"upd-{uid}", **manual)[0].model_dump(mode="json"),
                                         "name": "Renamed"})
    assert update.status_code == 200 and update.json()["credentials"]["stored"] is True
    # a channel that refuses our credentials: a 502 naming the reason, nothing stored
    shop.access_token = "rotated"
    failed = api.post(f"/channels/upd-{uid}/import")
    assert failed.status_code == 502 and failed.json()["error"]["code"] == "channel_auth_failed"


@pytest.mark.parametrize("kind", ["shopify", "woocommerce"])
def test_signed_webhooks_import_the_order_once_and_bad_signatures_are_refused(stack, api, ports, shops, uid, kind):
    shop = shops[kind]
    channel_id = f"{'shop' if kind == 'shopify' else 'woo'}-{uid}"
    assert post_channel(api, shop, channel_id).status_code == 201
    external_id = shop.add_order()  # the shop sends its webhook to the stack (no bearer token: its signature)
    order = wait_until(lambda: ports.orders.find_by_channel_ref(channel_id, external_id))
    wait_for(ports, order.order_id, OrderStatus.PAID)
    url, headers, body = shop.webhook(external_id, "paid")
    replay = [httpx.post(url, content=body, headers=headers) for _ in range(2)]
    assert [r.status_code for r in replay] == [200, 200]
    assert replay[1].json()["status"] == "duplicate"  # the same event id again
    forged = httpx.post(url, content=body.replace(b'"', b" ", 1), headers=headers)
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_signature"
    signature = "X-Shopify-Hmac-Sha256" if kind == "shopify" else "X-WC-Webhook-Signature"
    wrong = httpx.post(url, content=body, headers={**headers, signature: sign(body, "not-the-secret")})
    assert wrong.status_code == 401
    # the poll finds the same order: still one order
    report = import_when_free(api, channel_id)
    assert report["new"] == 0 and report["skipped"] >= 1
    assert ports.orders.find_by_channel_ref(channel_id, external_id).order_id == order.order_id


def test_webhooks_for_unknown_channels_and_amazon_are_refused_alike_so_ids_cannot_be_probed(stack, api, uid):
    unknown = httpx.post(f"{stack.api_url}/webhooks/none-{uid}", content=b"{}")
    with AmazonSandbox(settle_seconds=0) as amazon:
        config, credentials = amazon.channel(f"amz-{uid}")
        body = {**config.model_dump(mode="json"),
                "credentials": {k: v.get_secret_value() for k, v in credentials}}
        assert api.post("/channels", json=body).status_code == 201
    amazon_channel = httpx.post(f"{stack.api_url}/webhooks/amz-{uid}", content=b"{}")
    assert unknown.status_code == amazon_channel.status_code == 401
    assert unknown.json()["error"]["message"] == amazon_channel.json()["error"]["message"]
    assert unknown.json()["error"]["code"] == "invalid_signature"


def test_each_channel_gets_its_schedule_and_the_local_stack_runs_it(api, ports, shops, uid, stack):
    """POST /channels creates the channel's schedule in the template's import schedule group (the API function
    is told the group, role and import function by CDK); the local stack fires it like EventBridge Scheduler."""
    from orderflow_local.schedules import ScheduleRunner

    group = stack.deployment.functions["api"].environment[SCHEDULE_GROUP_ENV]
    import_function = stack.deployment.functions["import_orders"]
    shop = shops["woocommerce"]
    shop.webhook_url = None
    response = post_channel(api, shop, f"woo-{uid}", import_schedule={"every_minutes": 2})
    assert response.json()["schedule"]["name"] == f"{group}/woo-{uid}"
    schedule = client("scheduler").get_schedule(Name=f"woo-{uid}", GroupName=group)
    assert schedule["ScheduleExpression"] == "rate(2 minutes)" and schedule["State"] == "ENABLED"
    assert json.loads(schedule["Target"]["Input"]) == {"channel_id": f"woo-{uid}"}
    assert schedule["Target"]["Arn"] == import_function.arn
    assert schedule["Target"]["RoleArn"] == stack.deployment.functions["api"].environment[SCHEDULER_ROLE_ENV]

    scheduler = LocalScheduler(speedup=1)
    runner = ScheduleRunner(scheduler, {import_function.physical_name: "import_orders"})
    runner.sync()
    job = scheduler.jobs[f"schedule:{group}/woo-{uid}"]
    assert job.every_seconds == 120
    external_id = shop.add_order()
    report = scheduler.run_now(f"schedule:{group}/woo-{uid}")  # what EventBridge Scheduler does on AWS
    assert report["new"] == 1 and ports.orders.find_by_channel_ref(f"woo-{uid}", external_id)
    post_channel(api, shop, f"woo-{uid}", import_schedule={"every_minutes": 2, "enabled": False})
    runner.sync()
    assert f"schedule:{group}/woo-{uid}" not in scheduler.jobs


def test_the_import_function_imports_the_channel_its_schedule_names(ports, shops, uid):
    from functions.import_orders.handler import lambda_handler

    shop = shops["woocommerce"]
    shop.webhook_url = None
    config, credentials = shop.channel(f"woo-{uid}", page_size=1)
    channels_api.credential_store().put(config.channel_id, credentials)
    ChannelStore().put(config)
    shop.add_order()
    shop.add_order()
    context = LocalLambdaContext(function_name="orderflow-import-orders")
    first = lambda_handler({"channel_id": f"woo-{uid}", "max_pages": 1}, context)
    assert (first["new"], first["more"], first["stopped"]) == (1, True, "page_limit")
    rest = lambda_handler({"channel_id": f"woo-{uid}"}, context)
    assert (rest["new"], rest["more"]) == (1, False)
    for bad in ({}, {"channel_id": "no spaces allowed"}, {"channel_id": f"woo-{uid}", "extra": 1}):
        with pytest.raises(ValueError):
            lambda_handler(bad, context)


def test_a_woocommerce_deletion_is_confirmed_with_the_store_before_it_cancels(stack, api, ports, shops, uid):
    """The topic header is not signed: a captured order body replayed as ``order.deleted`` with a fresh
    delivery id must not cancel the order; a deletion the store confirms does."""
    shop = shops["woocommerce"]
    channel_id = f"woo-{uid}"
    assert post_channel(api, shop, channel_id).status_code == 201
    external_id = shop.add_order()
    order = wait_until(lambda: ports.orders.find_by_channel_ref(channel_id, external_id))
    wait_for(ports, order.order_id, OrderStatus.PAID)
    url, headers, body = shop.webhook(external_id, "paid")  # captured: a valid signature over this body
    replayed = httpx.post(url, content=body, headers={**headers, "X-WC-Webhook-Topic": "order.deleted",
                                                     "X-WC-Webhook-Delivery-ID": "replayed-1"})
    assert replayed.status_code == 200 and replayed.json()["status"] == "ignored", replayed.text
    assert ports.orders.get(order.order_id).status == OrderStatus.PAID
    shop.delete(external_id)  # the seller really deletes it: the store's own webhook is believed
    wait_for(ports, order.order_id, OrderStatus.CANCELLED)
