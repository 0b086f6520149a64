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
import time
from typing import Any

from pydantic import BaseModel

from orderflow import observability, orders
from orderflow.errors import FulfillerSlaExpired, StockMoved, UnsupportedFulfillmentRoute
from orderflow.models import (
    METHOD_BY_KIND,
    Allocation,
    FulfillmentMethod,
    Order,
    Shipment,
    Warehouse,
    iso_at,
    utcnow,
)
from orderflow.ports import Ports
from orderflow.rules.allocation import AllocationPolicy, allocate

log = logging.getLogger(__name__)

#: Plans one Prepare makes when the stock keeps moving away before the reservation (a race for the last units).
PLAN_ATTEMPTS = 5

#: Routes the state machine has a branch for.
SUPPORTED_METHODS = set(FulfillmentMethod)


class StepInput(BaseModel, defer_build=True):
    order_id: str
    execution_id: str | None = None


class AwaitInput(StepInput):
    task_token: str


#: Steps stop for a cancelled order and one its channel completed (:func:`orderflow.orders.live`).


class Setup:
    """The warehouses and the allocation policy, read once per step (each is a DynamoDB read)."""

    def __init__(self, ports: Ports) -> None:
        self._ports = ports
        self._warehouses: list[Warehouse] | None = None
        self._policy: AllocationPolicy | None = None

    @property
    def warehouses(self) -> list[Warehouse]:
        if self._warehouses is None:
            self._warehouses = self._ports.settings.warehouses()
        return self._warehouses

    @property
    def policy(self) -> AllocationPolicy:
        if self._policy is None:
            self._policy = self._ports.settings.allocation_policy()
        return self._policy


def plan_for(order: Order, ports: Ports, plan_no: int, setup: Setup | None = None) -> Allocation:
    """Run the seller's rules over what the order still needs and the stock there is now."""
    setup = setup or Setup(ports)
    outstanding = order.outstanding()
    stock = ports.inventory.available_for(line.sku for line in outstanding)
    return allocate(outstanding, setup.warehouses, stock, policy=setup.policy,
                    channel=order.channel, ship_to=order.shipping_address, plan_no=plan_no)


def _allocation_result(order: Order) -> dict[str, Any]:
    plan = order.allocation
    assert plan is not None
    return {"order_id": order.order_id, "plan_no": plan.plan_no, "summary": plan.summary,
            "wait_for_stock": plan.status == "waiting", "backordered": bool(plan.backordered)}


def allocate_order(order_id: str, ports: Ports) -> dict[str, Any]:
    """Decide which warehouse(s) ship what the order still needs, and record why."""
    return _allocate(orders.live(ports.orders.get(order_id)), ports, Setup(ports))[0]


def _allocate(order: Order, ports: Ports, setup: Setup) -> tuple[dict[str, Any], Order]:
    if order.allocation is not None and (order.allocation.status == "planned" or not order.outstanding()):
        return _allocation_result(order), order  # a retry, or a redrive of an order already placed: the plan stands
    plan_no = order.next_plan_no()
    with observability.timed(observability.ALLOCATION_LATENCY):  # the stock and settings reads and the rules
        plan = plan_for(order, ports, plan_no, setup)
    hold = setup.policy.backorder == "hold"
    if plan.backordered and (hold or not plan.lines):
        plan.status = "waiting"

    order = orders.record_plan(order.order_id, plan, ports, current=order)
    if order.allocation and order.allocation.backordered:
        ports.purchasing.draft_for_backorders(order)
    return _allocation_result(order), order


def reduce_inventory(order_id: str, ports: Ports) -> dict[str, Any]:
    """Commit the planned stock, exactly once. If stock moved since the plan, the workflow plans again."""
    order = _reserve(orders.live(ports.orders.get(order_id)), ports)
    plan = order.allocation
    assert plan is not None
    return {"order_id": order_id, "plan_no": plan.plan_no, "reserved": True}


def _reserve(order: Order, ports: Ports, setup: Setup | None = None) -> Order:
    """Commit the plan's stock; with ``setup``, its shipments are routed and kept in the same write."""
    plan = order.allocation
    assert plan is not None, "reduce_inventory runs after allocate"
    if plan.status == "planned":
        shipments = None
        if setup is not None:
            try:
                shipments = _new_shipments(order, plan, setup, time.time())
            except UnsupportedFulfillmentRoute:
                shipments = None  # reserved first, then routing says why (as a step of its own would)
        order = orders.reserve_plan(order.order_id, plan, ports, current=order, shipments=shipments)
    return order


def route_fulfillment(order_id: str, ports: Ports) -> dict[str, Any]:
    """One shipment per warehouse of the latest plan, each with the route its warehouse kind takes."""
    return _route(orders.live(ports.orders.get(order_id)), ports, Setup(ports))


def _sla_seconds(setup: Setup, warehouse_id: str, method: FulfillmentMethod) -> float:
    # a seller's own warehouse has no SLA here: the longest wait; a fulfiller has its warehouse's SLA
    warehouse = next((w for w in setup.warehouses if w.warehouse_id == warehouse_id), None)
    if method == FulfillmentMethod.SELF_SHIP or warehouse is None:
        return orders.LONGEST_WAIT_SECONDS
    return max(1.0, float(warehouse.sla_hours) * 3600)


def _new_shipments(order: Order, plan: Allocation, setup: Setup, now: float) -> list[Shipment]:
    """One shipment per warehouse of the plan, each with its warehouse kind's route (none if routed already)."""
    if any(s.plan_no == plan.plan_no for s in order.shipments):
        return []
    kinds = {w.warehouse_id: w.kind for w in setup.warehouses}
    shipments = []
    for n, warehouse_id in enumerate(plan.warehouses(), start=len(order.shipments) + 1):
        method = METHOD_BY_KIND[kinds[warehouse_id]]
        if method not in SUPPORTED_METHODS:
            raise UnsupportedFulfillmentRoute(
                f"warehouse {warehouse_id} is a {kinds[warehouse_id].value} warehouse; "
                f"route {method.value} is not available in this release", warehouse_id=warehouse_id)
        shipments.append(Shipment(
            shipment_id=f"{order.order_id}-{n}", warehouse_id=warehouse_id, method=method, plan_no=plan.plan_no,
            lines=[line for line in plan.lines if line.warehouse_id == warehouse_id],
            due_at=iso_at(now + _sla_seconds(setup, warehouse_id, method)),
        ))
    return shipments


def _route(order: Order, ports: Ports, setup: Setup) -> dict[str, Any]:
    order_id = order.order_id
    plan = order.allocation
    assert plan is not None and plan.status == "reserved", "route_fulfillment runs after reduce_inventory"
    now = time.time()
    shipments = _new_shipments(order, plan, setup, now)
    if shipments:
        order = orders.add_shipments(order_id, plan.plan_no, shipments, ports, current=order)
    renew = {s.shipment_id: iso_at(now + _sla_seconds(setup, s.warehouse_id, s.method)) for s in order.shipments
             if not s.due_at and s.status not in orders.DONE_SHIPPING}
    if renew:  # a redrive: the SLA that ran out starts again
        order = orders.set_due(order_id, renew, ports, current=order)
    return {"order_id": order_id, "backordered": bool(plan.backordered), "timeout_seconds": orders.wait_seconds(order),
            "shipments": [{"shipment_id": s.shipment_id, "method": s.method.value, "warehouse_id": s.warehouse_id,
                           "due_at": s.due_at} for s in order.shipments if s.plan_no == plan.plan_no]}


def prepare(order_id: str, ports: Ports) -> dict[str, Any]:
    """The workflow's ``Prepare`` task: allocate, then (unless the order waits for stock) reserve the plan's
    stock and route its shipments. Answers what ``AwaitFulfilment`` waits for and for how long.

    Stock that moved between the plan and the reservation (another order took it) supersedes the plan: it is
    planned again here, up to ``PLAN_ATTEMPTS`` times, then StockMoved makes the workflow retry the task."""
    setup = Setup(ports)  # one read of the warehouses and the policy for the whole task
    order = orders.live(ports.orders.get(order_id))
    for attempt in range(1, PLAN_ATTEMPTS + 1):
        allocation, order = _allocate(order, ports, setup)
        if allocation["wait_for_stock"]:
            break
        try:
            order = _reserve(order, ports, setup)  # routed in the same write
            break
        except StockMoved:  # the plan was superseded: plan again against the stock there is now
            if attempt == PLAN_ATTEMPTS:
                raise  # the workflow retries the task (with backoff)
            order = orders.live(ports.orders.get(order_id))
    # what the trace shows for this task (`orderflow trace`, the console): the plan, then what was done with it
    done = {"order_id": order_id, "plan_no": allocation["plan_no"], "allocated": allocation["summary"],
            "wait_for_stock": allocation["wait_for_stock"], "backordered": allocation["backordered"]}
    if allocation["wait_for_stock"]:
        return done | {"timeout_seconds": orders.LONGEST_WAIT_SECONDS}
    routed = _route(order, ports, setup)
    return done | {"reserved": True, "timeout_seconds": routed["timeout_seconds"],
                   "routed": [f"{s['shipment_id']}: {s['method']} from {s['warehouse_id']}" for s in routed["shipments"]]}


def await_fulfilment(step: AwaitInput, ports: Ports) -> dict[str, Any]:
    """The workflow's one wait (``AwaitFulfilment``): keep its token on the order
    (:func:`orderflow.orders.await_fulfilment`). Waiting for stock, stock that arrived between the plan and
    now sends the order back to planning right away."""
    order, waits_for = orders.await_fulfilment(step.order_id, step.task_token, ports, execution_id=step.execution_id)
    if waits_for == "stock":
        setup = Setup(ports)
        if orders.releases(plan_for(order, ports, order.next_plan_no(), setup), setup.policy):
            orders.take_stock_wait_token(order.order_id, ports, resume=True)
    return {"order_id": step.order_id, "waits_for": waits_for, "status": order.status.value}


def check_overdue(order_id: str, ports: Ports) -> dict[str, Any]:
    """The wait timed out (``CheckOverdue``): a shipment past its fulfiller's SLA, or stock awaited for the
    longest wait, raises FulfillerSlaExpired (the order needs attention with that reason); otherwise the
    wait goes on until the next SLA."""
    order = ports.orders.get(order_id)
    orders.live(order, completing=bool(order.shipments))  # a completed order: the wait settles it
    late = orders.overdue(order, utcnow())
    if late is not None:
        who = {FulfillmentMethod.FBA: "Amazon FBA did not ship the order",
               FulfillmentMethod.SELF_SHIP: "the warehouse did not ship the shipment (no label, no tracking)"
               }.get(late.method, "the supplier or 3PL did not confirm the shipment")
        within = "within 90 days" if late.method == FulfillmentMethod.SELF_SHIP else "within the SLA"
        raise FulfillerSlaExpired(f"{who} {within} ({late.shipment_id} from {late.warehouse_id})",
                                  order_id=order_id, shipment_id=late.shipment_id)
    plan = order.allocation
    if plan is not None and plan.status == "waiting":
        raise FulfillerSlaExpired(f"no stock arrived for order {order_id} in 90 days", order_id=order_id)
    return {"order_id": order_id, "timeout_seconds": orders.wait_seconds(order)}
