"""Stock auto-sync through the real queue to real sandbox channels (Shopify, WooCommerce, Amazon)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from orderflow import service
from orderflow.adapters.channel_store import ChannelStore, default_credentials
from orderflow.channels.stock_sync import sync_all
from orderflow.queues import STOCK_SYNC
from orderflow_local.sandbox.amazon import AmazonSandbox
from orderflow_local.sandbox.shopify import ShopifySandbox
from orderflow_local.sandbox.woocommerce import WooCommerceSandbox
from tests.integration.conftest import add_warehouse, make_order, wait_for

SHOPS = {"shopify": ShopifySandbox, "woocommerce": WooCommerceSandbox, "amazon": AmazonSandbox}


@pytest.fixture
def shops(stack, ports, uid):
    """One sandbox shop of each kind with auto-sync on, selling SKU-<uid> from two warehouses."""
    sku = f"SYNC-{uid}"
    started = {}
    for kind, cls in SHOPS.items():
        options = {"settle_seconds": 0, "rate": 200.0, "burst": 200} if kind == "amazon" else {}
        shop = cls(catalog={sku: Decimal("5.00")}, order_every=None, **options).start()
        config, credentials = shop.channel(f"{kind[:4]}-sync-{uid}", auto_sync_stock=True)
        default_credentials().put(config.channel_id, credentials)
        ChannelStore().put(config)
        started[kind] = shop
    add_warehouse(ports, f"a-{uid}", priority=1)
    add_warehouse(ports, f"b-{uid}", priority=2)
    add_warehouse(ports, f"fba-{uid}", kind="fba", priority=3)
    fresh_containers(ports)
    yield sku, started
    for shop in started.values():
        shop.stop()
    store = ChannelStore()
    for config in store.list():
        if uid in config.channel_id:
            store.delete(config.channel_id)
    fresh_containers(ports)


def fresh_containers(ports):
    """Every function's next run starts as a new container (on AWS each keeps its own channel list for
    Channels.CACHE_SECONDS): the sync function sees these shops at once, and not the stopped ones after.
    The test's own ports (the container the test's stock changes run in) read the channels again too:
    a list read by the test before within CACHE_SECONDS had no auto-sync channel, so its stock changes
    asked for no sync (seen in CI: nothing reached any shop)."""
    from orderflow.wiring import default_ports

    default_ports.cache_clear()
    ports.channels.list(fresh=True)


def last_pushed(shop, sku):
    return shop.inventory()["levels"].get(sku)


def wait_pushed(shops, sku, quantity, timeout=30):
    deadline = time.monotonic() + timeout
    while any(last_pushed(s, sku) != quantity for s in shops.values()):
        if time.monotonic() > deadline:
            raise AssertionError({k: last_pushed(s, sku) for k, s in shops.items()})
        time.sleep(0.1)


def wait_drained(stack, timeout=30):
    """Until every sync asked for so far has run (the stock-sync queue has nothing waiting, delayed or in
    flight): the burst's messages were all sent before its last change was pushed."""
    poller = stack.poller_of(STOCK_SYNC.consumer)
    deadline = time.monotonic() + timeout
    while not poller.drained():
        if time.monotonic() > deadline:
            raise AssertionError("the stock-sync queue still has messages")
        time.sleep(0.1)


def test_every_stock_change_reaches_every_auto_sync_channel_summed_over_its_warehouses(stack, ports, uid,
                                                                                        address, shops):
    sku, started = shops
    ports.inventory.set_on_hand(sku, f"a-{uid}", 7)
    ports.inventory.set_on_hand(sku, f"b-{uid}", 5)
    ports.inventory.set_on_hand(sku, f"fba-{uid}", 100)  # Amazon counts FBA stock itself: not summed
    wait_pushed(started, sku, 12)

    order, _ = service.create_order(make_order([(sku, 3)], address), ports)  # reserves 3 in a-<uid>
    wait_for(ports, order.order_id, "paid")
    wait_pushed(started, sku, 9)
    service.cancel_order(order.order_id, ports)
    wait_pushed(started, sku, 12)


def test_a_burst_on_one_sku_coalesces_and_the_newest_value_wins(stack, ports, uid, shops):
    sku, started = shops
    for on_hand in range(1, 21):
        ports.inventory.set_on_hand(sku, f"a-{uid}", on_hand)
    wait_pushed(started, sku, 20)
    wait_drained(stack)  # anything still queued has had its chance
    for kind, shop in started.items():
        pushes = [p for p in shop.inventory()["pushes"] if p["sku"] == sku]
        assert pushes[-1]["quantity"] == 20, kind
        assert len(pushes) <= 4, (kind, pushes)  # 20 changes, a few updates


def test_the_sweep_pushes_only_what_a_channel_does_not_have(stack, ports, uid, shops):
    sku, started = shops
    ports.inventory.set_on_hand(sku, f"b-{uid}", 6)
    wait_pushed(started, sku, 6)
    before = {k: len(s.inventory()["pushes"]) for k, s in started.items()}
    assert sku not in sync_all(ports)  # nothing new to say
    assert {k: len(s.inventory()["pushes"]) for k, s in started.items()} == before


def test_a_failed_send_does_not_block_the_next_change(stack, ports, uid, shops, monkeypatch):
    """The queue refused a sync request: its marker goes too, so the next change sends again (before,
    the marker stayed forever and the SKU was never pushed again)."""
    import orderflow.adapters.queues as queues
    import orderflow.channels.stock_sync as stock_sync
    from orderflow.adapters.aws import client as real_client

    sku, started = shops

    class RefusingSqs:
        def send_message(self, **_):
            raise RuntimeError("SQS refused the message")

    monkeypatch.setattr(queues, "client", lambda name: RefusingSqs() if name == "sqs" else real_client(name))
    with pytest.raises(RuntimeError):
        stock_sync.request_sync([sku], ports)
    monkeypatch.setattr(queues, "client", real_client)
    ports.inventory.set_on_hand(sku, f"a-{uid}", 4)
    wait_pushed(started, sku, 4)


def test_a_marker_whose_message_was_lost_is_replaced_and_swept(stack, ports, uid, shops):
    """A marker whose message was lost no longer blocks the SKU: the next change replaces it, and the
    sweep's per-SKU step (what sync_all does for every SKU; the whole sweep over this shared stack's
    SKUs would take minutes) deletes it. The same for a marker without stale_after, left by a release
    whose failed sends kept their markers forever."""
    import time as clock

    from orderflow.adapters.aws import client
    from orderflow.channels import stock_sync
    from orderflow.channels.stock_sync import PENDING

    sku, started = shops
    key = {"entity": {"S": PENDING}, "id": {"S": sku}}
    lost = {**key, "marker": {"S": "sync_lost"}, "at": {"S": "2026-01-01"}, "stale_after": {"N": "1"}}
    legacy = {k: v for k, v in lost.items() if k != "stale_after"}
    for n, marker in enumerate((lost, legacy), start=3):
        client("dynamodb").put_item(TableName=ports.settings.table, Item=marker)
        ports.inventory.set_on_hand(sku, f"a-{uid}", n)  # the stale marker does not swallow this change
        wait_pushed(started, sku, n)
        client("dynamodb").put_item(TableName=ports.settings.table, Item=marker)
        stock_sync._drop_marker(sku, ports, stale_before=clock.time())
        assert "Item" not in client("dynamodb").get_item(TableName=ports.settings.table, Key=key)
    fresh = {**key, "marker": {"S": "sync_fresh"}, "at": {"S": "2026-01-01"},
             "stale_after": {"N": f"{clock.time() + 600:.3f}"}}
    client("dynamodb").put_item(TableName=ports.settings.table, Item=fresh)
    stock_sync._drop_marker(sku, ports, stale_before=clock.time())  # a marker on its way is kept
    assert "Item" in client("dynamodb").get_item(TableName=ports.settings.table, Key=key)
    client("dynamodb").delete_item(TableName=ports.settings.table, Key=key)
