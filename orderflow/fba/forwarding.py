"""The FBA forwarder: a ``ForwardMessage`` from the fba-orders queue becomes an Amazon Multi-Channel
Fulfillment order, and the shipment waits for Amazon's tracking (``in_fulfillment``).

The fulfillment order's id (``sellerFulfillmentOrderId``) is our shipment id, so a redelivered message or a
retried call finds the same order at Amazon instead of creating a second one. Only when Amazon has given
up on it (cancelled, unfulfillable, invalid: the seller then fixed the cause and redrove the order) does
the shipment get a new one: ``<shipment id>-a2``, ``-a3``...

Outcomes of one message (:func:`forward`):

- the order was cancelled: nothing is created; if Amazon already had the shipment it is asked to cancel it,
  and the waiting task is failed with ``OrderCancelled`` so the execution ends in ``Cancelled``;
- the warehouse has no FBA account, its channel no credentials, or Amazon refuses the order (an unknown
  SKU, a bad address): the order needs attention with the reason and its execution ends
  (:func:`orderflow.orders.fulfiller_rejected`);
- the message comes from an execution a redrive has replaced: its task just ends (``ExecutionSuperseded``: the
  workflow's ``Superseded`` state changes nothing on the order);
- Amazon throttles or fails (429, 5xx, timeouts) beyond the client's retries: the message fails and SQS
  delivers it again (then the dead-letter queue);
- otherwise the order is at Amazon, recorded as open for the tracking poll, and the shipment is accepted
  (:func:`orderflow.orders.accept_forwarded`).
"""

from __future__ import annotations

import logging
import re
from contextlib import closing

from orderflow.channels.base import ChannelAuthError
from orderflow.errors import EXECUTION_SUPERSEDED, NotFound, OrderCancelled, ValidationFailed
from orderflow.fba import mcf
from orderflow.fba.accounts import Fba, FbaAccount, OpenFulfillmentOrder, default_fba
from orderflow.fba.client import McfClient, McfRejected
from orderflow.fulfillment import ForwardMessage
from orderflow.models import FulfillmentMethod, Order, OrderStatus, Shipment, ShipmentStatus
from orderflow.orders import accept_forwarded, end_rejected_forward, fulfiller_rejected

log = logging.getLogger(__name__)

#: Fulfillment orders one shipment may go through (each after Amazon gave up on the previous one).
MAX_GENERATIONS = 20


def fulfillment_order_id(shipment_id: str, generation: int = 1) -> str:
    """``ord_x-1`` for the first fulfillment order of a shipment, ``ord_x-1-a2`` for the second..."""
    return shipment_id if generation <= 1 else f"{shipment_id}-a{generation}"


def generation_of(shipment_id: str, seller_fulfillment_order_id: str) -> int:
    match = re.fullmatch(re.escape(shipment_id) + r"-a(\d+)", seller_fulfillment_order_id)
    return int(match.group(1)) if match else 1


def build_request(seller_fulfillment_order_id: str, order: Order, shipment: Shipment, account: FbaAccount,
                  marketplace_id: str) -> mcf.CreateFulfillmentOrderRequest:
    """createFulfillmentOrder's body for one shipment: its lines, the order's address, the account's
    speed and comment. Each line is one item (``sellerFulfillmentOrderItemId`` = ``line-<n>``) declared at
    its unit price."""
    prices = {line.line_no: line.unit_price for line in order.lines}
    to = order.shipping_address
    street = [to.company, to.line1, to.line2] if to.company else [to.line1, to.line2]
    street = [part for part in street if part]
    return mcf.CreateFulfillmentOrderRequest(
        marketplaceId=marketplace_id,
        sellerFulfillmentOrderId=seller_fulfillment_order_id,
        displayableOrderId=order.order_id,
        displayableOrderDate=order.created_at,
        displayableOrderComment=account.comment,
        shippingSpeedCategory=account.shipping_speed,
        fulfillmentAction="Ship",
        fulfillmentPolicy=account.fulfillment_policy,
        destinationAddress=mcf.Address(
            name=to.name, addressLine1=street[0], addressLine2=street[1] if len(street) > 1 else None,
            addressLine3=street[2] if len(street) > 2 else None, city=to.city, stateOrRegion=to.region,
            postalCode=to.postal_code, countryCode=to.country, phone=to.phone or None),
        items=[mcf.CreateFulfillmentOrderItem(
            sellerSku=line.sku, sellerFulfillmentOrderItemId=f"line-{line.line_no}", quantity=line.quantity,
            perUnitDeclaredValue=mcf.Money(currencyCode=order.currency,
                                           value=mcf.money_value(prices[line.line_no])))
            for line in shipment.lines],
    )


def place(client: McfClient, order: Order, shipment: Shipment, account: FbaAccount, marketplace_id: str
          ) -> tuple[str, bool]:
    """Make sure Amazon has a live fulfillment order for the shipment. Returns (its id, created now).

    Starts from the one the shipment records (or the shipment id); one Amazon still works on is reused,
    one Amazon gave up on is followed by the next generation.
    """
    candidate = shipment.fulfiller_ref or fulfillment_order_id(shipment.shipment_id)
    for _ in range(MAX_GENERATIONS):
        existing = client.get(candidate)
        if existing is None:
            created = client.create(build_request(candidate, order, shipment, account, marketplace_id))
            return candidate, created.created
        if existing.status not in mcf.DEAD:
            return candidate, False
        candidate = fulfillment_order_id(shipment.shipment_id, generation_of(shipment.shipment_id, candidate) + 1)
    raise McfRejected(f"shipment {shipment.shipment_id} went through {MAX_GENERATIONS} fulfillment orders; "
                      "Amazon gave up on every one")


def recall(client: McfClient, record: OpenFulfillmentOrder, fba: Fba) -> bool:
    """Ask Amazon to cancel an open fulfillment order; noted on the record first, so a CANCELLED the poll
    sees afterwards is known to be ours. True if Amazon cancelled it (or never had it: False). Raises
    :class:`McfRejected` when it is too late (then the note is taken back)."""
    from orderflow.models import utcnow

    if not record.cancel_requested_at:
        record.cancel_requested_at = utcnow()
        fba.store.put_open(record)
    try:
        return client.cancel(record.seller_fulfillment_order_id)
    except McfRejected:
        record.cancel_requested_at = None
        fba.store.put_open(record)
        raise


def forward(message: ForwardMessage, ports, fba: Fba | None = None, *, deadline=None) -> str:  # noqa: ANN001
    """Hand one shipment to Amazon (see the module docstring). Returns what happened: ``created``,
    ``existing``, ``cancelled``, ``rejected``, ``shipped`` or ``ignored``. Raises on transient failures.

    A message that comes back for a cancelled or rejected shipment (a redelivery, or a retried task) has its
    wait ended the same way again; nothing is created for it."""
    fba = fba or default_fba(ports)
    order = ports.orders.get(message.order_id)
    if order.status == OrderStatus.CANCELLED:
        _cancelled(message, fba, deadline)
        ports.workflow.abandon(message.task_token, "OrderCancelled", "the order was cancelled before Amazon "
                                                                     "FBA shipped it")
        return "cancelled"
    if _superseded(order, message):  # a redrive started a newer execution: this one's wait just ends
        ports.workflow.abandon(message.task_token, EXECUTION_SUPERSEDED, "a newer execution of the order took over")
        return "ignored"
    if order.status == OrderStatus.NEEDS_ATTENTION:  # rejected (or stuck): end this wait, create nothing
        end_rejected_forward(message.task_token, ports)
        return "rejected"
    shipment = order.shipment(message.shipment_id)
    if shipment.status == ShipmentStatus.SHIPPED:  # tracking is in already (recording it settled the order)
        accept_forwarded(message, shipment.fulfiller_ref or shipment.shipment_id, ports)
        return "shipped"
    if order.status == OrderStatus.COMPLETED or shipment.method != FulfillmentMethod.FBA:
        log.warning("fba forward of %s ignored: order is %s, shipment method %s", shipment.shipment_id,
                    order.status.value, shipment.method.value)
        return "ignored"

    def reject(reason: str) -> str:
        fulfiller_rejected(order.order_id, shipment.shipment_id, reason, ports,
                                   task_token=message.task_token)
        return "rejected"

    try:
        account = fba.account(shipment.warehouse_id)
        client = fba.client(account, deadline=deadline)
        marketplace_id = fba.marketplace(account)
    except (NotFound, ValidationFailed) as err:
        return reject(f"Amazon FBA: {err.message}")
    with closing(client):
        try:
            reference, created = place(client, order, shipment, account, marketplace_id)
        except McfRejected as err:
            return reject(err.message)
        except ChannelAuthError as err:
            return reject(f"Amazon FBA refused the credentials of channel {account.channel_id}: {err.message}")
        known = fba.store.open_order(shipment.shipment_id)
        if known is None or known.seller_fulfillment_order_id != reference:
            fba.store.put_open(OpenFulfillmentOrder(shipment_id=shipment.shipment_id, order_id=order.order_id,
                                                    warehouse_id=shipment.warehouse_id,
                                                    seller_fulfillment_order_id=reference))
        log.info("shipment %s is at Amazon FBA as %s (%s)", shipment.shipment_id, reference,
                 "created" if created else "already there")
        try:
            accept_forwarded(message, reference, ports)
        except OrderCancelled:  # cancelled while we were creating it: take it back
            record = fba.store.open_order(shipment.shipment_id)
            if record is not None:
                try:
                    recall(client, record, fba)
                    fba.store.close(shipment.shipment_id, reference)
                except McfRejected as err:  # the poll records what Amazon ships on the cancelled order
                    log.warning("Amazon will not cancel %s: %s", reference, err.code)
            ports.workflow.abandon(message.task_token, "OrderCancelled", "the order was cancelled while it was "
                                                                         "sent to Amazon FBA")
            return "cancelled"
    return "created" if created else "existing"


def _superseded(order: Order, message: ForwardMessage) -> bool:
    """The message comes from an execution of the order that a redrive has replaced."""
    from orderflow.adapters.stepfunctions import execution_name

    if not message.execution_id:
        return False
    return message.execution_id.rsplit(":", 1)[-1] != execution_name(order.order_id, order.attempt)


def _cancelled(message: ForwardMessage, fba: Fba, deadline) -> None:  # noqa: ANN001
    """A message of a cancelled order: if Amazon has its shipment and was not asked yet, ask it to cancel."""
    record = fba.store.open_order(message.shipment_id)
    if record is None:
        return
    if record.cancel_requested_at:
        fba.store.close(record.shipment_id, record.seller_fulfillment_order_id)
        return
    try:
        with closing(fba.client(fba.account(record.warehouse_id), deadline=deadline)) as client:
            recall(client, record, fba)
    except (McfRejected, NotFound, ValidationFailed) as err:
        log.warning("could not cancel %s at Amazon: %s", record.seller_fulfillment_order_id, err.code)
        return  # the poll tries again, and records on the cancelled order what Amazon ships
    fba.store.close(record.shipment_id, record.seller_fulfillment_order_id)
