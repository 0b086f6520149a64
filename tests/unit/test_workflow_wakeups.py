"""No lost wake-ups in the workflow's one wait (a review of the two-transition workflow found each of these):
a call to Step Functions or SQS that fails leaves what it was to do where a retry, the next receipt or the
reconciler finds it; a parcel that left is never cancelled. In-memory ports; the state machine's order of
steps is played by hand (tests/unit/test_domain_on_memory_ports.py has the happy paths)."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from orderflow import orders, service
from orderflow.errors import Conflict, TransientError
from orderflow.models import NewOrder, OrderStatus, ShipmentStatus, Warehouse
from orderflow.queues import CHANNEL_UPDATES
from orderflow.rules.allocation import AllocationPolicy
from orderflow.workflow import steps
from tests.unit.memory_ports import memory_ports

ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Boston", "postal_code": "02110", "country": "US"}


def create(ports, lines, **extra):
    order, _ = service.create_order(NewOrder.model_validate({
        "lines": [{"sku": sku, "quantity": qty, "unit_price": "9.50"} for sku, qty in lines],
        "shipping_address": ADDRESS, **extra}), ports)
    return order


def waiting(ports, order_id: str) -> str:
    """Prepare, then the wait: returns its token."""
    steps.prepare(order_id, ports)
    token = ports.workflow.token()
    steps.await_fulfilment(steps.AwaitInput(order_id=order_id, task_token=token), ports)
    return token


def failing_once(ports, name: str):
    real = getattr(ports.workflow, name)
    left = [1]

    def call(*args, **kwargs):
        if left[0]:
            left[0] -= 1
            raise TransientError("Step Functions is busy (throttled)")
        return real(*args, **kwargs)

    setattr(ports.workflow, name, call)


def test_a_throttled_plan_again_for_the_backordered_rest_is_sent_by_the_retry_or_the_reconciler():
    ports = memory_ports(Warehouse(warehouse_id="east", name="East", priority=1),
                         policy=AllocationPolicy(backorder="ship_available"))
    ports.inventory.set_on_hand("MUG", "east", 3)
    ports.inventory.set_on_hand("CUP", "east", 0)
    order = create(ports, [("MUG", 2), ("CUP", 1)])
    token = waiting(ports, order.order_id)
    failing_once(ports, "abandon")
    tracking = service.TrackingIn(carrier="UPS", tracking_number="1Z1")
    with pytest.raises(TransientError):
        service.add_tracking(order.order_id, tracking, ports)
    assert ports.orders.get(order.order_id).fulfilment_token == token  # kept: nothing was told yet
    assert orders.resume_shipped(ports.orders.get(order.order_id), ports)  # the reconciler (or the retry)
    assert ports.workflow.abandoned == [(token, "PlanAgain")]
    assert ports.orders.get(order.order_id).fulfilment_token is None


def test_a_throttled_stock_arrival_is_sent_by_the_next_receipt():
    ports = memory_ports(Warehouse(warehouse_id="east", name="East", priority=1))
    ports.inventory.set_on_hand("MUG", "east", 0)
    order = create(ports, [("MUG", 2)])
    token = waiting(ports, order.order_id)
    ports.inventory.set_on_hand("MUG", "east", 5)
    failing_once(ports, "abandon")
    with pytest.raises(TransientError):
        service.release_waiting_orders(ports)
    assert ports.orders.get(order.order_id).stock_wait_token == token  # kept for the next receipt
    assert service.release_waiting_orders(ports) == [order.order_id]
    assert ports.workflow.abandoned == [(token, "PlanAgain")]
    assert ports.orders.get(order.order_id).stock_wait_token is None


def test_the_channel_is_told_even_when_the_first_send_failed():
    ports = memory_ports(Warehouse(warehouse_id="east", name="East", priority=1))
    ports.inventory.set_on_hand("MUG", "east", 5)
    ports.channels = SimpleNamespace(find=lambda cid: SimpleNamespace(channel_id=cid), list=lambda **k: [])
    order = create(ports, [("MUG", 2)], channel="shop", external_id="1001")
    waiting(ports, order.order_id)
    real_send, left = ports.queues.send, [1]

    def send(queue, body, **kwargs):
        if queue is CHANNEL_UPDATES and left[0]:
            left[0] -= 1
            raise TransientError("SQS is busy (throttled)")
        return real_send(queue, body, **kwargs)

    ports.queues.send = send
    tracking = service.TrackingIn(carrier="UPS", tracking_number="1Z1")
    with pytest.raises(TransientError):
        service.add_tracking(order.order_id, tracking, ports)
    assert ports.orders.get(order.order_id).status != OrderStatus.COMPLETED  # still in flight: it is retried
    done = service.add_tracking(order.order_id, tracking, ports)  # the caller's retry
    assert done.status == OrderStatus.COMPLETED
    shipment_id = done.shipments[0].shipment_id
    assert ports.queues.sent == [("channel-updates", {"order_id": order.order_id, "shipment_id": shipment_id})]


def test_stock_that_arrived_before_the_wait_releases_it_as_a_receipt_would():
    ports = memory_ports(Warehouse(warehouse_id="east", name="East", priority=1),
                         policy=AllocationPolicy(backorder="ship_available"))
    ports.inventory.set_on_hand("MUG", "east", 0)
    ports.inventory.set_on_hand("CUP", "east", 0)
    order = create(ports, [("MUG", 2), ("CUP", 1)])
    assert steps.prepare(order.order_id, ports)["wait_for_stock"] is True
    ports.inventory.set_on_hand("MUG", "east", 5)  # a receipt before the wait kept its token: it skips the order
    assert service.release_waiting_orders(ports) == []
    token = ports.workflow.token()
    steps.await_fulfilment(steps.AwaitInput(order_id=order.order_id, task_token=token), ports)
    assert ports.workflow.abandoned == [(token, "PlanAgain")]  # the mugs can ship (ship_available)


def test_an_order_whose_parcel_left_cannot_be_cancelled_before_it_completes():
    ports = memory_ports(Warehouse(warehouse_id="east", name="East", priority=1))
    ports.inventory.set_on_hand("MUG", "east", 5)
    order = create(ports, [("MUG", 2)])
    waiting(ports, order.order_id)
    failing_once(ports, "resume")
    with pytest.raises(TransientError):
        service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1Z1"), ports)
    assert ports.orders.get(order.order_id).status == OrderStatus.PAID  # shipped, not completed yet
    with pytest.raises(Conflict, match="left already"):
        service.cancel_order(order.order_id, ports)
    kept = ports.orders.get(order.order_id)
    assert kept.shipments[0].status == ShipmentStatus.SHIPPED
    level = next(lv for lv in ports.inventory.levels("MUG") if lv.warehouse_id == "east")
    assert (level.on_hand, level.committed) == (5, 2)  # nothing given back for units that left
    assert orders.resume_shipped(kept, ports) and ports.orders.get(order.order_id).status == OrderStatus.COMPLETED
