"""The reliability suite: a race for the last units at scale, every step replayed after it succeeded, and
DynamoDB throttling, all through the real ASL on the local engine."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from botocore.awsrequest import AWSResponse

from orderflow import orders, service
from orderflow.adapters.aws import client
from orderflow.models import OrderStatus
from orderflow.workflow import steps
from tests.integration.conftest import add_warehouse, make_order, wait_for
from tests.integration.test_workflow import ledger_entries


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_200_orders_racing_for_50_units_over_3_warehouses_commit_exactly_50(stack, ports, uid, address):
    sku = f"RACE-{uid}"
    for n, units in enumerate((20, 20, 10)):
        add_warehouse(ports, f"race{n}-{uid}", priority=n + 1)
        ports.inventory.set_on_hand(sku, f"race{n}-{uid}", units)
    with ThreadPoolExecutor(8) as pool:
        orders = list(pool.map(lambda _: service.create_order(make_order([(sku, 1)], address), ports)[0],
                               range(200)))
    final = [wait_for(ports, o.order_id, OrderStatus.PAID, OrderStatus.AWAITING_STOCK, timeout=600) for o in orders]
    paid = [o for o in final if o.status == OrderStatus.PAID]
    levels = ports.inventory.levels(sku)
    try:
        assert len(paid) == 50
        assert sum(1 for o in final if o.status == OrderStatus.AWAITING_STOCK) == 150
        assert sum(level.committed for level in levels) == 50
        assert all(level.available == 0 and level.committed == level.on_hand for level in levels)
        assert len([e for e in ledger_entries(ports, sku) if e["kind"] == "reserve"]) == 50
    finally:  # the waiting ones would only slow down the stack's other tests
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda o: service.cancel_order(o.order_id, ports, reason="race over"),
                          [o for o in final if o.status == OrderStatus.AWAITING_STOCK]))


def test_every_step_replayed_after_it_succeeded_changes_nothing(stack, ports, uid, address):
    sku = f"REPLAY-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    order, _ = service.create_order(make_order([(sku, 2)], address), ports)
    paid = wait_for(ports, order.order_id, OrderStatus.PAID)
    ledger, level = ledger_entries(ports, sku), ports.inventory.levels(sku)[0]

    # Step Functions retries a step with the same input; a second execution replays them all.
    for _ in range(2):
        assert steps.prepare(order.order_id, ports)["wait_for_stock"] is False
    again = ports.orders.get(order.order_id)
    assert len(again.allocations) == len(paid.allocations) == 1 and len(again.shipments) == 1
    assert ledger_entries(ports, sku) == ledger and ports.inventory.levels(sku)[0] == level

    service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1ZREPLAY1"), ports)
    wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    for _ in range(2):  # the last shipment's settling replayed (a retried request, the reconciler)
        assert orders.settle(order.order_id, ports).status == OrderStatus.COMPLETED
    level = ports.inventory.levels(sku)[0]
    assert (level.on_hand, level.committed) == (3, 0)
    assert sorted(e["kind"] for e in ledger_entries(ports, sku)) == ["reserve", "ship"]
    types = [e.type for e in ports.orders.get(order.order_id).events]
    assert types.count("completed") == 1 and types.count("stock_reserved") == 1


class _Body:
    def __init__(self, data: bytes) -> None:
        self.data = data

    def stream(self, **_):  # noqa: ANN003
        yield self.data


def test_dynamodb_throttling_is_retried_with_backoff_and_the_order_goes_on(stack, ports, uid, address):
    sku = f"THROTTLE-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    state = {"left": 0, "thrown": 0}
    lock = threading.Lock()

    def throttle(request, **_):  # noqa: ANN001, ANN003
        with lock:
            if state["left"] <= 0:
                return None
            state["left"] -= 1
            state["thrown"] += 1
        body = b'{"__type":"com.amazonaws.dynamodb.v20120810#ThrottlingException","message":"Rate exceeded"}'
        return AWSResponse(request.url, 400, {"Content-Type": "application/x-amz-json-1.0",
                                              "x-amzn-ErrorType": "ThrottlingException"}, _Body(body))

    events = client("dynamodb").meta.events
    events.register("before-send.dynamodb.TransactWriteItems", throttle)
    try:
        order, _ = service.create_order(make_order([(sku, 2)], address), ports)
        with lock:
            state["left"] = 5  # more than boto3's own 3 attempts: the step fails once and the workflow retries
        paid = wait_for(ports, order.order_id, OrderStatus.PAID, timeout=60)
    finally:
        events.unregister("before-send.dynamodb.TransactWriteItems", throttle)
    assert state["thrown"] >= 3
    assert paid.status == OrderStatus.PAID and paid.attention_reason is None
    assert [e["kind"] for e in ledger_entries(ports, sku)] == ["reserve"]
    assert ports.inventory.levels(sku)[0].committed == 2
