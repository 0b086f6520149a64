"""The workflow's steps and the API's use cases on in-memory ports: no AWS, no moto. The state machine's
order of steps is played by hand (allocate, reserve, route, wait for the shipment, complete)."""

from __future__ import annotations

import pytest

from orderflow import orders, service
from orderflow.errors import Conflict, OrderCancelled
from orderflow.models import NewOrder, Order, OrderStatus, ShipmentStatus, Warehouse
from orderflow.workflow import steps
from tests.unit.memory_ports import memory_ports

ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Boston", "postal_code": "02110", "country": "US"}


@pytest.fixture
def ports():
    ports = memory_ports(Warehouse(warehouse_id="east", name="East", priority=1),
                         Warehouse(warehouse_id="west", name="West", priority=2))
    ports.inventory.set_on_hand("MUG", "east", 5)
    ports.inventory.set_on_hand("MUG", "west", 5)
    return ports


def new_order(ports, quantity=2, sku="MUG") -> Order:
    new = NewOrder.model_validate({"lines": [{"sku": sku, "quantity": quantity, "unit_price": "9.50"}],
                                   "shipping_address": ADDRESS})
    order, created = service.create_order(new, ports)
    assert created and ports.workflow.started == [order.order_id]
    return order


def to_paid(ports, order_id: str) -> str:
    """The workflow up to the wait for the shipment; returns the waiting task's token."""
    steps.allocate_order(order_id, ports)
    steps.reduce_inventory(order_id, ports)
    routed = steps.route_fulfillment(order_id, ports)
    token = ports.workflow.token()
    steps.await_shipment(steps.AwaitShipmentInput(order_id=order_id, task_token=token,
                                                  shipment_id=routed["shipments"][0]["shipment_id"]), ports)
    return token


def level(ports, warehouse="east"):
    return next(lv for lv in ports.inventory.levels("MUG") if lv.warehouse_id == warehouse)


def test_an_order_is_allocated_reserved_shipped_and_completed_with_its_stock_taken_once(ports):
    order = new_order(ports)
    token = to_paid(ports, order.order_id)
    paid = ports.orders.get(order.order_id)
    assert paid.status == OrderStatus.PAID and paid.shipments[0].warehouse_id == "east"
    assert (level(ports).on_hand, level(ports).committed) == (5, 2)
    service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1Z1"), ports)
    assert [t for t, _ in ports.workflow.resumed] == [token]
    for _ in range(2):  # a replayed Complete step changes nothing more
        steps.complete_order(order.order_id, ports)
    done = ports.orders.get(order.order_id)
    assert done.status == OrderStatus.COMPLETED
    assert (level(ports).on_hand, level(ports).committed) == (3, 0)


def test_the_same_tracking_again_resumes_again_and_other_tracking_is_refused(ports):
    order = new_order(ports)
    token = to_paid(ports, order.order_id)
    tracking = service.TrackingIn(carrier="UPS", tracking_number="1Z1")
    ports.workflow.waiting.discard(token)  # the first SendTaskSuccess was lost (throttled)
    service.add_tracking(order.order_id, tracking, ports)
    ports.workflow.waiting.add(token)
    service.add_tracking(order.order_id, tracking, ports)  # the client's retry hands it over
    assert [t for t, _ in ports.workflow.resumed] == [token]
    with pytest.raises(Conflict):
        service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1Z2"), ports)


def test_cancel_ends_the_wait_and_gives_the_stock_back_exactly_once(ports):
    order = new_order(ports)
    token = to_paid(ports, order.order_id)
    for _ in range(2):
        cancelled = service.cancel_order(order.order_id, ports)
    assert cancelled.status == OrderStatus.CANCELLED
    assert ports.workflow.abandoned == [(token, "OrderCancelled")]
    assert (level(ports).on_hand, level(ports).committed) == (5, 0)
    with pytest.raises(OrderCancelled):  # a step still running sees it and ends the workflow
        steps.route_fulfillment(order.order_id, ports)


def test_a_fulfiller_rejection_needs_attention_and_stops_the_execution(ports):
    order = new_order(ports)
    token = to_paid(ports, order.order_id)
    shipment_id = ports.orders.get(order.order_id).shipments[0].shipment_id
    rejected = orders.fulfiller_rejected(order.order_id, shipment_id, "address not serviceable", ports)
    assert rejected.status == OrderStatus.NEEDS_ATTENTION and rejected.attention_reason == "address not serviceable"
    assert ports.workflow.stopped == [(order.order_id, "FulfillerRejected")]
    assert ports.workflow.abandoned == [(token, "FulfillerRejected")]  # the workflow's FulfillerRejected state
    redriven = service.redrive_order(order.order_id, ports, reason="fixed the address")
    assert redriven.status == OrderStatus.NEW and ports.workflow.started[-1] == f"{order.order_id}-r2"


def test_short_stock_waits_and_a_receipt_resumes_the_oldest_waiting_order(ports):
    order = new_order(ports, quantity=12)  # 10 in stock over two warehouses, no line split
    steps.allocate_order(order.order_id, ports)
    assert ports.orders.get(order.order_id).status == OrderStatus.AWAITING_STOCK
    token = ports.workflow.token()
    steps.await_stock(steps.AwaitInput(order_id=order.order_id, task_token=token), ports)
    assert ports.workflow.resumed == []
    ports.inventory.set_on_hand("MUG", "east", 20)
    assert service.release_waiting_orders(ports) == [order.order_id]
    assert [t for t, _ in ports.workflow.resumed] == [token]


def test_a_storefront_completion_marks_the_shipment_on_the_channel_and_resumes_it(ports):
    order = new_order(ports)
    token = to_paid(ports, order.order_id)
    assert service.complete_from_channel(order.order_id, ports, detail="fulfilled on Shopify")
    shipped = ports.orders.get(order.order_id).shipments[0]
    assert (shipped.status, shipped.channel_update) == (ShipmentStatus.SHIPPED, "on_channel")
    assert [t for t, _ in ports.workflow.resumed] == [token]
    assert not service.complete_from_channel(order.order_id, ports, detail="again")  # idempotent


def test_the_reconciler_resumes_a_shipped_shipment_whose_execution_still_waits(ports):
    order = new_order(ports)
    token = to_paid(ports, order.order_id)
    ports.workflow.waiting.discard(token)
    service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1Z1"), ports)
    ports.workflow.waiting.add(token)  # the execution still waits: its SendTaskSuccess was lost
    assert service.resume_shipped(ports.orders.get(order.order_id), ports)
    assert "resumed" in [e.type for e in ports.orders.get(order.order_id).events]
