"""What the API (and the importer) do with orders, in plain Python over the ports."""

from __future__ import annotations

import logging
from typing import Annotated

from pydantic import Field, StringConstraints

from orderflow.errors import Conflict, OrderflowError, UnknownSku, ValidationFailed
from orderflow.models import SHIPPABLE_STATUSES, Model, NewOrder, Order, OrderStatus, ShipmentStatus, utcnow
from orderflow.ports import Ports
from orderflow.workflow.steps import shipped_output, stock_key

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
    if order.status == OrderStatus.NEW:
        ports.workflow.start(order.order_id)


def add_tracking(order_id: str, tracking: TrackingIn, ports: Ports) -> Order:
    """A label made elsewhere: record its tracking and let the waiting workflow complete the order."""
    tokens: list[tuple[str, dict]] = []

    def ship(order: Order) -> None:
        tokens.clear()
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
    """Cancel before shipping: end the workflow and release committed stock, exactly once.

    Cancelling again is harmless: the order stays cancelled and the ledger refuses a second release.
    """
    def cancel(order: Order) -> bool:
        if order.status == OrderStatus.CANCELLED:
            return False
        if order.status not in CANCELLABLE:
            raise Conflict(f"order {order_id} is {order.status.value}; only orders that have not shipped or "
                           "gone to a fulfiller can be cancelled", status=order.status.value)
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
    return release_stock_of_cancelled(order, ports)


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


def release_waiting_orders(ports: Ports) -> list[str]:
    """After stock arrived: resume the orders waiting for stock, oldest first, as far as it goes.

    Each waiting order is planned against the stock left after the older ones it released, so the
    oldest orders get the units; an order that still cannot be served stays waiting.
    """
    from orderflow.rules.allocation import allocate
    from orderflow.workflow.steps import take_stock_wait_token

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
