"""Telling a supplier that a shipment it has was cancelled: a cancellation file in its ``in`` folder,
written once per shipment (the sent-files record remembers it).

Nothing is written for a shipment whose order file never reached the supplier: a half-finished
upload (``.tmp``) is removed instead. Three paths lead here, whichever comes first:
the cancel itself (:func:`orderflow.service.cancel_order`), the forwarder meeting a
message of a cancelled order, and the tracking poll, which checks the supplier's open shipments.
"""

from __future__ import annotations

import logging
import posixpath

from orderflow.errors import TransientError
from orderflow.models import Order, OrderStatus, Shipment, ShipmentStatus, utcnow
from orderflow.ports import Ports
from orderflow.suppliers.config import SupplierConfig
from orderflow.suppliers.files import cancel_file, cancel_file_name
from orderflow.suppliers.ports import Connections, Suppliers, default_suppliers
from orderflow.suppliers.sftp import SftpOperationError, SupplierUnavailable
from orderflow.suppliers.store import SentFile

log = logging.getLogger(__name__)


def record_once(ports: Ports, order_id: str, event_type: str, detail: str) -> None:
    """Add an event to the order unless the same one is there already."""

    def note(order: Order) -> bool:
        if any(e.type == event_type and e.detail == detail for e in order.events):
            return False
        order.record(event_type, detail)
        return True

    ports.orders.update(order_id, note)


def _cancel_reason(order: Order) -> tuple[str, str]:
    for event in reversed(order.events):
        if event.type == "cancelled":
            return event.detail or "cancelled", event.at
    return "cancelled", order.updated_at


def tell_supplier(order: Order, shipment: Shipment, ports: Ports, suppliers: Suppliers,
                  connections: Connections, config: SupplierConfig | None = None) -> str | None:
    """Write the shipment's cancellation file if the supplier has its order file. Returns the file name
    (also when it was written before), or None when the supplier has nothing to cancel.
    Raises :class:`SupplierUnavailable` / :class:`SftpOperationError` if the server cannot take it now."""
    config = config or suppliers.store.config(shipment.warehouse_id)
    if config is None:
        return None
    store = suppliers.store
    record = store.sent(config.warehouse_id, shipment.shipment_id)
    if record is None:
        return None
    if record.cancel_sent_at:
        store.close(config.warehouse_id, shipment.shipment_id)
        return record.cancel_file
    inbound = config.folders.inbound
    if record.status != "sent":
        # The order file may be half uploaded; if the .tmp is still there it was never renamed, so the
        # supplier never saw it: remove it and there is nothing to cancel.
        sftp = connections.get(config)
        tmp = posixpath.join(inbound, record.file_name) + ".tmp"
        if record.status == "writing" or sftp.exists(tmp):
            sftp.remove(tmp)
            store.close(config.warehouse_id, shipment.shipment_id)
            return None
    if not config.order_file.send_cancellations:
        record_once(ports, order.order_id, "supplier_not_told",
                    f"{shipment.shipment_id}: {config.warehouse_id} takes no cancellation files; tell them yourself")
        store.close(config.warehouse_id, shipment.shipment_id)
        return None
    reason, cancelled_at = _cancel_reason(order)
    name = cancel_file_name(config, order, shipment)
    data = cancel_file(config, order, shipment, reason=reason, cancelled_at=cancelled_at)
    sftp = connections.get(config)
    try:
        sftp.write_atomic(inbound, name, data)
    except (SupplierUnavailable, SftpOperationError, FileNotFoundError) as err:
        connections.drop(config.warehouse_id)
        if isinstance(err, FileNotFoundError):
            raise SftpOperationError(f"folder {inbound} does not exist on the supplier's server") from err
        raise

    def sent(rec: SentFile) -> bool:
        if rec.cancel_sent_at:
            return False
        rec.cancel_file, rec.cancel_sent_at = name, utcnow()
        return True

    store.update_sent(config.warehouse_id, shipment.shipment_id, sent)
    store.close(config.warehouse_id, shipment.shipment_id)
    record_once(ports, order.order_id, "supplier_cancel_sent", f"{shipment.shipment_id}: {name} to {config.warehouse_id}")
    return name


def tell_suppliers(order: Order, ports: Ports, suppliers: Suppliers | None = None) -> dict[str, str]:
    """After a cancel: tell every supplier that has one of the order's shipments. Never raises for a
    supplier that cannot be reached (its next tracking poll tries again). Returns shipment -> outcome."""
    if order.status != OrderStatus.CANCELLED:
        return {}
    suppliers = suppliers or default_suppliers(ports)
    outcomes: dict[str, str] = {}
    with Connections(suppliers) as connections:
        for shipment in order.shipments:
            if shipment.method.value not in ("dropship", "3pl") or shipment.status == ShipmentStatus.SHIPPED:
                continue
            try:
                name = tell_supplier(order, shipment, ports, suppliers, connections)
                outcomes[shipment.shipment_id] = f"sent {name}" if name else "nothing to cancel"
            except TransientError as err:
                log.warning("supplier %s not told of cancelled shipment %s yet: %s", shipment.warehouse_id,
                            shipment.shipment_id, err.message)
                outcomes[shipment.shipment_id] = f"pending: {err.message}"
                record_once(ports, order.order_id, "supplier_cancel_pending",
                            f"{shipment.shipment_id}: {err.message}; the next tracking poll tries again")
    return outcomes


class SupplierRoute:
    """Dropship suppliers and 3PLs as a fulfilment route (orderflow.ports.FulfilmentRoute): nothing to ask
    before a cancel; after it, each one holding a shipment gets a cancellation file."""

    def recall(self, order: Order, ports: Ports) -> None:
        return None

    def cancelled(self, order: Order, ports: Ports) -> bool:
        return any(s.fulfiller_ref for s in order.shipments) and bool(tell_suppliers(order, ports))
