"""What each Lambda state of ``statemachines/order_workflow.asl.json`` does.

Step Functions retries a step with the same input, and a second execution may replay one, so every
step is idempotent: it looks at what the order already records before it acts, and stock changes
go through the ledger's idempotency keys.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from orderflow.errors import InsufficientStock, OrderCancelled, UnsupportedFulfillmentRoute
from orderflow.models import (
    METHOD_BY_KIND,
    FulfillmentMethod,
    Order,
    OrderStatus,
    Shipment,
    ShipmentStatus,
    utcnow,
)
from orderflow.ports import Ports
from orderflow.rules.allocation import allocate

#: Routes this release can fulfil; the state machine has a branch for each.
SUPPORTED_METHODS = {FulfillmentMethod.SELF_SHIP}


class StepInput(BaseModel):
    order_id: str
    execution_id: str | None = None


class AwaitShipmentInput(StepInput):
    shipment_id: str
    task_token: str


def _live(order: Order) -> Order:
    """Steps stop here for a cancelled order: the workflow catches OrderCancelled and ends."""
    if order.status == OrderStatus.CANCELLED:
        raise OrderCancelled(f"order {order.order_id} was cancelled", order_id=order.order_id)
    return order


def _has_event(order: Order, event_type: str) -> bool:
    return any(e.type == event_type for e in order.events)


def stock_key(order: Order) -> str:
    """The idempotency prefix of the order's stock changes: order id and allocation plan."""
    plan = order.allocation.plan_no if order.allocation else 0
    return f"{order.order_id}#p{plan}"


def _allocation_summary(order: Order) -> dict[str, Any]:
    assert order.allocation is not None
    return {"order_id": order.order_id, "rule_set": order.allocation.rule_set,
            "plan_no": order.allocation.plan_no, "warehouses": order.allocation.warehouses()}


def allocate_order(order_id: str, ports: Ports) -> dict[str, Any]:
    """Decide which warehouse(s) ship the order and record why."""
    order = _live(ports.orders.get(order_id))
    if order.allocation is not None:
        return _allocation_summary(order)
    stock = ports.inventory.levels_for(line.sku for line in order.lines)
    allocation = allocate(order.lines, ports.settings.warehouses(), stock)

    def change(o: Order) -> bool:
        if o.allocation is not None or o.status == OrderStatus.CANCELLED:
            return False
        o.allocation = allocation
        o.record("allocated", f"{allocation.rule_set} chose {', '.join(allocation.warehouses())}")
        return True

    return _allocation_summary(ports.orders.update(order_id, change))


def reduce_inventory(order_id: str, ports: Ports) -> dict[str, Any]:
    """Commit the allocated stock, exactly once; if stock moved since allocation, allocate again."""
    order = _live(ports.orders.get(order_id))
    if not _has_event(order, "stock_reserved"):
        assert order.allocation is not None, "reduce_inventory runs after allocate"
        try:
            ports.inventory.reserve(stock_key(order), order.allocation.lines)
        except InsufficientStock as short:
            why = short.message
            stock = ports.inventory.levels_for(line.sku for line in order.lines)
            plan = allocate(order.lines, ports.settings.warehouses(), stock)
            plan.plan_no = order.allocation.plan_no + 1

            def reallocate(o: Order) -> None:
                o.allocation = plan
                o.record("reallocated", f"{why}; plan {plan.plan_no} chose {', '.join(plan.warehouses())}")

            order = ports.orders.update(order_id, reallocate)
            assert order.allocation is not None
            ports.inventory.reserve(stock_key(order), order.allocation.lines)

        def reserved(o: Order) -> bool:
            if _has_event(o, "stock_reserved") or o.status == OrderStatus.CANCELLED:
                return False
            units = sum(line.quantity for line in o.allocation.lines) if o.allocation else 0
            o.record("stock_reserved", f"{units} unit(s) committed")
            return True

        order = ports.orders.update(order_id, reserved)
        if order.status == OrderStatus.CANCELLED:
            # cancelled while we were reserving: give the stock straight back
            from orderflow.service import release_stock_of_cancelled

            release_stock_of_cancelled(order, ports)
            _live(order)
    return {"order_id": order_id, "reserved": True, "plan_no": order.allocation.plan_no if order.allocation else 0}


def route_fulfillment(order_id: str, ports: Ports) -> dict[str, Any]:
    """One shipment per allocated warehouse, each with the route its warehouse kind takes."""
    order = _live(ports.orders.get(order_id))
    if not order.shipments:
        assert order.allocation is not None, "route_fulfillment runs after allocate"
        kinds = {w.warehouse_id: w.kind for w in ports.settings.warehouses()}
        shipments = []
        for n, warehouse_id in enumerate(order.allocation.warehouses(), start=1):
            method = METHOD_BY_KIND[kinds[warehouse_id]]
            if method not in SUPPORTED_METHODS:
                raise UnsupportedFulfillmentRoute(
                    f"warehouse {warehouse_id} is a {kinds[warehouse_id].value} warehouse; "
                    f"route {method.value} is not available in this release", warehouse_id=warehouse_id)
            shipments.append(Shipment(
                shipment_id=f"{order_id}-{n}", warehouse_id=warehouse_id, method=method,
                lines=[line for line in order.allocation.lines if line.warehouse_id == warehouse_id],
            ))

        def routed(o: Order) -> bool:
            if o.shipments or o.status == OrderStatus.CANCELLED:
                return False
            o.shipments = shipments
            o.record("routed", ", ".join(f"{s.shipment_id}: {s.method.value} from {s.warehouse_id}"
                                         for s in shipments))
            return True

        order = ports.orders.update(order_id, routed)
    return {"order_id": order_id, "shipments": [
        {"shipment_id": s.shipment_id, "method": s.method.value, "warehouse_id": s.warehouse_id}
        for s in order.shipments]}


def await_shipment(step: AwaitShipmentInput, ports: Ports) -> dict[str, Any]:
    """Keep the execution's task token on the shipment; the order is now ready to ship (``paid``).

    Tracking that arrived before the token (a fast seller) resumes the execution right here.
    """

    def waiting(o: Order) -> None:
        _live(o)
        shipment = o.shipment(step.shipment_id)
        shipment.task_token = step.task_token
        if shipment.status == ShipmentStatus.PENDING:
            shipment.status = ShipmentStatus.AWAITING_TRACKING
        if o.status == OrderStatus.NEW:
            o.status = OrderStatus.PAID
            o.record("paid", f"ready to ship: {shipment.shipment_id} from {shipment.warehouse_id}")

    order = ports.orders.update(step.order_id, waiting)
    shipment = order.shipment(step.shipment_id)
    if shipment.status == ShipmentStatus.SHIPPED:
        ports.workflow.resume(step.task_token, shipped_output(shipment))
    return {"order_id": step.order_id, "shipment_id": step.shipment_id, "status": shipment.status.value}


def shipped_output(shipment: Shipment) -> dict[str, Any]:
    return {"shipment_id": shipment.shipment_id, "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number, "shipped_at": shipment.shipped_at}


def complete_order(order_id: str, ports: Ports) -> dict[str, Any]:
    """Every shipment has left: take the shipped units off the shelf (once) and complete the order."""
    order = _live(ports.orders.get(order_id))
    shipped = [line for s in order.shipments if s.status == ShipmentStatus.SHIPPED for line in s.lines]
    if shipped:
        ports.inventory.ship(stock_key(order), shipped)

    def completed(o: Order) -> bool:
        if o.status == OrderStatus.COMPLETED:
            return False
        o.status = OrderStatus.COMPLETED
        tracking = [f"{s.carrier or 'manual'} {s.tracking_number}" if s.tracking_number else "no tracking"
                    for s in o.shipments]
        o.record("completed", "; ".join(tracking) or None)
        o.updated_at = utcnow()
        return True

    order = ports.orders.update(order_id, completed)
    return {"order_id": order_id, "status": order.status.value}
