"""Telling the sales channel an order came from that a shipment left, with its tracking.

The code that records a shipment as shipped sends one message per shipment to the channel-updates queue,
for an order from a connected channel (:func:`orderflow.orders.settle`; not a state of the workflow, so it
costs no state transition); :func:`tell_channel` handles one:

- Shopify: ``fulfillmentCreate`` on the order's open fulfillment orders, for this shipment's lines,
  with its tracking (the customer is notified by Shopify);
- WooCommerce: a customer note with the tracking, and the order ``completed`` once every shipment left;
- Amazon (merchant-fulfilled): Orders v0 ``confirmShipment`` with the carrier and tracking number.

Exactly once: what was told is recorded on the shipment (``channel_update``), and each client first
looks at what the channel already shows (Shopify's remaining quantities, WooCommerce's notes, Amazon's
package reference), so a redelivered message or a retry after a lost record tells nothing twice.

No echo: shipments the channel fulfilled itself (storefront completion) are ``on_channel`` and are
never pushed back. A channel that fails raises: SQS delivers the message again after a growing delay
(``change_message_visibility``), and after ``max_receives`` it moves to the DLQ; the order itself is
complete by then and never waits for the channel.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel

from orderflow import config
from orderflow.adapters.redelivery import backoff_seconds, redeliver_later
from orderflow.channels.base import FulfillmentNotice, FulfillmentResult
from orderflow.channels.http import RetryPolicy
from orderflow.errors import NotFound
from orderflow.models import Order, ShipmentStatus, utcnow
from orderflow.ports import Ports
from orderflow.queues import CHANNEL_UPDATES

log = logging.getLogger(__name__)

#: First retry after this many seconds, doubling per receive, at most MAX_RETRY_SECONDS.
RETRY_SECONDS_ENV = config.CHANNEL_UPDATE_RETRY_SECONDS.name
DEFAULT_RETRY_SECONDS = int(config.CHANNEL_UPDATE_RETRY_SECONDS.default or 30)
MAX_RETRY_SECONDS = 900


class ChannelUpdate(BaseModel, defer_build=True):
    """The message :func:`orderflow.orders.settle` sends for a shipped shipment."""

    order_id: str
    shipment_id: str
    #: False: the order came from no connected channel (nothing to read or tell). Messages of an older
    #: release may carry it; today's are sent only for orders that tell a channel.
    tell: bool = True


def notice_for(order: Order, shipment_id: str) -> FulfillmentNotice:
    shipment = order.shipment(shipment_id)
    lines: dict[str, int] = {}
    for line in shipment.lines:
        lines[line.sku] = lines.get(line.sku, 0) + line.quantity
    numbers = list(dict.fromkeys([*([shipment.tracking_number] if shipment.tracking_number else []),
                                  *shipment.tracking_numbers]))
    last = all(s.status in (ShipmentStatus.SHIPPED, ShipmentStatus.CANCELLED) for s in order.shipments) \
        and not order.outstanding()
    assert order.external_id is not None
    return FulfillmentNotice(external_id=order.external_id, shipment_id=shipment_id, lines=lines,
                             carrier=shipment.carrier, tracking_numbers=numbers, shipped_at=shipment.shipped_at,
                             complete=last)


def tell_channel(update: ChannelUpdate, ports: Ports) -> str:
    """Push one shipped shipment to its order's channel, once. Returns what happened (for the log):
    ``pushed``, ``on_channel``, ``skipped``, ``already`` or why nothing was to be done."""
    if not update.tell:
        return "no channel"
    try:
        order = ports.orders.get(update.order_id)
    except NotFound:
        return "no such order"
    shipment = order.shipment(update.shipment_id)
    if shipment.channel_update is not None:
        return "already"  # a redelivery, or the channel fulfilled it first (no echo)
    if shipment.status != ShipmentStatus.SHIPPED:
        return f"not shipped ({shipment.status.value})"
    if not order.channel or not order.external_id:
        return "no channel"
    config = ports.channels.find(order.channel)
    if config is None:
        _record(ports, order.order_id, update.shipment_id,
                FulfillmentResult("skipped", note=f"channel {order.channel} is not connected"))
        return "skipped"
    notice = notice_for(order, update.shipment_id)
    # Few quick retries here: SQS retries the message later, with a longer delay.
    channel = ports.channels.client(config, retry=RetryPolicy(max_attempts=3, base_delay=0.5, max_delay=4.0),
                                    timeout=15.0)
    try:
        result = channel.push_fulfillment(notice)
    finally:
        channel.close()
    _record(ports, order.order_id, update.shipment_id, result)
    log.info("order %s shipment %s told to %s: %s%s", order.order_id, update.shipment_id, order.channel,
             result.status, f" ({result.note})" if result.note else "")
    return result.status


def _record(ports: Ports, order_id: str, shipment_id: str, result: FulfillmentResult) -> None:
    def note(order: Order) -> bool:
        shipment = order.shipment(shipment_id)
        if shipment.channel_update is not None:
            return False
        shipment.channel_update = result.status if result.status in ("pushed", "on_channel", "skipped") \
            else "pushed"
        shipment.channel_ref = result.reference
        shipment.channel_note = result.note
        what = {"pushed": "tracking sent to", "on_channel": "already fulfilled on",
                "skipped": "nothing sent to"}.get(shipment.channel_update, "told")
        order.record("channel_told", f"{shipment_id}: {what} {order.channel}"
                                     + (f" ({result.note})" if result.note else "") + f" at {utcnow()}")
        return True

    ports.orders.update(order_id, note)


def retry_delay(receive_count: int) -> int:
    return backoff_seconds(receive_count, env_var=RETRY_SECONDS_ENV, default=DEFAULT_RETRY_SECONDS,
                           maximum=MAX_RETRY_SECONDS)


def handle_record(body: str, *, receive_count: int, receipt_handle: str | None, ports: Ports) -> str:
    """One message of the channel-updates queue. Raises to have SQS deliver it again, later."""
    update = ChannelUpdate.model_validate_json(body)
    try:
        return tell_channel(update, ports)
    except Exception as err:
        _failed(update, err, receive_count, receipt_handle, ports)
        raise


def _failed(update: ChannelUpdate, err: Exception, receive_count: int, receipt_handle: str | None,
            ports: Ports) -> None:
    attempts = CHANNEL_UPDATES.max_receives
    last = receive_count >= attempts
    delay = retry_delay(receive_count)
    message = getattr(err, "message", None) or f"{type(err).__name__}: {err}"
    what = ("it goes to the dead-letter queue (redrive it once the channel is back)" if last
            else f"retrying in {delay}s")
    log.warning("order %s shipment %s: telling its channel failed (attempt %d of %d): %s; %s", update.order_id,
                update.shipment_id, receive_count, attempts, message, what)
    try:
        _note_failure(ports, update, f"{message} (attempt {receive_count} of {attempts}; {what})")
    except Exception as exc:  # noqa: BLE001 - the note is a courtesy; the retry is what matters
        log.warning("could not note the failure on order %s: %s", update.order_id, exc)
    redeliver_later(CHANNEL_UPDATES, receipt_handle, delay, last=last)


def _note_failure(ports: Ports, update: ChannelUpdate, detail: str) -> None:
    def note(order: Order) -> Any:
        last = next((e for e in reversed(order.events) if e.type == "channel_update_failed"), None)
        if last is not None and last.detail == f"{update.shipment_id}: {detail}":
            return False
        order.record("channel_update_failed", f"{update.shipment_id}: {detail}")
        return True

    ports.orders.update(update.order_id, note)
