"""The supplier forwarder: a supplier-orders message becomes the supplier's order file.

For each message (:class:`orderflow.fulfillment.ForwardMessage`):

1. a cancelled order is acknowledged without writing (the supplier gets a cancellation file if it
   already has the order file) and its waiting task is failed with ``OrderCancelled``;
   an order whose workflow stopped waiting (needs attention, completed, execution over) is
   acknowledged without writing;
2. otherwise the order file is written once per shipment (:func:`deliver`), then
   :func:`orderflow.orders.accept_forwarded` records where the supplier has it and the order is
   ``in_fulfillment``.

:func:`deliver` claims the shipment's sent-files record with a conditional put before it touches
the server, and moves it through ``writing`` (the ``.tmp`` upload may or may not have happened) ->
``uploaded`` (the ``.tmp`` is complete; from here on it is only ever renamed) -> ``sent``. A redelivered
message, a second execution or a crash at any point therefore never produces a second order at
the supplier, even after the supplier moved the first file away.

A supplier that cannot be reached fails the record: SQS delivers it again after a growing delay
(set here through the message's visibility), up to the queue's ``max_receives``; then the message
goes to the dead-letter queue. Each failed attempt is an event on the order, and the execution keeps
waiting: a DLQ redrive once the server is back completes the forward, and if nobody does, the
shipment's SLA (the workflow's ``CheckOverdue``) puts the order in ``needs_attention``.
"""

from __future__ import annotations

import hashlib
import logging
import posixpath
import time
import uuid
from dataclasses import dataclass
from typing import Literal

from orderflow import config
from orderflow.adapters.redelivery import backoff_seconds, redeliver_later
from orderflow.errors import ConcurrentUpdate, NotFound, OrderCancelled, TransientError
from orderflow.fulfillment import ForwardMessage
from orderflow.models import Order, OrderStatus, Shipment, ShipmentStatus, utcnow
from orderflow.orders import FORWARDABLE, accept_forwarded
from orderflow.ports import Ports
from orderflow.queues import SUPPLIER_ORDERS
from orderflow.suppliers.cancellation import record_once, tell_supplier
from orderflow.suppliers.config import SupplierConfig
from orderflow.suppliers.files import order_file, order_file_name
from orderflow.suppliers.ports import Connections, Suppliers
from orderflow.suppliers.sftp import SftpOperationError, SupplierUnavailable
from orderflow.suppliers.store import SentFile

log = logging.getLogger(__name__)

#: How long one forwarder may hold a shipment's upload before another may take it over.
UPLOAD_LEASE_SECONDS = 120
#: First retry delay when the supplier cannot be reached; doubles per attempt (capped).
RETRY_SECONDS_ENV = config.SUPPLIER_RETRY_SECONDS.name
DEFAULT_RETRY_SECONDS = int(config.SUPPLIER_RETRY_SECONDS.default or 60)
MAX_RETRY_SECONDS = 900


class SupplierNotConfigured(TransientError):
    """The warehouse has no (enabled) supplier configuration yet: retried, the seller may add it."""

    code = "supplier_not_configured"


class ForwardInProgress(TransientError):
    """Another delivery of the same shipment is uploading right now: try again shortly."""

    code = "forward_in_progress"


#: Errors after which the message is retried by SQS.
RETRYABLE = (SupplierUnavailable, SftpOperationError, SupplierNotConfigured, ForwardInProgress)


@dataclass
class ForwardResult:
    outcome: Literal["sent", "already_sent", "cancelled", "already_shipped", "stale"]
    detail: str
    file_name: str | None = None


def execution_running(execution_arn: str, ports: Ports) -> bool:
    """Whether the execution that sent a message still runs (an unreadable status is a TransientError)."""
    return ports.workflow.execution_status(execution_arn) == "RUNNING"


def forward(message: ForwardMessage, ports: Ports, suppliers: Suppliers, connections: Connections) -> ForwardResult:
    order = ports.orders.get(message.order_id)
    shipment = order.shipment(message.shipment_id)
    if order.status == OrderStatus.CANCELLED or shipment.status == ShipmentStatus.CANCELLED:
        return _cancelled(message, order, shipment, ports, suppliers, connections)
    if shipment.status == ShipmentStatus.SHIPPED:  # recording it settled the order (orderflow.orders.settle)
        return ForwardResult("already_shipped", f"{shipment.shipment_id} has tracking already; nothing sent")
    if order.status not in FORWARDABLE:
        return ForwardResult("stale", f"order is {order.status.value}; its workflow no longer waits for this shipment")
    if message.execution_id and not execution_running(message.execution_id, ports):
        return ForwardResult("stale", "the execution that sent this message is over; nothing sent")
    config = suppliers.store.config(message.warehouse_id)
    if config is None or not config.enabled:
        raise SupplierNotConfigured(
            f"warehouse {message.warehouse_id} has no {'enabled ' if config else ''}supplier configuration "
            f"(PUT /suppliers/{message.warehouse_id})", warehouse_id=message.warehouse_id)
    record, written = deliver(config, order, shipment, suppliers, connections)
    try:
        accept_forwarded(message, record.file_name, ports)
    except OrderCancelled:
        return _cancelled(message, ports.orders.get(message.order_id), shipment, ports, suppliers, connections)
    return ForwardResult("sent" if written else "already_sent", f"{record.file_name} in {config.folders.inbound}",
                         record.file_name)


def _cancelled(message: ForwardMessage, order: Order, shipment: Shipment, ports: Ports, suppliers: Suppliers,
               connections: Connections) -> ForwardResult:
    name = tell_supplier(order, shipment, ports, suppliers, connections)
    ports.workflow.abandon(message.task_token, "OrderCancelled", f"order {order.order_id} was cancelled")
    detail = f"order cancelled; cancellation file {name}" if name else "order cancelled before the supplier had it"
    return ForwardResult("cancelled", detail, name)


def deliver(config: SupplierConfig, order: Order, shipment: Shipment, suppliers: Suppliers,
            connections: Connections) -> tuple[SentFile, bool]:
    """Make sure the supplier has the shipment's order file, exactly once. Returns (record, written now)."""
    store = suppliers.store
    wid = config.warehouse_id
    record = store.sent(wid, shipment.shipment_id)
    if record is not None and record.status == "sent":
        store.open(wid, order.order_id, shipment.shipment_id, record.file_name)
        return record, False
    sftp = connections.get(config)  # reach the server before claiming anything
    me = uuid.uuid4().hex
    now = int(time.time())
    if record is None:
        record = SentFile(warehouse_id=wid, shipment_id=shipment.shipment_id, order_id=order.order_id,
                          file_name=order_file_name(config, order, shipment), owner=me,
                          lease_until=now + UPLOAD_LEASE_SECONDS)
        if not store.claim(record):
            record = store.sent(wid, shipment.shipment_id)
            assert record is not None
            if record.status == "sent":
                store.open(wid, order.order_id, shipment.shipment_id, record.file_name)
                return record, False
    if record.owner != me:
        if record.owner and record.lease_until > now:
            raise ForwardInProgress(f"shipment {shipment.shipment_id} is being uploaded by another delivery")
        record.owner, record.lease_until = me, now + UPLOAD_LEASE_SECONDS
        try:
            store.save_sent(record)
        except ConcurrentUpdate as err:
            raise ForwardInProgress(f"shipment {shipment.shipment_id} was taken over by another delivery") from err
    final = posixpath.join(config.folders.inbound, record.file_name)
    tmp = final + ".tmp"
    try:
        if record.status == "writing":
            data = order_file(config, order, shipment)
            sftp.put(tmp, data)
            record.status, record.sha256 = "uploaded", hashlib.sha256(data).hexdigest()
            record.lease_until = int(time.time()) + UPLOAD_LEASE_SECONDS
            try:
                store.save_sent(record)  # from here on the file is only ever renamed, never uploaded again
            except ConcurrentUpdate as err:
                raise ForwardInProgress(f"shipment {shipment.shipment_id} was taken over by another delivery") from err
            sftp.rename(tmp, final)
        elif sftp.exists(tmp):  # uploaded, not renamed yet
            sftp.rename(tmp, final)
        # else: uploaded and renamed before (the supplier may have taken it already): nothing to do
    except FileNotFoundError as err:
        connections.drop(wid)
        _let_go(store, record, me)
        raise SftpOperationError(f"folder {config.folders.inbound} does not exist on the supplier's server") from err
    except (SupplierUnavailable, SftpOperationError):
        connections.drop(wid)
        _let_go(store, record, me)
        raise
    record.status, record.sent_at, record.owner, record.lease_until = "sent", utcnow(), "", 0
    store.save_sent(record)
    store.open(wid, order.order_id, shipment.shipment_id, record.file_name)
    return record, True


def _let_go(store, record: SentFile, me: str) -> None:  # noqa: ANN001
    """After a failed attempt: free the shipment for the next delivery at once (keeping how far it got)."""
    def free(rec: SentFile) -> bool:
        if rec.owner != me:
            return False
        rec.owner, rec.lease_until = "", 0
        return True

    try:
        store.update_sent(record.warehouse_id, record.shipment_id, free)
    except Exception as exc:  # noqa: BLE001 - the lease runs out by itself
        log.warning("could not release the upload lease of %s: %s", record.shipment_id, exc)


# -- one SQS record -------------------------------------------------------------------------------


def retry_delay(receive_count: int) -> int:
    return backoff_seconds(receive_count, env_var=RETRY_SECONDS_ENV, default=DEFAULT_RETRY_SECONDS,
                           maximum=MAX_RETRY_SECONDS)


def handle_record(body: str, *, receive_count: int, receipt_handle: str | None, ports: Ports, suppliers: Suppliers,
                  connections: Connections) -> ForwardResult:
    """One message of the supplier queue. Raises to have SQS deliver it again (after a backoff)."""
    message = ForwardMessage.model_validate_json(body)
    try:
        result = forward(message, ports, suppliers, connections)
    except RETRYABLE as err:
        _failed(message, err, receive_count, receipt_handle, ports)
        raise
    log.info("forward %s: %s (%s)", message.shipment_id, result.outcome, result.detail)
    return result


def _failed(message: ForwardMessage, err: TransientError, receive_count: int, receipt_handle: str | None,
            ports: Ports) -> None:
    attempts = SUPPLIER_ORDERS.max_receives
    last = receive_count >= attempts
    delay = retry_delay(receive_count)
    log.warning("forward %s to %s failed (attempt %d of %d): %s", message.shipment_id, message.warehouse_id,
                receive_count, attempts, err.message)
    if isinstance(err, ForwardInProgress):
        return
    if last:
        try:
            sla = f"{ports.settings.warehouse(message.warehouse_id).sla_hours}h"
        except NotFound:
            sla = "SLA"
        what = (f"attempt {receive_count} of {attempts}: the message goes to the dead-letter queue; redrive it once "
                f"the server is back, or the order needs attention when the supplier's {sla} SLA runs out")
    else:
        what = f"attempt {receive_count} of {attempts}, retrying in {delay}s"
    try:
        record_once(ports, message.order_id, "forward_failed",
                    f"{message.shipment_id} to {message.warehouse_id}: {err.message}; {what}")
    except Exception as exc:  # noqa: BLE001 - the note is a courtesy; the retry is what matters
        log.warning("could not note the failed forward on order %s: %s", message.order_id, exc)
    redeliver_later(SUPPLIER_ORDERS, receipt_handle, delay, last=last)
