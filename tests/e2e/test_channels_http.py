"""`orderflow local` with its sandbox channels, as a user meets it: orders arrive from sandbox Shopify,
WooCommerce and Amazon and go through the workflow; `orderflow import` reports a run; credentials stay
out of the API; webhooks are checked by signature."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import httpx
import pytest

from tests.e2e.conftest import TOKEN, start_stack

pytestmark = pytest.mark.e2e
CHANNELS = ("sandbox-shopify", "sandbox-woocommerce", "sandbox-amazon")
SKUS = ("TSHIRT-BLK-M", "MUG-12OZ", "POSTER-A2")


@pytest.fixture(scope="module")
def channel_stack(tmp_path_factory):
    # Schedules 20x faster (the channels' 1-minute imports every 3 s), a new sandbox order every 5 s per
    # shop: enough traffic to see every path, not so much that this 2-core machine (beside the other
    # test worker) falls minutes behind with hundreds of waiting orders.
    stack = start_stack(tmp_path_factory.mktemp("channels"), "--speedup", "20", "--sandbox-order-every", "5")
    yield stack
    if stack["proc"].poll() is None:
        stack["proc"].terminate()
        try:
            stack["proc"].wait(timeout=20)
        except subprocess.TimeoutExpired:
            stack["proc"].kill()


@pytest.fixture(scope="module")
def api(channel_stack):
    with httpx.Client(base_url=channel_stack["url"], headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=30) as client:
        assert client.post("/warehouses", json={"warehouse_id": "sandbox-dc", "name": "Sandbox DC",
                                                "priority": 1}).status_code == 201
        for sku in SKUS:
            assert client.put(f"/inventory/{sku}/sandbox-dc", json={"on_hand": 100_000}).status_code == 200
        yield client


def wait_channel_updates_drained(stack, timeout: float = 60) -> None:
    """Until the stack's channel-updates queue has nothing waiting, delayed or in flight (read with boto3
    from the embedded AWS endpoint the stack writes to its local.json)."""
    import boto3

    from orderflow.queues import CHANNEL_UPDATES

    local = json.loads((stack["state_dir"] / "local.json").read_text())
    sqs = boto3.client("sqs", endpoint_url=local["endpoint"], region_name=local["region"],
                       aws_access_key_id="local", aws_secret_access_key="local")
    url = local["env"][CHANNEL_UPDATES.env_var]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible",
             "ApproximateNumberOfMessagesDelayed"]
    deadline = time.monotonic() + timeout
    while True:
        counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
        if all(int(counts.get(name, 0)) == 0 for name in names):
            return
        assert time.monotonic() < deadline, counts
        time.sleep(0.2)


def orders_by_channel(api, status: str) -> dict[str, list[dict]]:
    found: dict[str, list[dict]] = {}
    for order in api.get("/orders", params={"status": status, "limit": 200}).json()["orders"]:
        found.setdefault(order.get("channel"), []).append(order)
    return found


def test_the_stack_says_which_channels_run(channel_stack, api):
    printed = "".join(channel_stack["output"])
    for channel in CHANNELS:
        assert channel in printed
    assert "rate(1 minute)" in printed and "webhooks" in printed


def test_orders_arrive_from_all_three_sandbox_channels_and_go_through_the_workflow(api):
    deadline = time.monotonic() + 60
    paid: dict[str, list[dict]] = {}
    while time.monotonic() < deadline:
        paid = orders_by_channel(api, "paid")
        if all(paid.get(channel) for channel in CHANNELS):
            break
        time.sleep(0.5)
    assert all(paid.get(channel) for channel in CHANNELS), {c: len(v) for c, v in paid.items()}
    for channel in CHANNELS:
        order = paid[channel][0]
        assert order["external_id"] and order["shipments"][0]["warehouse_id"] == "sandbox-dc"
        tracked = api.post(f"/orders/{order['order_id']}/tracking",
                           json={"carrier": "UPS", "tracking_number": f"1Z{channel[-4:].upper()}0001"})
        assert tracked.status_code == 202, tracked.text
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        done = [api.get(f"/orders/{paid[c][0]['order_id']}").json()["status"] for c in CHANNELS]
        if done == ["completed"] * 3:
            break
        time.sleep(0.2)
    assert done == ["completed"] * 3
    # ... and each channel was told, with the tracking number (Shopify fulfillment, WooCommerce note,
    # Amazon shipment confirmation), through the channel-updates queue.
    urls = {c["channel_id"]: c["base_url"] for c in api.get("/channels").json()["channels"]}
    for channel in CHANNELS:
        number = f"1Z{channel[-4:].upper()}0001"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            told = httpx.get(f"{urls[channel]}/_sandbox/fulfillments").json()["fulfillments"]
            if number in json.dumps(told):
                break
            time.sleep(0.3)
        assert number in json.dumps(told), (channel, told)


def test_an_order_fulfilled_in_the_shop_first_completes_here_and_is_not_echoed(channel_stack, api):
    shop = {c["channel_id"]: c["base_url"] for c in api.get("/channels").json()["channels"]}["sandbox-shopify"]
    external_id = httpx.post(f"{shop}/_sandbox/orders", json={"lines": [{"sku": "MUG-12OZ", "quantity": 1}]}
                             ).json()["id"]

    def ours(*statuses):
        for status in statuses:
            for order in api.get("/orders", params={"status": status, "limit": 200}).json()["orders"]:
                if order.get("channel") == "sandbox-shopify" and order.get("external_id") == external_id:
                    return order
        return None

    deadline = time.monotonic() + 120
    while not ours("paid") and time.monotonic() < deadline:
        time.sleep(0.3)
    order = ours("paid")
    assert order, "the webhook's order did not reach paid"
    assert httpx.post(f"{shop}/_sandbox/orders/{external_id}/fulfill").status_code == 200  # the seller, in Shopify
    deadline = time.monotonic() + 90
    while api.get(f"/orders/{order['order_id']}").json()["status"] != "completed" and time.monotonic() < deadline:
        time.sleep(0.3)
    done = api.get(f"/orders/{order['order_id']}").json()
    if done["status"] != "completed" or done["shipments"][0]["channel_update"] != "on_channel":
        print("events:", *[f"  {e['at']} {e['type']}: {(e.get('detail') or '')[:160]}" for e in done["events"]],
              "shipments:", json.dumps(done["shipments"])[:1500], sep="\n")
        print("webhooks:", [w for w in httpx.get(f"{shop}/_sandbox/webhooks").json()["webhooks"]
                            if w.get("order_id") == external_id])
        print("channel:", json.dumps([c for c in api.get("/channels").json()["channels"]
                                      if c["channel_id"] == "sandbox-shopify"])[:1500])
        print("stack said:", *[line[:300] for line in channel_stack["output"]
                               if order["order_id"] in line or "WARN" in line or "ERROR" in line][-30:], sep="\n")
    assert (done["status"], done["shipments"][0]["channel_update"]) == ("completed", "on_channel")
    wait_channel_updates_drained(channel_stack)  # nothing was queued to tell it (no echo)
    told = httpx.get(f"{shop}/_sandbox/fulfillments").json()["fulfillments"]
    assert not [f for f in told if f["order_id"] == external_id]  # no echo


def test_orderflow_import_runs_an_import_now_and_reports_it(channel_stack, api):
    result = subprocess.run([sys.executable, "-m", "orderflow.cli", "import", "sandbox-amazon", "--state-dir",
                             str(channel_stack["state_dir"])], capture_output=True, text=True, timeout=180,
                            env=channel_stack["env"])
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("sandbox-amazon: ") and " new, " in result.stdout and " skipped, " in result.stdout
    as_json = subprocess.run([sys.executable, "-m", "orderflow.cli", "import", "sandbox-woocommerce", "--json",
                              "--state-dir", str(channel_stack["state_dir"])], capture_output=True, text=True,
                             timeout=180, env=channel_stack["env"])
    report = json.loads(as_json.stdout)
    assert {"new", "updated", "skipped", "failed"} <= set(report) and report["channel_id"] == "sandbox-woocommerce"
    missing = subprocess.run([sys.executable, "-m", "orderflow.cli", "import", "no-such-channel", "--state-dir",
                              str(channel_stack["state_dir"])], capture_output=True, text=True, timeout=180,
                             env=channel_stack["env"])
    assert missing.returncode == 1 and "404" in missing.stderr


def test_channels_show_their_imports_but_never_their_credentials(channel_stack, api):
    channels = {c["channel_id"]: c for c in api.get("/channels").json()["channels"]}
    assert set(CHANNELS) <= set(channels)
    for channel in CHANNELS:
        assert channels[channel]["credentials"]["stored"] is True
        assert channels[channel]["import"]["last_run"] is not None
    credentials_file = channel_stack["state_dir"] / "channel-credentials.json"
    assert credentials_file.stat().st_mode & 0o777 == 0o600
    secrets = json.loads(credentials_file.read_text())
    listing = api.get("/channels").text
    for values in secrets.values():
        for value in values.values():
            assert value not in listing


def test_webhooks_need_the_channels_signature_and_everything_else_the_token(channel_stack, api):
    url = channel_stack["url"]
    forged = httpx.post(f"{url}/webhooks/sandbox-shopify", content=b'{"id": 1}',
                        headers={"X-Shopify-Topic": "orders/create", "X-Shopify-Hmac-Sha256": "bm9wZQ=="})
    assert forged.status_code == 401 and forged.json()["error"]["code"] == "invalid_signature"
    assert httpx.get(f"{url}/channels").status_code == 401
    assert httpx.post(f"{url}/channels/sandbox-shopify/import").status_code == 401


def test_the_sandboxes_record_the_quantities_pushed_to_them(api):
    from orderflow.channels.clients import client_for
    from orderflow.channels.config import config_from, credentials_from

    stored = {c["channel_id"]: c for c in api.get("/channels").json()["channels"]}
    sandbox_credentials = {  # the sandbox shops' built-in credentials
        "sandbox-shopify": {"access_token": "shpat_sandbox"},
        "sandbox-woocommerce": {"consumer_key": "ck_sandbox", "consumer_secret": "cs_sandbox"},
        "sandbox-amazon": {"client_id": "amzn1.application-oa2-client.sandbox",
                           "client_secret": "sandbox-client-secret", "refresh_token": "Atzr|sandbox-refresh"},
    }
    for channel in CHANNELS:
        config = config_from({k: v for k, v in stored[channel].items()
                              if k not in ("credentials", "schedule", "import")})
        client = client_for(config, credentials_from(config.type, sandbox_credentials[channel]))
        client.push_inventory("MUG-12OZ", 42)
        client.close()
        inventory = httpx.get(f"{config.base_url}/_sandbox/inventory").json()
        assert inventory["levels"]["MUG-12OZ"] == 42 and inventory["pushes"][-1]["quantity"] == 42
