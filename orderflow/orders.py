"""The order's state changes that more than one caller makes: the API's use cases (orderflow.service),
the workflow's steps (orderflow.workflow.steps) and the fulfillers' forwarders (orderflow.suppliers,
orderflow.fba). Plain Python over the ports: it imports no caller, so none of them import each other.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from orderflow.errors import FULFILLER_REJECTED, OrderCancelled
from orderflow.models import Order, OrderStatus, Shipment, ShipmentStatus, utcnow

if TYPE_CHECKING:
    from orderflow.fulfillment import ForwardMessage
    from orderflow.ports import Ports

log = logging.getLogger(__name__)


def stock_key(order_id: str, plan_no: int) -> str:
    """The idempotency prefix of one plan's stock changes."""
    return f"{order_id}#p{plan_no}"


def take_stock_wait_token(order_id: str, ports: Ports, *, resume: bool) -> bool:
    """Clear the order's stock-wait token and, if asked, resume its execution (once)."""
    taken: list[str] = []

    def take(o: Order) -> bool:
        if not o.stock_wait_token:
            return False
        taken.append(o.stock_wait_token)
        o.stock_wait_token = None
        o.record("stock_arrived", "allocating again")
        return True

    ports.orders.update(order_id, take)
    if taken and resume:
        return ports.workflow.resume(taken[-1], {"order_id": order_id, "resumed_at": utcnow()})
    return bool(taken)


def shipped_output(shipment: Shipment) -> dict[str, Any]:
    return {"shipment_id": shipment.shipment_id, "carrier": shipment.carrier,
            "tracking_number": shipment.tracking_number, "shipped_at": shipment.shipped_at}


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


def fulfiller_rejected(order_id: str, shipment_id: str, reason: str, ports: Ports, *,
                       task_token: str | None = None) -> Order:
    """A fulfiller (Amazon FBA) will not ship a forwarded shipment (it reported it unfulfillable or
    invalid, or cancelled it by itself), or the shipment could not be handed over at all: the order needs
    attention with ``reason`` now, and the execution waiting for the shipment ends without touching the order.

    - The execution is stopped (``StopExecution``, error ``FulfillerRejected``, cause ``reason``): on AWS it
      ends there, ``ABORTED`` with the reason in its history. A redrive starts the order again once the
      seller fixed the cause.
    - The waiting task (the shipment's token, or ``task_token`` when the forwarder has not recorded it yet)
      is also failed with ``FulfillerRejected``, which the workflow ends in its ``FulfillerRejected`` Fail
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
        if order.status in (OrderStatus.CANCELLED, OrderStatus.COMPLETED, OrderStatus.NEEDS_ATTENTION):
            return False
        shipment = order.shipment(shipment_id)
        if shipment.status == ShipmentStatus.SHIPPED:
            return False
        order.status = OrderStatus.NEEDS_ATTENTION
        order.attention_reason = reason
        order.record("needs_attention", f"{shipment_id}: {reason}")
        tokens.extend(t for t in (shipment.task_token, task_token) if t)
        shipment.task_token = None
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


def accept_forwarded(message: ForwardMessage, reference: str, ports: Ports) -> Order:
    """The fulfiller has the shipment (``reference``: its file name or order id). Idempotent."""

    def forwarded(o: Order) -> bool:
        if o.status == OrderStatus.CANCELLED:
            raise OrderCancelled(f"order {o.order_id} was cancelled", order_id=o.order_id)
        shipment = o.shipment(message.shipment_id)
        if shipment.task_token == message.task_token and shipment.fulfiller_ref == reference:
            return False
        shipment.task_token = message.task_token
        shipment.fulfiller_ref = reference
        if shipment.status in (ShipmentStatus.PENDING, ShipmentStatus.AWAITING_TRACKING):
            shipment.status = ShipmentStatus.FORWARDED
        if o.status in (OrderStatus.NEW, OrderStatus.AWAITING_STOCK, OrderStatus.PAID):
            o.status = OrderStatus.IN_FULFILLMENT
        o.record("forwarded", f"{shipment.shipment_id} to {shipment.warehouse_id} ({message.method}): {reference}")
        return True

    order = ports.orders.update(message.order_id, forwarded)
    shipment = order.shipment(message.shipment_id)
    if shipment.status == ShipmentStatus.SHIPPED:  # tracking came back before we recorded the token
        ports.workflow.resume(message.task_token, shipped_output(shipment))
    return order
