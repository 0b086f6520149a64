"""Every change of an order's and its shipments' state, in one place.

The API's use cases (:mod:`orderflow.service`), the workflow's steps (:mod:`orderflow.workflow.steps`), the
fulfillers' forwarders and trackers (:mod:`orderflow.suppliers`, :mod:`orderflow.fba`) and the label
purchase (:mod:`orderflow.carriers.labels`) call it; none of them writes an order's status itself. Each
change is one conditional write through ``ports.orders.update`` (optimistic concurrency: the change is
run again on the order as it is now, and one that finds nothing to do writes nothing), followed by what
the workflow must hear (resume, abandon, stop, start) and what the stock ledger must apply (once per key).

Plain Python over the ports: it imports no caller, so none of them import each other.

- the workflow's own path: :func:`record_plan`, :func:`reserve_plan`, :func:`add_shipments` (its ``Prepare``
  task), :func:`await_fulfilment` (its one wait, for stock or for every shipment), :func:`take_stock_wait_token`;
- shipping: :func:`ship` (tracking), :func:`complete_manually`, :func:`complete_on_channel`,
  :func:`close_on_channel`, :func:`accept_forwarded`, :func:`fulfiller_rejected`; after each,
  :func:`settle` tells the channel and, once the last shipment left, completes the order (:func:`complete`)
  and resumes the execution's wait;
- ending and starting again: :func:`cancel`, :func:`release_stock_of_cancelled`, :func:`redrive`,
  :func:`resume_shipped`, :func:`start_workflow`.
"""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING

from orderflow.errors import (
    FULFILLER_REJECTED,
    PLAN_AGAIN,
    Conflict,
    InsufficientStock,
    OrderCancelled,
    OrderCompletedOnChannel,
    StockMoved,
    ValidationFailed,
)
from orderflow.fulfillment import ForwardMessage
from orderflow.models import (
    Allocation,
    FulfillmentMethod,
    Order,
    OrderStatus,
    Shipment,
    ShipmentStatus,
    epoch_of,
    utcnow,
)
from orderflow.queues import CHANNEL_UPDATES, FBA_ORDERS, SUPPLIER_ORDERS

if TYPE_CHECKING:
    from orderflow.ports import Ports
    from orderflow.rules.allocation import AllocationPolicy

log = logging.getLogger(__name__)

# -- the status sets ------------------------------------------------------------------------------

#: Statuses in which a shipment can still receive tracking or the order be completed by hand.
SHIPPABLE_STATUSES = frozenset({OrderStatus.PAID, OrderStatus.IN_FULFILLMENT, OrderStatus.PARTIALLY_SHIPPED})
#: Statuses whose workflow should be running; one that is not is stuck and may be redriven.
IN_FLIGHT = frozenset({OrderStatus.NEW, OrderStatus.AWAITING_STOCK, OrderStatus.PAID, OrderStatus.IN_FULFILLMENT,
                       OrderStatus.PARTIALLY_SHIPPED})
#: Orders that can still be cancelled here: nothing has left a warehouse or gone to a fulfiller.
CANCELLABLE = frozenset({OrderStatus.NEW, OrderStatus.AWAITING_STOCK, OrderStatus.PAID, OrderStatus.NEEDS_ATTENTION})
#: Orders nothing has been routed for yet: a channel that fulfilled one itself closes it here.
NOT_SHIPPING_YET = frozenset({OrderStatus.NEW, OrderStatus.AWAITING_STOCK, OrderStatus.NEEDS_ATTENTION})
#: Order statuses in which an order file may still be sent to a supplier.
FORWARDABLE = frozenset({OrderStatus.NEW, OrderStatus.AWAITING_STOCK, OrderStatus.PAID, OrderStatus.IN_FULFILLMENT,
                         OrderStatus.PARTIALLY_SHIPPED})
#: Statuses a fulfiller's rejection leaves as they are (the order is over, or waits for the seller already).
SETTLED = frozenset({OrderStatus.CANCELLED, OrderStatus.COMPLETED, OrderStatus.NEEDS_ATTENTION})
#: Shipments that no longer wait for anything.
DONE_SHIPPING = frozenset({ShipmentStatus.SHIPPED, ShipmentStatus.CANCELLED})

#: The longest the workflow waits without a fulfiller's SLA: for stock, or for a seller's own warehouse to
#: ship (90 days); then the order needs attention.
LONGEST_WAIT_SECONDS = 90 * 24 * 3600
#: Where each forwarded route's shipments go (their forwarder consumes the queue).
FORWARD_QUEUES = {FulfillmentMethod.DROPSHIP: SUPPLIER_ORDERS, FulfillmentMethod.THREE_PL: SUPPLIER_ORDERS,
                  FulfillmentMethod.FBA: FBA_ORDERS}


def stock_key(order_id: str, plan_no: int) -> str:
    """The idempotency prefix of one plan's stock changes."""
    return f"{order_id}#p{plan_no}"


def live(order: Order, *, completing: bool = False) -> Order:
    """The workflow's steps stop here for a cancelled order, and for one its sales channel fulfilled before
    it was routed here (completed without shipments): the workflow catches OrderCancelled /
    OrderCompletedOnChannel and ends."""
    if order.status == OrderStatus.CANCELLED:
        raise OrderCancelled(f"order {order.order_id} was cancelled", order_id=order.order_id)
    if order.status == OrderStatus.COMPLETED and not completing:
        raise OrderCompletedOnChannel(f"order {order.order_id} was completed on its sales channel before it "
                                      "shipped here", order_id=order.order_id)
    return order


# -- starting ---------------------------------------------------------------------------------------


def start_workflow(order: Order, ports: Ports) -> None:
    """Start the workflow of a new order that is not held. Starting is idempotent (the execution is named
    after the order), so a retried create heals an order whose first start never happened."""
    if order.status == OrderStatus.NEW and not order.hold_reason:
        ports.workflow.start(order.order_id, order.attempt)


# -- the workflow's path: plan, wait for stock, reserve, route, wait for the shipment, complete ---------


def record_plan(order_id: str, plan: Allocation, ports: Ports, *, current: Order | None = None) -> Order:
    """Keep a new allocation plan (once per plan number); a plan that waits for stock makes the order
    ``awaiting_stock``."""

    def record(o: Order) -> bool:
        live(o)
        if o.next_plan_no() > plan.plan_no:
            return False  # another attempt recorded this round already
        o.add_plan(plan)
        if plan.status == "waiting":
            o.status = OrderStatus.AWAITING_STOCK
            o.record("awaiting_stock", f"plan {plan.plan_no}: {plan.summary}")
        else:
            o.record("allocated", f"plan {plan.plan_no} ({plan.rule_set}): {plan.summary}")
        return True

    return ports.orders.update(order_id, record, current=current)


def releases(plan: Allocation, policy: AllocationPolicy) -> bool:
    """Whether stock lets an order waiting for it go on: the plan places something, and (with the ``hold``
    policy) everything. A receipt (:func:`orderflow.service.release_waiting_orders`) and the wait's own check
    (:func:`orderflow.workflow.steps.await_fulfilment`) ask this same question."""
    return bool(plan.lines) and not (plan.backordered and policy.backorder == "hold")


def take_stock_wait_token(order_id: str, ports: Ports, *, resume: bool = True) -> bool:
    """Send the execution waiting for the order's stock back to planning: its wait fails with ``PlanAgain``,
    which the workflow catches into ``Prepare``. True if it was waiting and took it.

    The wait is told first and the token cleared after (only if it is still that token: the new plan may
    wait again with a new one), so a call that fails (throttled) leaves the token for the next receipt."""
    token = ports.orders.get(order_id).stock_wait_token
    if not token:
        return False
    told = ports.workflow.abandon(token, PLAN_AGAIN, f"stock arrived for order {order_id}") if resume else True

    def take(o: Order) -> bool:
        if o.stock_wait_token != token:
            return False
        o.stock_wait_token = None
        o.record("stock_arrived", "allocating again")
        return True

    ports.orders.update(order_id, take)
    return told


def reserve_plan(order_id: str, plan: Allocation, ports: Ports, *, current: Order | None = None,
                 shipments: list[Shipment] | None = None) -> Order:
    """Commit a planned allocation's stock, exactly once, and mark the plan ``reserved``; with ``shipments``
    (the plan's, routed), keep them in the same write (:func:`add_shipments` without a write of its own).

    Stock that moved since the plan supersedes it and raises StockMoved (the workflow plans again). An order
    cancelled (or fulfilled on its channel) while this reserved gets the stock straight back and stops the
    step (OrderCancelled / OrderCompletedOnChannel).
    """
    try:
        ports.inventory.reserve(stock_key(order_id, plan.plan_no), plan.lines)
    except InsufficientStock as short:
        why = short.message

        def supersede(o: Order) -> None:
            if o.allocation and o.allocation.plan_no == plan.plan_no and o.allocation.status == "planned":
                o.allocation.status = "superseded"
                o.record("stock_moved", f"plan {plan.plan_no}: {why}; planning again")

        ports.orders.update(order_id, supersede)
        raise StockMoved(why, order_id=order_id) from short

    def reserved(o: Order) -> bool:
        current = o.allocation
        if current is None or current.plan_no != plan.plan_no or current.status != "planned":
            return False
        current.status = "reserved"
        current.reserved_at = utcnow()
        units = sum(line.quantity for line in current.lines)
        o.record("stock_reserved", f"plan {plan.plan_no}: {units} unit(s) committed")
        if shipments and o.status not in (OrderStatus.CANCELLED, OrderStatus.COMPLETED):
            _keep_shipments(o, plan.plan_no, shipments)
        return True

    order = ports.orders.update(order_id, reserved, current=current)
    if order.status in (OrderStatus.CANCELLED, OrderStatus.COMPLETED):
        # cancelled (or fulfilled on the channel) while we were reserving: give the stock straight back
        release_stock_of_cancelled(order, ports)
        live(order)
    return order


def set_due(order_id: str, due: dict[str, str], ports: Ports, *, current: Order | None = None) -> Order:
    """Give open shipments that have none (a redrive cleared an SLA that ran out) when their SLA runs out."""

    def renew(o: Order) -> bool:
        changed = False
        for shipment in o.shipments:
            if shipment.shipment_id in due and not shipment.due_at and shipment.status not in DONE_SHIPPING:
                shipment.due_at = due[shipment.shipment_id]
                changed = True
        return changed

    return ports.orders.update(order_id, renew, current=current)


def add_shipments(order_id: str, plan_no: int, shipments: list[Shipment], ports: Ports, *,
                  current: Order | None = None) -> Order:
    """Keep the shipments routed for a plan (once per plan)."""

    def routed(o: Order) -> bool:
        live(o)
        return _keep_shipments(o, plan_no, shipments)

    return ports.orders.update(order_id, routed, current=current)


def _keep_shipments(o: Order, plan_no: int, shipments: list[Shipment]) -> bool:
    if any(s.plan_no == plan_no for s in o.shipments):
        return False
    o.shipments.extend(s.model_copy(deep=True) for s in shipments)
    o.record("routed", ", ".join(f"{s.shipment_id}: {s.method.value} from {s.warehouse_id}" for s in shipments))
    return True


def await_fulfilment(order_id: str, task_token: str, ports: Ports, *,
                     execution_id: str | None = None) -> tuple[Order, str]:
    """The workflow's one wait (``AwaitFulfilment``): keep its task token on the order and say what it waits
    for, ``stock`` or ``shipments``.

    - An order whose plan waits for stock keeps it as ``stock_wait_token`` (a receipt resumes it).
    - Otherwise it is the ``fulfilment_token`` of all of the order's shipments: the seller's own shipments
      await tracking (the order is ``paid``: ready to ship), and the shipments of dropship suppliers, 3PLs
      and Amazon FBA go to their forwarders' queues. Tracking that arrived before the token (a fast seller)
      settles the order right here (:func:`settle`).

    Idempotent: a retried call keeps the token; the forwarders hand each shipment over once however often
    it is sent to them.
    """
    waits: list[str] = []

    def waiting(o: Order) -> bool | None:
        waits.clear()
        live(o, completing=bool(o.shipments))
        plan = o.allocation
        if plan is not None and plan.status == "waiting":
            waits.append("stock")
            if o.stock_wait_token == task_token:
                return False
            o.stock_wait_token = task_token
            return None
        waits.append("shipments")
        if o.fulfilment_token == task_token:
            return False
        o.fulfilment_token = task_token
        own = [s for s in o.shipments if s.status == ShipmentStatus.PENDING and s.method == FulfillmentMethod.SELF_SHIP]
        for shipment in own:
            shipment.status = ShipmentStatus.AWAITING_TRACKING
        if own and o.status in (OrderStatus.NEW, OrderStatus.AWAITING_STOCK):
            o.status = OrderStatus.PAID
            o.record("paid", "ready to ship: " + ", ".join(f"{s.shipment_id} from {s.warehouse_id}" for s in own))
        return None

    order = ports.orders.update(order_id, waiting)
    if waits == ["stock"]:
        return order, "stock"
    for shipment in order.shipments:
        queue = FORWARD_QUEUES.get(shipment.method)
        # every open one, each time the order starts waiting (a redrive after a rejection, an SLA check): the
        # forwarders hand a shipment over once, and a fulfiller that gave up on it gets it again
        if queue is not None and shipment.status not in DONE_SHIPPING:
            message = ForwardMessage(order_id=order_id, shipment_id=shipment.shipment_id,
                                     warehouse_id=shipment.warehouse_id, method=shipment.method.value,
                                     task_token=task_token, execution_id=execution_id)
            ports.queues.send(queue, message.model_dump(mode="json"))
    return settle(order_id, ports, current=order), "shipments"


def overdue(order: Order, now: str) -> Shipment | None:
    """The first of the order's open shipments whose fulfiller's SLA ran out before ``now``."""
    for shipment in order.shipments:
        if shipment.status not in DONE_SHIPPING and shipment.due_at and shipment.due_at <= now:
            return shipment
    return None


def wait_seconds(order: Order, now: float | None = None) -> int:
    """How long the workflow's wait may last before :func:`overdue` is asked: until the nearest SLA of an
    open shipment (at least a second), at most :data:`LONGEST_WAIT_SECONDS`."""
    now = time.time() if now is None else now
    dues = [epoch_of(s.due_at) for s in order.shipments if s.status not in DONE_SHIPPING and s.due_at]
    if not dues:
        return LONGEST_WAIT_SECONDS
    return max(1, min(LONGEST_WAIT_SECONDS, int(min(dues) - now + 0.999)))


def tells_channel(order: Order, ports: Ports) -> bool:
    """Whether the order's shipments are told to a connected sales channel when they leave."""
    if not order.channel or not order.external_id:
        return False
    return ports.channels.find(order.channel) is not None


def settle(order_id: str, ports: Ports, *, current: Order | None = None) -> Order:
    """What follows shipments recorded as shipped, instead of states of the workflow:

    1. each shipped one the channel was not told of yet is sent to the channel-updates queue, which tells the
       order's sales channel (for an order from a connected channel; the consumer tells each shipment once,
       so sending one again is harmless);
    2. once nothing is left to ship, the execution's wait is resumed, which ends it, and the order is
       completed (:func:`complete`: the units leave the shelf once); a backordered rest is planned again
       instead (the wait fails with ``PlanAgain``) once everything routed has left.

    Without a ``fulfilment_token`` the execution is not waiting yet: :func:`await_fulfilment` settles the
    order when it gets there (each of the two reads the other's write). Safe to call again (a retried
    request, the reconciler): completing is idempotent and a used token answers "no longer waiting".

    ``current`` is the order as the caller's own write left it (``OrderStore.update`` returns it), so it
    need not be read again: whichever of two writers wrote second saw the other's write, so it settles.
    """
    order = current or ports.orders.get(order_id)
    untold = [s.shipment_id for s in order.shipments if s.status == ShipmentStatus.SHIPPED and s.channel_update is None]
    if untold and tells_channel(order, ports):  # before completing: a send that fails leaves the order in flight
        for shipment_id in untold:
            ports.queues.send(CHANNEL_UPDATES, {"order_id": order_id, "shipment_id": shipment_id})
    token = order.fulfilment_token
    if not token or any(s.status not in DONE_SHIPPING for s in order.shipments):
        return order
    if order.status not in SHIPPABLE_STATUSES and order.status != OrderStatus.COMPLETED:
        return order
    if order.outstanding():  # what was routed has left; the backordered rest is planned again
        # the wait is told first, the token cleared after: a call that fails leaves it for a retry or the reconciler
        ports.workflow.abandon(token, PLAN_AGAIN, f"order {order_id}: planning what was backordered")

        def replan(o: Order) -> bool:
            if o.fulfilment_token != token:
                return False
            o.fulfilment_token = None
            o.record("backorder_next", "every routed shipment left; planning what was backordered")
            return True

        return ports.orders.update(order_id, replan)
    # The wait first: if it cannot be resumed now (throttled), the order stays in flight with every shipment
    # out, which the caller's retry or the reconciler settles; completing is idempotent either way.
    ports.workflow.resume(token, {"order_id": order_id, "shipped": len(order.shipments)})
    return complete(order_id, ports, current=order)


def complete(order_id: str, ports: Ports, *, current: Order | None = None) -> Order:
    """Every shipment has left: take the shipped units off the shelf (once) and complete the order.
    ``current``: the order as last read or written (a stale one costs a re-read: the write is versioned)."""
    order = live(current or ports.orders.get(order_id), completing=True)
    by_plan: dict[int, list] = {}
    for shipment in order.shipments:
        if shipment.status == ShipmentStatus.SHIPPED:
            by_plan.setdefault(shipment.plan_no, []).extend(shipment.lines)
    for plan_no, lines in sorted(by_plan.items()):
        ports.inventory.ship(stock_key(order_id, plan_no), lines)

    def completed(o: Order) -> bool:
        if o.status == OrderStatus.COMPLETED:
            return False
        o.status = OrderStatus.COMPLETED
        tracking = [f"{s.carrier or 'manual'} {s.tracking_number}" if s.tracking_number else "no tracking"
                    for s in o.shipments]
        o.record("completed", "; ".join(tracking) or None)
        return True

    return ports.orders.update(order_id, completed, current=order)


# -- shipping -----------------------------------------------------------------------------------------


def ship(order_id: str, carrier: str, tracking_number: str, ports: Ports, *, shipment_id: str | None = None) -> Order:
    """A shipment left with tracking (a label made elsewhere, a fulfiller's tracking, a bought label): record
    it, tell the channel, and complete the order once it was the last (:func:`settle`). The same tracking
    sent again settles the order again (a retry after a failed resume)."""

    def add(order: Order) -> bool | None:
        again = [s for s in order.shipments if s.status == ShipmentStatus.SHIPPED
                 and (s.carrier, s.tracking_number) == (carrier, tracking_number)
                 and shipment_id in (None, s.shipment_id)]
        if again:  # the same tracking sent again (a retry after a failed resume): settle again
            return False
        if order.status not in SHIPPABLE_STATUSES:
            raise Conflict(f"order {order_id} is {order.status.value}; tracking can be added once it is paid",
                           status=order.status.value)
        open_shipments = [s for s in order.shipments if s.status != ShipmentStatus.SHIPPED]
        if shipment_id:
            shipment = order.shipment(shipment_id)
            if shipment.status == ShipmentStatus.SHIPPED:
                raise Conflict(f"shipment {shipment.shipment_id} already has tracking", field="shipment_id")
        elif len(open_shipments) == 1:
            shipment = open_shipments[0]
        elif not open_shipments:
            raise Conflict(f"every shipment of order {order_id} already has tracking")
        else:
            raise ValidationFailed(
                f"order {order_id} ships in {len(open_shipments)} parcels; say which with shipment_id",
                field="shipment_id", choices=[s.shipment_id for s in open_shipments])
        shipment.carrier = carrier
        shipment.tracking_number = tracking_number
        shipment.status = ShipmentStatus.SHIPPED
        shipment.shipped_at = utcnow()
        order.record("tracking_added", f"{shipment.shipment_id}: {carrier} {tracking_number}")
        if any(s.status != ShipmentStatus.SHIPPED for s in order.shipments) or order.outstanding():
            if order.status != OrderStatus.PARTIALLY_SHIPPED:
                order.status = OrderStatus.PARTIALLY_SHIPPED
                order.record("partially_shipped")

    return settle(order_id, ports, current=ports.orders.update(order_id, add))


def complete_manually(order_id: str, ports: Ports) -> Order:
    """The seller says it has shipped: every open shipment is marked shipped without tracking."""

    def mark(order: Order) -> None:
        if order.status == OrderStatus.COMPLETED:
            raise Conflict(f"order {order_id} is already completed", status=order.status.value)
        if order.status not in SHIPPABLE_STATUSES:
            raise Conflict(f"order {order_id} is {order.status.value}; it can be completed once it is paid",
                           status=order.status.value)
        now = utcnow()
        for shipment in order.shipments:
            if shipment.status != ShipmentStatus.SHIPPED:
                shipment.status = ShipmentStatus.SHIPPED
                shipment.shipped_at = now
        order.record("completed_manually", "marked complete by the seller")

    return settle(order_id, ports, current=ports.orders.update(order_id, mark))


def complete_on_channel(order_id: str, ports: Ports, *, detail: str) -> bool:
    """Storefront completion: the sales channel marked the order fulfilled before we shipped it (the
    seller shipped it from the store's admin, or another app did). Every open shipment is marked shipped
    and the waiting workflow completes the order (taking the units off the shelf once), and the channel
    is not told back: those shipments are marked ``on_channel``, so nothing is echoed to it.

    Returns False when there was nothing open (it shipped here already: the channel is showing what we
    told it). Idempotent.
    """
    shipped: list[bool] = []

    def mark(order: Order) -> bool:
        shipped.clear()
        if order.status not in SHIPPABLE_STATUSES:
            return False
        open_shipments = [s for s in order.shipments
                          if s.status not in (ShipmentStatus.SHIPPED, ShipmentStatus.CANCELLED)]
        if not open_shipments:
            return False
        now = utcnow()
        for shipment in open_shipments:
            shipment.status = ShipmentStatus.SHIPPED
            shipment.shipped_at = now
            shipment.channel_update = "on_channel"
            shipment.channel_note = detail
        order.record("fulfilled_on_channel", f"{detail}: {', '.join(s.shipment_id for s in open_shipments)} "
                                             "marked shipped; the channel is not told back")
        shipped.append(True)
        return True

    order = ports.orders.update(order_id, mark)
    if shipped:
        settle(order_id, ports, current=order)  # nothing is told back: the channel has it
        log.info("order %s fulfilled on its channel: completing it here", order_id)
    return bool(shipped)


def close_on_channel(order_id: str, ports: Ports, detail: str) -> bool:
    """The channel fulfilled an order nothing was routed for here yet (new, waiting for stock, needing
    attention, or held unpaid): it shipped from somewhere we do not run. The order is completed without
    taking stock from our warehouses: its workflow ends, whatever it had reserved goes back (once).
    An order that already has shipments (part of it shipped here) is only noted. Idempotent."""
    closed: list[bool] = []

    def close(order: Order) -> bool:
        closed.clear()
        if order.status not in NOT_SHIPPING_YET:
            return False
        if order.shipments:
            if any(e.type == "channel_fulfilled" for e in order.events):
                return False
            order.record("channel_fulfilled", f"{detail}, but part of it shipped here already: left as it is")
            return True
        order.status = OrderStatus.COMPLETED
        order.hold_reason = None
        order.attention_reason = None
        order.record("completed_on_channel", f"{detail} before anything shipped here: completed without taking "
                                             "stock from our warehouses")
        closed.append(True)
        return True

    order = ports.orders.update(order_id, close)
    if not closed:
        return False
    if order.stock_wait_token:
        ports.workflow.abandon(order.stock_wait_token, "OrderCompletedOnChannel", "completed on the sales channel")
    release_stock_of_cancelled(order, ports)
    log.info("order %s was fulfilled on its channel before it shipped here: completed", order_id)
    return True


# -- the fulfillers: forwarded, rejected ----------------------------------------------------------------


def accept_forwarded(message: ForwardMessage, reference: str, ports: Ports) -> Order:
    """The fulfiller has the shipment (``reference``: its file name or order id). Idempotent."""

    def forwarded(o: Order) -> bool:
        if o.status == OrderStatus.CANCELLED:
            raise OrderCancelled(f"order {o.order_id} was cancelled", order_id=o.order_id)
        shipment = o.shipment(message.shipment_id)
        if shipment.fulfiller_ref == reference and shipment.status != ShipmentStatus.PENDING:
            return False
        shipment.fulfiller_ref = reference
        if shipment.status in (ShipmentStatus.PENDING, ShipmentStatus.AWAITING_TRACKING):
            shipment.status = ShipmentStatus.FORWARDED
        if o.status in (OrderStatus.NEW, OrderStatus.AWAITING_STOCK, OrderStatus.PAID):
            o.status = OrderStatus.IN_FULFILLMENT
        o.record("forwarded", f"{shipment.shipment_id} to {shipment.warehouse_id} ({message.method}): {reference}")
        return True

    return ports.orders.update(message.order_id, forwarded)


def fulfiller_rejected(order_id: str, shipment_id: str, reason: str, ports: Ports, *,
                       task_token: str | None = None) -> Order:
    """A fulfiller (Amazon FBA) will not ship a forwarded shipment (it reported it unfulfillable or
    invalid, or cancelled it by itself), or the shipment could not be handed over at all: the order needs
    attention with ``reason`` now, and the execution waiting for the shipment ends without touching the order.

    - The execution is stopped (``StopExecution``, error ``FulfillerRejected``, cause ``reason``): on AWS it
      ends there, ``ABORTED`` with the reason in its history. A redrive starts the order again once the
      seller fixed the cause.
    - The waiting task (the order's ``fulfilment_token``, and ``task_token``: the one the forwarder's message
      carries) is also failed with ``FulfillerRejected``, which the workflow ends in its ``FulfillerRejected`` Fail
      state (it writes nothing). On AWS the token is dead by then and this does nothing; moto's interpreter ignores
      ``StopExecution`` inside a Map iteration, so locally this is what ends the execution. A forwarder
      that meets the shipment again (a redelivery) ends that wait the same way (:func:`end_rejected_forward`).

    Why not fail the task with a business error so the workflow's ``RecordNeedsAttention`` writes the
    reason: moto drops ``SendTaskFailure``'s cause, which that path reads the reason from (locally the
    execution would fail in ``UseErrorMessage``), and the error names it catches (``FulfillerSlaExpired``)
    would misname the failure. Idempotent: an order that is cancelled, completed or needs attention
    already, or whose shipment shipped, is left as it is.
    """
    tokens: list[str] = []
    attempts: list[int] = []

    def reject(order: Order) -> bool:
        tokens.clear()
        attempts.clear()
        if order.status in SETTLED:
            return False
        shipment = order.shipment(shipment_id)
        if shipment.status == ShipmentStatus.SHIPPED:
            return False
        order.status = OrderStatus.NEEDS_ATTENTION
        order.attention_reason = reason
        order.record("needs_attention", f"{shipment_id}: {reason}")
        tokens.extend(t for t in (order.fulfilment_token, task_token) if t)
        order.fulfilment_token = None
        attempts.append(order.attempt)
        return True

    order = ports.orders.update(order_id, reject)
    if attempts:
        ports.workflow.stop(order_id, attempts[0], "FulfillerRejected", reason)  # False: the token ends it
    for token in dict.fromkeys(tokens):
        end_rejected_forward(token, ports)
    return order


def end_rejected_forward(task_token: str, ports: Ports) -> bool:
    """End the wait of a forwarded shipment its fulfiller will not ship (see :func:`fulfiller_rejected`)."""
    return ports.workflow.abandon(task_token, FULFILLER_REJECTED,
                                  "the fulfiller will not ship it; the order needs attention (see its reason)")


# -- ending and starting again: cancel, release, redrive, resume --------------------------------------


def cancel(order_id: str, ports: Ports, *, reason: str = "cancelled by the seller") -> Order:
    """Cancel before shipping: end the workflow, release committed stock exactly once, and tell the
    fulfillers that already have it (``ports.routes``: a supplier or 3PL gets a cancellation file in its
    ``in`` folder; one whose server is down gets it at its next tracking poll).

    Allowed until anything has shipped: also ``in_fulfillment``. Amazon FBA is asked first: if it will
    not cancel its shipment (409) or cannot be asked now (503), the order stays as it is. Cancelling
    again is harmless: the order stays cancelled and the ledger refuses a second release.
    """
    current = ports.orders.get(order_id)
    if current.status != OrderStatus.CANCELLED:
        for route in ports.routes:  # Amazon FBA may refuse (409) or be unreachable (503): nothing changes
            route.recall(current, ports)

    def end(order: Order) -> bool:
        if order.status == OrderStatus.CANCELLED:
            return False
        shipped = [s.shipment_id for s in order.shipments if s.status == ShipmentStatus.SHIPPED]
        forwarded = order.status == OrderStatus.IN_FULFILLMENT and not shipped
        if order.status not in CANCELLABLE and not forwarded:
            raise Conflict(f"order {order_id} is {order.status.value}; only orders that have not shipped can be "
                           "cancelled", status=order.status.value)
        if shipped:  # e.g. paid with its one parcel out, not completed yet; or waiting for a backordered rest
            raise Conflict(f"order {order_id} has shipments that left already ({', '.join(shipped)}); only orders "
                           "that have not shipped can be cancelled", status=order.status.value)
        buying = [s.shipment_id for s in order.shipments if s.label and s.label.in_flight(time.time())]
        if buying:  # the claim and this check are one conditional write each: one of them sees the other
            raise Conflict(f"a label for {', '.join(buying)} is being bought right now; cancel again in a few "
                           "seconds (then void the label with the carrier if it was bought)", status=order.status.value)
        order.status = OrderStatus.CANCELLED
        for shipment in order.shipments:
            shipment.status = ShipmentStatus.CANCELLED
        order.record("cancelled", reason)
        return True

    order = ports.orders.update(order_id, end)
    # The stock first (a cancelled order is never looked at again), then the workflow: a waiting task fails
    # with OrderCancelled and ends in its Cancelled state; a step running right now sees the status and
    # does the same.
    order = release_stock_of_cancelled(order, ports)
    tokens = [order.fulfilment_token or "", order.stock_wait_token or ""]
    for token in filter(None, tokens):
        ports.workflow.abandon(token, "OrderCancelled", reason)
    for route in ports.routes:  # a supplier or 3PL gets a cancellation file
        if route.cancelled(order, ports):
            order = ports.orders.get(order_id)
    return order


def release_stock_of_cancelled(order: Order, ports: Ports) -> Order:
    """Give back what a cancelled order had committed (a no-op for what was already given back)."""
    released = False
    for plan in order.allocations:
        if plan.status == "reserved":
            released |= ports.inventory.release(stock_key(order.order_id, plan.plan_no), plan.lines)
    if not released:
        return order

    def note(o: Order) -> bool:
        if any(e.type == "stock_released" for e in o.events):
            return False
        units = sum(line.quantity for p in o.allocations if p.status == "reserved" for line in p.lines)
        o.record("stock_released", f"{units} unit(s) back to available")
        return True

    return ports.orders.update(order.order_id, note)


def redrive(order_id: str, ports: Ports, *, reason: str = "redriven by the seller") -> Order:
    """Run the order's workflow again after a fault cleared: a new execution (``<id>-r<n>``) that
    carries on from what the order already records (every step is idempotent). Only an order that needs
    attention, or one in flight whose workflow is not running, can be redriven; a held one cannot."""
    order = ports.orders.get(order_id)
    if order.hold_reason:
        raise Conflict(f"order {order_id} is held ({order.hold_reason}); it starts when that clears",
                       status=order.status.value)
    stuck = order.status in IN_FLIGHT and ports.workflow.status(order_id, order.attempt) != "RUNNING"
    if order.status != OrderStatus.NEEDS_ATTENTION and not stuck:
        raise Conflict(f"order {order_id} is {order.status.value}"
                       + (" and its workflow is running" if order.status in IN_FLIGHT else "")
                       + "; only an order that needs attention or whose workflow stopped can be redriven",
                       status=order.status.value)

    def again(o: Order) -> None:
        if o.status == OrderStatus.NEEDS_ATTENTION:
            o.status = OrderStatus.NEW
        o.attention_reason = None
        o.stock_wait_token = None
        o.fulfilment_token = None
        now = utcnow()
        for shipment in o.shipments:  # an SLA that ran out starts again with the new execution
            if shipment.status not in DONE_SHIPPING and shipment.due_at and shipment.due_at <= now:
                shipment.due_at = None
        o.attempt += 1
        o.record("redriven", f"{reason}; execution attempt {o.attempt}")

    order = ports.orders.update(order_id, again)
    ports.workflow.start(order_id, order.attempt)
    return order


def resume_shipped(order: Order, ports: Ports) -> bool:
    """Settle a running execution whose order has nothing left to ship but which still waits: the request
    that recorded the last shipment failed before it completed the order or resumed the wait (it was
    throttled, or crashed after the tracking was saved). A token already used answers "no longer waiting",
    which changes nothing. True if the order was settled here."""
    if order.status not in SHIPPABLE_STATUSES or not order.fulfilment_token or not order.shipments or any(
            s.status not in DONE_SHIPPING for s in order.shipments):
        return False
    ports.orders.update(order.order_id, lambda o: o.record(
        "resumed", "reconciler: every shipment had left but its workflow was still waiting"))
    settle(order.order_id, ports)
    return True
