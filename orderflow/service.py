"""What the API (and the importer, the CLI and the reconciler) do with orders: the use cases, in plain
Python over the ports. Every change of an order's or a shipment's state is :mod:`orderflow.orders`'s; this
module parses, looks up, decides what to ask for and calls it."""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Annotated

from pydantic import Field, StringConstraints

from orderflow import orders
from orderflow.errors import Conflict, IdempotencyKeyReused, NotFound, OrderflowError, UnknownSku
from orderflow.models import Model, NewOrder, Order, OrderStatus, new_id
from orderflow.orders import IN_FLIGHT, start_workflow, take_stock_wait_token
from orderflow.ports import Ports
from orderflow.rules.allocation import allocate

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
            start_workflow(existing, ports)
            return existing, False
    order, created = ports.orders.create(Order.from_new(new))
    start_workflow(order, ports)
    return order, created


def reconcile(ports: Ports, *, older_than_seconds: float = 300, limit: int = 500) -> list[str]:
    """Find orders whose workflow should be running but is not (a lost start, a crash, a kill -9 of
    the local stack) and redrive them. Orders touched in the last ``older_than_seconds`` are left
    alone: their workflow may be starting right now. Returns the redriven order ids."""
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
    """The reconciler hands a running execution the shipments that shipped while it was not told
    (:func:`orderflow.orders.resume_shipped`)."""
    return orders.resume_shipped(order, ports)


def redrive_order(order_id: str, ports: Ports, *, reason: str = "redriven by the seller") -> Order:
    """``POST /orders/{id}/redrive``, the CLI and the reconciler: :func:`orderflow.orders.redrive`."""
    return orders.redrive(order_id, ports, reason=reason)


def add_tracking(order_id: str, tracking: TrackingIn, ports: Ports) -> Order:
    """A label made elsewhere (``POST /orders/{id}/tracking``, a fulfiller's tracking, a bought label): record
    its tracking and let the waiting workflow complete the order (:func:`orderflow.orders.ship`)."""
    return orders.ship(order_id, tracking.carrier, tracking.tracking_number, ports, shipment_id=tracking.shipment_id)


def cancel_order(order_id: str, ports: Ports, *, reason: str = "cancelled by the seller") -> Order:
    """``POST /orders/{id}/cancel`` and a cancel seen on the channel: :func:`orderflow.orders.cancel`."""
    return orders.cancel(order_id, ports, reason=reason)


def release_waiting_orders(ports: Ports) -> list[str]:
    """After stock arrived: resume the orders waiting for stock, oldest first, as far as it goes.

    Each waiting order is planned against the stock left after the older ones it released, so the
    oldest orders get the units; an order that still cannot be served stays waiting.
    """
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
    available = ports.inventory.available_for(line.sku for o in waiting for line in o.outstanding())
    released = []
    for order in waiting:
        if not order.stock_wait_token:
            continue  # its execution is not waiting yet; it checks the stock itself when it gets there
        outstanding = order.outstanding()
        try:
            plan = allocate(outstanding, warehouses, available, policy=policy, channel=order.channel,
                            ship_to=order.shipping_address)
        except OrderflowError:
            continue
        if not orders.releases(plan, policy):
            continue
        for line in plan.lines:  # the units this order will take are no longer there for the next one
            units = available[line.sku]
            units[line.warehouse_id] = units.get(line.warehouse_id, 0) - line.quantity
        if take_stock_wait_token(order.order_id, ports, resume=True):
            released.append(order.order_id)
    return released


def complete_from_channel(order_id: str, ports: Ports, *, detail: str) -> bool:
    """The sales channel marked the order fulfilled before it shipped here: its open shipments are marked
    shipped on the channel (:func:`orderflow.orders.complete_on_channel`). False when nothing was open."""
    return orders.complete_on_channel(order_id, ports, detail=detail)


def note_channel_fulfilled(order_id: str, ports: Ports, detail: str) -> bool:
    """The channel fulfilled an order nothing was routed for here yet: it is completed without taking our
    stock (:func:`orderflow.orders.close_on_channel`)."""
    return orders.close_on_channel(order_id, ports, detail)


def complete_manually(order_id: str, ports: Ports) -> Order:
    """``POST /orders/{id}/complete``: the seller says it has shipped (:func:`orderflow.orders.complete_manually`)."""
    return orders.complete_manually(order_id, ports)


def create_order_once(new: NewOrder, ports: Ports, key: str, keys) -> tuple[Order, int, bool]:  # noqa: ANN001
    """``POST /orders`` with an ``Idempotency-Key``: the same key and body answer the same order and
    status however often they are sent (also across Lambda containers: the key lives in DynamoDB);
    the same key with another body is refused (422). Returns (order, HTTP status, replayed).

    The order id is chosen when the key is first claimed, so a retry after a crash writes that same
    order, never a second one. ``keys`` is an :class:`orderflow.adapters.idempotency.IdempotencyKeys`.
    """
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
            start_workflow(order, ports)
            created = True
    except Exception:
        keys.release(key)  # the retry with this key resumes the same order id (it may be written already)
        raise
    status = 201 if created else 200
    keys.finish(key, order.order_id, status)
    return order, status, False
