"""What each Lambda state of ``statemachines/order_workflow.asl.json`` does.

Step Functions retries a step with the same input, and a second execution may replay one, so every
step is idempotent: it looks at what the order already records before it acts, and stock changes
go through the ledger's idempotency keys.

An order is placed by one or more allocation plans. A plan that cannot place everything backorders
the rest: with the ``hold`` policy nothing is reserved and the order waits for stock
(``awaiting_stock``); with ``ship_available`` what is there ships and a later plan places the rest.

A step parses its input, decides (the allocation rules, the routes) and answers the state machine; what it
writes to the order (a plan, a token, a reservation, shipments, completion) is :mod:`orderflow.orders`'s.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from orderflow import observability, orders
from orderflow.errors import UnsupportedFulfillmentRoute
from orderflow.models import METHOD_BY_KIND, Allocation, FulfillmentMethod, Order, Shipment
from orderflow.ports import Ports
from orderflow.rules.allocation import allocate

log = logging.getLogger(__name__)

#: Routes the state machine has a branch for.
SUPPORTED_METHODS = set(FulfillmentMethod)


class StepInput(BaseModel):
    order_id: str
    execution_id: str | None = None


class AwaitInput(StepInput):
    task_token: str


class AwaitShipmentInput(AwaitInput):
    shipment_id: str


#: Steps stop for a cancelled order and one its channel completed (:func:`orderflow.orders.live`).


def plan_for(order: Order, ports: Ports, plan_no: int) -> Allocation:
    """Run the seller's rules over what the order still needs and the stock there is now."""
    outstanding = order.outstanding()
    stock = ports.inventory.levels_for(line.sku for line in outstanding)
    return allocate(outstanding, ports.settings.warehouses(), stock, policy=ports.settings.allocation_policy(),
                    channel=order.channel, ship_to=order.shipping_address, plan_no=plan_no)


def _allocation_result(order: Order) -> dict[str, Any]:
    plan = order.allocation
    assert plan is not None
    return {"order_id": order.order_id, "plan_no": plan.plan_no, "summary": plan.summary,
            "wait_for_stock": plan.status == "waiting", "backordered": bool(plan.backordered)}


def allocate_order(order_id: str, ports: Ports) -> dict[str, Any]:
    """Decide which warehouse(s) ship what the order still needs, and record why."""
    order = orders.live(ports.orders.get(order_id))
    if order.allocation is not None and (order.allocation.status == "planned" or not order.outstanding()):
        return _allocation_result(order)  # a retry, or a redrive of an order already placed: the plan stands
    plan_no = order.next_plan_no()
    with observability.timed(observability.ALLOCATION_LATENCY):  # the stock and settings reads and the rules
        plan = plan_for(order, ports, plan_no)
    hold = ports.settings.allocation_policy().backorder == "hold"
    if plan.backordered and (hold or not plan.lines):
        plan.status = "waiting"

    order = orders.record_plan(order_id, plan, ports)
    if order.allocation and order.allocation.backordered:
        ports.purchasing.draft_for_backorders(order)
    return _allocation_result(order)


def await_stock(step: AwaitInput, ports: Ports) -> dict[str, Any]:
    """Keep the token of the execution waiting for stock; a purchase-order receipt resumes it.

    Stock that arrived between the plan and now resumes it right away.
    """
    order = orders.wait_for_stock(step.order_id, step.task_token, ports)
    probe = plan_for(order, ports, order.next_plan_no())
    if probe.lines and not probe.backordered:
        orders.take_stock_wait_token(order.order_id, ports, resume=True)
    return {"order_id": step.order_id, "waiting": True}


def reduce_inventory(order_id: str, ports: Ports) -> dict[str, Any]:
    """Commit the planned stock, exactly once. If stock moved since the plan, the workflow plans again."""
    order = orders.live(ports.orders.get(order_id))
    plan = order.allocation
    assert plan is not None, "reduce_inventory runs after allocate"
    if plan.status == "planned":
        orders.reserve_plan(order_id, plan, ports)
    return {"order_id": order_id, "plan_no": plan.plan_no, "reserved": True}


def route_fulfillment(order_id: str, ports: Ports) -> dict[str, Any]:
    """One shipment per warehouse of the latest plan, each with the route its warehouse kind takes."""
    order = orders.live(ports.orders.get(order_id))
    plan = order.allocation
    assert plan is not None and plan.status == "reserved", "route_fulfillment runs after reduce_inventory"
    warehouses = {w.warehouse_id: w for w in ports.settings.warehouses()}
    if not any(s.plan_no == plan.plan_no for s in order.shipments):
        kinds = {wid: w.kind for wid, w in warehouses.items()}
        shipments = []
        for n, warehouse_id in enumerate(plan.warehouses(), start=len(order.shipments) + 1):
            method = METHOD_BY_KIND[kinds[warehouse_id]]
            if method not in SUPPORTED_METHODS:
                raise UnsupportedFulfillmentRoute(
                    f"warehouse {warehouse_id} is a {kinds[warehouse_id].value} warehouse; "
                    f"route {method.value} is not available in this release", warehouse_id=warehouse_id)
            shipments.append(Shipment(
                shipment_id=f"{order_id}-{n}", warehouse_id=warehouse_id, method=method, plan_no=plan.plan_no,
                lines=[line for line in plan.lines if line.warehouse_id == warehouse_id],
            ))

        order = orders.add_shipments(order_id, plan.plan_no, shipments, ports)
    sla = {wid: max(1, int(w.sla_hours * 3600)) for wid, w in warehouses.items()}
    tell = tells_channel(order, ports)
    return {"order_id": order_id, "backordered": bool(plan.backordered), "shipments": [
        {"shipment_id": s.shipment_id, "method": s.method.value, "warehouse_id": s.warehouse_id,
         "sla_seconds": sla.get(s.warehouse_id, 72 * 3600), "tell_channel": tell}
        for s in order.shipments if s.plan_no == plan.plan_no]}


def tells_channel(order: Order, ports: Ports) -> bool:
    """Whether the order's shipments are told to a connected sales channel when they leave."""
    if not order.channel or not order.external_id:
        return False
    return ports.channels.find(order.channel) is not None


def await_shipment(step: AwaitShipmentInput, ports: Ports) -> dict[str, Any]:
    """Keep the execution's task token on the shipment; the order is now ready to ship (``paid``).

    Tracking that arrived before the token (a fast seller) resumes the execution right here
    (:func:`orderflow.orders.wait_for_shipment`).
    """
    order = orders.wait_for_shipment(step.order_id, step.shipment_id, step.task_token, ports)
    shipment = order.shipment(step.shipment_id)
    return {"order_id": step.order_id, "shipment_id": step.shipment_id, "status": shipment.status.value}


def complete_order(order_id: str, ports: Ports) -> dict[str, Any]:
    """Every shipment has left: take the shipped units off the shelf (once) and complete the order."""
    order = orders.complete(order_id, ports)
    return {"order_id": order_id, "status": order.status.value}
