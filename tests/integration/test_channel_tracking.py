"""Tracking told to the sales channel an order came from, and storefront completion, through the real ASL,
the real channel-updates queue and sandbox shops on real sockets (Shopify, WooCommerce, Amazon)."""

from __future__ import annotations

import json
import time

import pytest

from orderflow import service
from orderflow.adapters.aws import client
from orderflow.channels.shipment_updates import ChannelUpdate, tell_channel
from orderflow.models import OrderStatus
from orderflow.queues import CHANNEL_UPDATES
from tests.integration.conftest import execution_status, wait_for
from tests.integration.test_imports import KINDS, connect  # noqa: F401 - the fixture

TRACKING = {"shopify": ("UPS", "1ZTRACK0001"), "woocommerce": ("USPS", "9400111899223"),
            "amazon": ("UPS", "1ZAMZ000001")}


def until(check, timeout: float = 30.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def ship_imported(ports, channel, lines, carrier, number):
    external_id = channel.shop.add_order(lines=lines)
    channel.run(ports)
    order = wait_for(ports, channel.stored(ports, external_id).order_id, OrderStatus.PAID)
    service.add_tracking(order.order_id, service.TrackingIn(carrier=carrier, tracking_number=number), ports)
    return external_id, wait_for(ports, order.order_id, OrderStatus.COMPLETED)


def told(ports, order_id):
    order = ports.orders.get(order_id)
    return order if all(s.channel_update for s in order.shipments) else None


@pytest.mark.parametrize("kind", KINDS)
def test_tracking_reaches_the_channel_once_and_the_shop_shows_the_order_fulfilled(stack, ports, connect, kind):
    channel = connect(kind)
    carrier, number = TRACKING[kind]
    external_id, order = ship_imported(ports, channel, [(channel.skus[0], 2), (channel.skus[1], 1)], carrier, number)
    done = until(lambda: told(ports, order.order_id), what="the channel update")
    shipment = done.shipments[0]
    assert shipment.channel_update == "pushed", shipment
    assert any(e.type == "channel_told" for e in done.events)
    pushed = channel.shop.fulfillments
    assert channel.shop.orders[external_id].status == "fulfilled"
    assert all(line.fulfilled == line.quantity for line in channel.shop.orders[external_id].lines)
    if kind == "shopify":
        assert len(pushed) == 1 and pushed[0]["tracking"] == {"company": "UPS", "number": number}
        assert pushed[0]["lines"] == {channel.skus[0]: 2, channel.skus[1]: 1} and pushed[0]["notify_customer"]
    elif kind == "woocommerce":
        notes = [p for p in pushed if "note" in p]
        assert len(notes) == 1 and number in notes[0]["note"] and notes[0]["customer_note"]
        assert [p.get("status") for p in pushed if "lines" in p] == ["completed"]
    else:
        assert len(pushed) == 1
        package = pushed[0]["package"]
        assert package["trackingNumber"] == number and package["carrierCode"] == "UPS"
        assert package["packageReferenceId"] == "1" and len(package["orderItems"]) == 2

    # A redelivered message, and a retry after the record of the push was lost: nothing twice.
    before = list(channel.shop.fulfillments)
    assert tell_channel(ChannelUpdate(order_id=order.order_id, shipment_id=shipment.shipment_id), ports) == "already"

    def forget(o):
        o.shipments[0].channel_update = None

    ports.orders.update(order.order_id, forget)
    again = tell_channel(ChannelUpdate(order_id=order.order_id, shipment_id=shipment.shipment_id), ports)
    assert again in ("on_channel", "pushed")
    assert channel.shop.fulfillments == before


def test_a_split_order_tells_each_shipment_as_it_leaves(stack, ports, connect):
    from tests.integration.conftest import add_warehouse

    channel = connect("shopify", stock=0)
    # Two warehouses, each holding one of the SKUs: one order, two shipments.
    for n, sku in enumerate(channel.skus):
        warehouse = f"split-{channel.channel_id}-{n}"
        add_warehouse(ports, warehouse, priority=1)
        ports.inventory.set_on_hand(sku, warehouse, 5)
    external_id = channel.shop.add_order(lines=[(channel.skus[0], 1), (channel.skus[1], 1)])
    channel.run(ports)
    order = wait_for(ports, channel.stored(ports, external_id).order_id, OrderStatus.PAID)
    assert len(order.shipments) == 2
    first, second = order.shipments
    service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1ZPART1",
                                                            shipment_id=first.shipment_id), ports)
    until(lambda: channel.shop.orders[external_id].status == "partially_fulfilled", what="the first parcel")
    assert ports.orders.get(order.order_id).status == OrderStatus.PARTIALLY_SHIPPED
    # The import sees Shopify's PARTIALLY_FULFILLED: that is our own push, not a storefront completion.
    channel.run(ports)
    assert ports.orders.get(order.order_id).status == OrderStatus.PARTIALLY_SHIPPED
    service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1ZPART2",
                                                            shipment_id=second.shipment_id), ports)
    wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    until(lambda: len(channel.shop.fulfillments) == 2, what="the second parcel")
    assert [f["tracking"]["number"] for f in channel.shop.fulfillments] == ["1ZPART1", "1ZPART2"]
    assert channel.shop.orders[external_id].status == "fulfilled"


@pytest.mark.parametrize("kind", KINDS)
def test_storefront_completion_completes_here_and_is_not_echoed(stack, ports, connect, kind):
    channel = connect(kind, stock=10)
    external_id = channel.shop.add_order(lines=[(channel.skus[0], 2)])
    channel.run(ports)
    order = wait_for(ports, channel.stored(ports, external_id).order_id, OrderStatus.PAID)
    channel.shop.fulfill(external_id)  # the seller ships it from the shop's admin
    report = channel.run(ports)
    assert report.updated == 1
    done = wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    assert execution_status(stack, order.order_id)["status"] == "SUCCEEDED"
    assert done.shipments[0].channel_update == "on_channel"
    assert any(e.type == "fulfilled_on_channel" for e in done.events)
    # The stock left once: committed back to zero, on hand down by the order's units.
    level = next(lv for lv in ports.inventory.levels(channel.skus[0]) if lv.warehouse_id.startswith("w-"))
    assert (level.on_hand, level.committed) == (8, 0)
    # Nothing is queued for the shop (a storefront completion is never told back), and nothing goes back.
    until(stack.poller_of(CHANNEL_UPDATES.consumer).drained, what="the channel-updates queue to be drained")
    assert channel.shop.fulfillments == []
    assert not any(e.type == "channel_told" for e in ports.orders.get(order.order_id).events)
    assert channel.run(ports).updated == 0  # the next import changes nothing


def test_an_order_fulfilled_on_the_channel_before_anything_shipped_here_is_completed_without_stock(
        stack, ports, connect):
    channel = connect("shopify", stock=10)
    external_id = channel.shop.add_order(state="pending", lines=[(channel.skus[0], 1)])
    channel.run(ports)
    held = channel.stored(ports, external_id)
    assert held.status == OrderStatus.NEW and held.hold_reason
    channel.shop.fulfill(external_id)
    channel.run(ports)
    done = ports.orders.get(held.order_id)
    assert done.status == OrderStatus.COMPLETED and not done.shipments and done.hold_reason is None
    assert any(e.type == "completed_on_channel" for e in done.events)
    assert sum(lv.committed for lv in ports.inventory.levels(channel.skus[0])) == 0


def test_a_channel_that_fails_is_retried_then_told_and_one_that_keeps_failing_goes_to_the_dlq(
        stack, ports, connect, monkeypatch):
    monkeypatch.setenv("ORDERFLOW_CHANNEL_UPDATE_RETRY_SECONDS", "0")
    channel = connect("shopify")
    external_id = channel.shop.add_order(lines=[(channel.skus[0], 1)])
    channel.run(ports)
    order = wait_for(ports, channel.stored(ports, external_id).order_id, OrderStatus.PAID)
    channel.shop.inject(status=500, count=5)  # more than one delivery's quick retries
    service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1ZRETRY1"), ports)
    done = until(lambda: told(ports, order.order_id), timeout=60, what="the retried channel update")
    assert done.shipments[0].channel_update == "pushed"
    assert any(e.type == "channel_update_failed" for e in done.events)
    assert len(channel.shop.fulfillments) == 1

    # An order the shop no longer knows: every delivery fails, then the message is in the DLQ.
    gone = channel.shop.add_order(lines=[(channel.skus[0], 1)])
    channel.run(ports)
    lost = wait_for(ports, channel.stored(ports, gone).order_id, OrderStatus.PAID)
    with channel.shop.lock:
        del channel.shop.orders[gone]
    service.add_tracking(lost.order_id, service.TrackingIn(carrier="UPS", tracking_number="1ZLOST01"), ports)
    wait_for(ports, lost.order_id, OrderStatus.COMPLETED)  # the order never waits for its channel
    dlq = stack.queue_urls["channel-updates-dlq"]

    def in_dlq():
        messages = client("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10, WaitTimeSeconds=1,
                                                 VisibilityTimeout=0).get("Messages", [])
        return [m for m in messages if json.loads(m["Body"])["order_id"] == lost.order_id]

    assert until(in_dlq, timeout=90, what="the message in the DLQ")
    failures = [e for e in ports.orders.get(lost.order_id).events if e.type == "channel_update_failed"]
    assert failures and "dead-letter" in failures[-1].detail
    assert ports.orders.get(lost.order_id).shipments[0].channel_update is None
