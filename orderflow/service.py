"""What the API (and the importer) do with orders, in plain Python over the ports."""

from __future__ import annotations

import logging
import time
from typing import Annotated

from pydantic import Field, StringConstraints

from orderflow.errors import Conflict, OrderflowError, UnknownSku, ValidationFailed
from orderflow.models import (
    SHIPPABLE_STATUSES,
    Model,
    NewOrder,
    Order,
    OrderStatus,
    ShipmentStatus,
    utcnow,
)
from orderflow.orders import release_stock_of_cancelled, shipped_output, take_stock_wait_token
from orderflow.ports import Ports

log = logging.getLogger(__name__)


class TrackingIn(Model):
    carrier: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=50)]
    tracking_number: Annotated[str, StringConstraints(strip_whitespace=True, min_length=3, max_length=64,
                                                      pattern=r"^[A-Za-z0-9\-]+$")]
    shipment_id: str | None = Field(None, description="Needed only when the order ships in several parcels")


def create_order(new: NewOrder, ports: Ports, *, check_skus: bool = True) -> tuple[Order, bool]:
    """Store the order (once per channel + external id) and start its workflow.

    Returns the order and whether it was created now. Unknown SKUs are refused up front for
    manual orders; imported orders are kept and reach ``needs_attention`` with the reason instead.
    """
    if check_skus:
        skus = [line.sku for line in new.lines]
        unknown = sorted(set(skus) - ports.inventory.known_skus(skus))
        if unknown:
            raise UnknownSku(f"unknown SKU(s): {', '.join(unknown)}", field="lines", skus=unknown)
    if new.channel and new.external_id:
        existing = ports.orders.find_by_channel_ref(new.channel, new.external_id)
        if existing is not None:
            _ensure_started(existing, ports)
            return existing, False
    order, created = ports.orders.create(Order.from_new(new))
    _ensure_started(order, ports)
    return order, created


def _ensure_started(order: Order, ports: Ports) -> None:
    # Starting is idempotent (the execution is named after the order), so a retried create heals
    # an order whose first start never happened.
    if order.status == OrderStatus.NEW and not order.hold_reason:
        ports.workflow.start(order.order_id, order.attempt)


#: Statuses whose workflow should be running; one that is not is stuck and may be redriven.
IN_FLIGHT = frozenset({OrderStatus.NEW, OrderStatus.AWAITING_STOCK, OrderStatus.PAID, OrderStatus.IN_FULFILLMENT,
                       OrderStatus.PARTIALLY_SHIPPED})


def reconcile(ports: Ports, *, older_than_seconds: float = 300, limit: int = 500) -> list[str]:
    """Find orders whose workflow should be running but is not (a lost start, a crash, a kill -9 of
    the local stack) and redrive them. Orders touched in the last ``older_than_seconds`` are left
    alone: their workflow may be starting right now. Returns the redriven order ids."""
    from datetime import UTC, datetime, timedelta

    cutoff = (datetime.now(UTC) - timedelta(seconds=older_than_seconds)).isoformat(timespec="milliseconds")
    cutoff = cutoff.replace("+00:00", "Z")
    redriven: list[str] = []
    for status in sorted(IN_FLIGHT):
        cursor = None
        while len(redriven) < limit:
            batch, cursor = ports.orders.list_by_status(status, limit=100, cursor=cursor, oldest_first=True)
            for order in batch:
                if order.updated_at > cutoff or order.hold_reason:
                    continue
                if ports.workflow.status(order.order_id, order.attempt) == "RUNNING":
                    if resume_shipped(order, ports):  # shipped, but the execution was never told
                        redriven.append(order.order_id)
                    continue
                try:
                    redrive_order(order.order_id, ports, reason="reconciler: its workflow was not running")
                    redriven.append(order.order_id)
                except OrderflowError:
                    continue  # it moved on meanwhile
            if not cursor:
                break
    return redriven


def resume_shipped(order: Order, ports: Ports) -> bool:
    """Hand a running execution the shipments that shipped but whose ``SendTaskSuccess`` failed (it
    was throttled after the tracking was saved): their token is still on them. A token already used
    answers "no longer waiting", which changes nothing. True if an execution took one."""
    taken = [s.shipment_id for s in order.shipments if s.status == ShipmentStatus.SHIPPED and s.task_token
             and ports.workflow.resume(s.task_token, shipped_output(s))]
    if taken:
        ports.orders.update(order.order_id, lambda o: o.record(
            "resumed", f"reconciler: {', '.join(taken)} had shipped but its workflow was still waiting"))
    return bool(taken)


def redrive_order(order_id: str, ports: Ports, *, reason: str = "redriven by the seller") -> Order:
    """Run the order's workflow again after a fault cleared: a new execution (``<id>-r<n>``) that
    carries on from what the order already records (every step is idempotent)."""
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
        for shipment in o.shipments:
            shipment.task_token = None
        o.attempt += 1
        o.record("redriven", f"{reason}; execution attempt {o.attempt}")

    order = ports.orders.update(order_id, again)
    ports.workflow.start(order_id, order.attempt)
    return order


def add_tracking(order_id: str, tracking: TrackingIn, ports: Ports) -> Order:
    """A label made elsewhere: record its tracking and let the waiting workflow complete the order."""
    tokens: list[tuple[str, dict]] = []

    def ship(order: Order) -> bool | None:
        tokens.clear()
        again = [s for s in order.shipments if s.status == ShipmentStatus.SHIPPED
                 and (s.carrier, s.tracking_number) == (tracking.carrier, tracking.tracking_number)
                 and tracking.shipment_id in (None, s.shipment_id)]
        if again:  # the same tracking sent again (a retry after a failed resume): hand it over again
            tokens.extend((s.task_token, shipped_output(s)) for s in again[:1] if s.task_token)
            return False
        if order.status not in SHIPPABLE_STATUSES:
            raise Conflict(f"order {order_id} is {order.status.value}; tracking can be added once it is paid",
                           status=order.status.value)
        open_shipments = [s for s in order.shipments if s.status != ShipmentStatus.SHIPPED]
        if tracking.shipment_id:
            shipment = order.shipment(tracking.shipment_id)
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
        shipment.carrier = tracking.carrier
        shipment.tracking_number = tracking.tracking_number
        shipment.status = ShipmentStatus.SHIPPED
        shipment.shipped_at = utcnow()
        order.record("tracking_added", f"{shipment.shipment_id}: {tracking.carrier} {tracking.tracking_number}")
        if any(s.status != ShipmentStatus.SHIPPED for s in order.shipments) or order.outstanding():
            if order.status != OrderStatus.PARTIALLY_SHIPPED:
                order.status = OrderStatus.PARTIALLY_SHIPPED
                order.record("partially_shipped")
        if shipment.task_token:
            tokens.append((shipment.task_token, shipped_output(shipment)))

    order = ports.orders.update(order_id, ship)
    for token, output in tokens:
        ports.workflow.resume(token, output)
    return order


#: Orders that can still be cancelled here: nothing has left a warehouse or gone to a fulfiller.
CANCELLABLE = frozenset({OrderStatus.NEW, OrderStatus.AWAITING_STOCK, OrderStatus.PAID, OrderStatus.NEEDS_ATTENTION})


def cancel_order(order_id: str, ports: Ports, *, reason: str = "cancelled by the seller") -> Order:
    """Cancel before shipping: end the workflow, release committed stock exactly once, and tell the
    fulfillers that already have it (a supplier or 3PL gets a cancellation file in its ``in`` folder;
    one whose server is down gets it at its next tracking poll).

    Allowed until anything has shipped: also ``in_fulfillment``. Amazon FBA is asked first: if it will
    not cancel its shipment (409) or cannot be asked now (503), the order stays as it is. Cancelling
    again is harmless: the order stays cancelled and the ledger refuses a second release.
    """
    current = ports.orders.get(order_id)
    if current.status != OrderStatus.CANCELLED:
        for route in ports.routes:  # Amazon FBA may refuse (409) or be unreachable (503): nothing changes
            route.recall(current, ports)

    def cancel(order: Order) -> bool:
        if order.status == OrderStatus.CANCELLED:
            return False
        forwarded = order.status == OrderStatus.IN_FULFILLMENT and not any(
            s.status == ShipmentStatus.SHIPPED for s in order.shipments)
        if order.status not in CANCELLABLE and not forwarded:
            raise Conflict(f"order {order_id} is {order.status.value}; only orders that have not shipped can be "
                           "cancelled", status=order.status.value)
        buying = [s.shipment_id for s in order.shipments if s.label and s.label.in_flight(time.time())]
        if buying:  # the claim and this check are one conditional write each: one of them sees the other
            raise Conflict(f"a label for {', '.join(buying)} is being bought right now; cancel again in a few "
                           "seconds (then void the label with the carrier if it was bought)", status=order.status.value)
        order.status = OrderStatus.CANCELLED
        for shipment in order.shipments:
            shipment.status = ShipmentStatus.CANCELLED
        order.record("cancelled", reason)
        return True

    order = ports.orders.update(order_id, cancel)
    # A waiting task fails with OrderCancelled and the workflow ends in its Cancelled state; a step
    # that is running right now sees the status and does the same.
    tokens = [s.task_token for s in order.shipments if s.task_token] + [order.stock_wait_token or ""]
    for token in filter(None, tokens):
        ports.workflow.abandon(token, "OrderCancelled", reason)
    order = release_stock_of_cancelled(order, ports)
    for route in ports.routes:  # a supplier or 3PL gets a cancellation file
        if route.cancelled(order, ports):
            order = ports.orders.get(order_id)
    return order


def release_waiting_orders(ports: Ports) -> list[str]:
    """After stock arrived: resume the orders waiting for stock, oldest first, as far as it goes.

    Each waiting order is planned against the stock left after the older ones it released, so the
    oldest orders get the units; an order that still cannot be served stays waiting.
    """
    from orderflow.rules.allocation import allocate

    waiting: list[Order] = []
    cursor = None
    while True:
        batch, cursor = ports.orders.list_by_status(OrderStatus.AWAITING_STOCK, limit=100, cursor=cursor,
                                                    oldest_first=True)
        waiting.extend(batch)
        if not cursor:
            break
    if not waiting:
        return []
    policy = ports.settings.allocation_policy()
    warehouses = ports.settings.warehouses()
    levels = ports.inventory.levels_for(line.sku for o in waiting for line in o.outstanding())
    released = []
    for order in waiting:
        if not order.stock_wait_token:
            continue  # its execution is not waiting yet; it checks the stock itself when it gets there
        outstanding = order.outstanding()
        try:
            plan = allocate(outstanding, warehouses, levels, policy=policy, channel=order.channel,
                            ship_to=order.shipping_address)
        except OrderflowError:
            continue
        if not plan.lines or (plan.backordered and policy.backorder == "hold"):
            continue
        for line in plan.lines:  # the units this order will take are no longer there for the next one
            for level in levels[line.sku]:
                if level.warehouse_id == line.warehouse_id:
                    level.committed += line.quantity
        if take_stock_wait_token(order.order_id, ports, resume=True):
            released.append(order.order_id)
    return released


#: Orders nothing has been routed for yet: a channel that fulfilled one itself closes it here.
NOT_SHIPPING_YET = frozenset({OrderStatus.NEW, OrderStatus.AWAITING_STOCK, OrderStatus.NEEDS_ATTENTION})


def complete_from_channel(order_id: str, ports: Ports, *, detail: str) -> bool:
    """Storefront completion: the sales channel marked the order fulfilled before we shipped it (the
    seller shipped it from the store's admin, or another app did). Every open shipment is marked shipped
    and the waiting workflow completes the order (taking the units off the shelf once), and the channel
    is not told back: those shipments are marked ``on_channel``, so nothing is echoed to it.

    Returns False when there was nothing open (it shipped here already: the channel is showing what we
    told it). Idempotent.
    """
    tokens: list[tuple[str, dict]] = []
    shipped: list[bool] = []

    def ship(order: Order) -> bool:
        tokens.clear()
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
            if shipment.task_token:
                tokens.append((shipment.task_token, shipped_output(shipment)))
        order.record("fulfilled_on_channel", f"{detail}: {', '.join(s.shipment_id for s in open_shipments)} "
                                             "marked shipped; the channel is not told back")
        shipped.append(True)
        return True

    ports.orders.update(order_id, ship)
    for token, output in tokens:
        ports.workflow.resume(token, output)
    if shipped:
        log.info("order %s fulfilled on its channel: completing it here", order_id)
    return bool(shipped)


def note_channel_fulfilled(order_id: str, ports: Ports, detail: str) -> bool:
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


def complete_manually(order_id: str, ports: Ports) -> Order:
    """The seller says it has shipped: every open shipment is marked shipped without tracking."""
    tokens: list[tuple[str, dict]] = []

    def complete(order: Order) -> None:
        tokens.clear()
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
                if shipment.task_token:
                    tokens.append((shipment.task_token, shipped_output(shipment)))
        order.record("completed_manually", "marked complete by the seller")

    order = ports.orders.update(order_id, complete)
    for token, output in tokens:
        ports.workflow.resume(token, output)
    return order


def create_order_once(new: NewOrder, ports: Ports, key: str, keys) -> tuple[Order, int, bool]:  # noqa: ANN001
    """``POST /orders`` with an ``Idempotency-Key``: the same key and body answer the same order and
    status however often they are sent (also across Lambda containers: the key lives in DynamoDB);
    the same key with another body is refused (422). Returns (order, HTTP status, replayed).

    The order id is chosen when the key is first claimed, so a retry after a crash writes that same
    order, never a second one. ``keys`` is an :class:`orderflow.adapters.idempotency.IdempotencyKeys`.
    """
    import hashlib
    import json

    from orderflow.errors import IdempotencyKeyReused, NotFound
    from orderflow.models import new_id

    skus = [line.sku for line in new.lines]
    unknown = sorted(set(skus) - ports.inventory.known_skus(skus))
    if unknown:
        raise UnknownSku(f"unknown SKU(s): {', '.join(unknown)}", field="lines", skus=unknown)
    fingerprint = hashlib.sha256(json.dumps(new.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    claim = keys.claim(key, fingerprint, new_id("ord"))
    if claim.fingerprint != fingerprint:
        raise IdempotencyKeyReused("this Idempotency-Key was already used with a different request body",
                                   field="Idempotency-Key")
    if not claim.mine:
        if claim.done:
            return ports.orders.get(claim.order_id), claim.status_code or 201, True
        raise Conflict("a request with this Idempotency-Key is still being processed; retry shortly",
                       field="Idempotency-Key")
    try:
        if new.channel and new.external_id:
            order, created = create_order(new, ports, check_skus=False)
        else:
            order = None
            if claim.resumed:
                try:
                    order = ports.orders.get(claim.order_id)
                except NotFound:
                    order = None
            if order is None:
                order, _ = ports.orders.create(Order.from_new(new, order_id=claim.order_id))
            _ensure_started(order, ports)
            created = True
    except Exception:
        keys.release(key)  # the retry with this key resumes the same order id (it may be written already)
        raise
    status = 201 if created else 200
    keys.finish(key, order.order_id, status)
    return order, status, False




def create_looked_up_order(new: NewOrder, ports: Ports) -> tuple[Order, bool]:
    """:func:`create_order` for a channel order the caller has just looked up and not found (the
    importer reads a page's stored orders in one batch): no second look-up. An order stored meanwhile
    (a webhook, a concurrent import) is still found by the guard item, and returned with False."""
    order, created = ports.orders.create(Order.from_new(new))
    _ensure_started(order, ports)
    return order, created
