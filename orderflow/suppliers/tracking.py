"""The tracking poll: read each supplier's ``out`` folder and resume the shipments that shipped.

For every tracking file (by name pattern; ``.tmp`` files, hidden files and files younger than
``min_age_seconds`` or still growing are left for the next poll):

- its sha256 is looked up in the ledger: a file read before does nothing again (it is only
  archived); otherwise
- its rows are parsed (:func:`orderflow.suppliers.files.read_tracking_file`) and matched to our
  shipments; good rows count towards their shipment (partial shipments add up per SKU), and a
  shipment that is complete gets its tracking through :func:`orderflow.service.add_tracking`, which
  resumes its execution (``SendTaskSuccess``);
- bad rows go to ``error/<name>.errors.csv`` with the reason per row; a file that cannot be read at
  all goes to ``error/`` with a ``.err.txt`` note;
- the file is archived (``archive/YYYY/MM/DD/<name>``), deleted or left, per ``archive_mode``.

Then the supplier's open shipments are checked: one whose order was cancelled gets its
cancellation file (:mod:`orderflow.suppliers.cancellation`). A lease makes one poll of a supplier
run at a time.
"""

from __future__ import annotations

import fnmatch
import hashlib
import logging
import posixpath
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import BaseModel

from orderflow.errors import Conflict, NotFound, OrderflowError, TransientError
from orderflow.models import Order, OrderStatus, Shipment, ShipmentStatus
from orderflow.ports import Ports
from orderflow.suppliers.cancellation import record_once, tell_supplier
from orderflow.suppliers.config import ArchiveMode, SupplierConfig
from orderflow.suppliers.files import (
    BadRow,
    FileRejected,
    TrackingRow,
    error_file,
    order_file_name,
    read_tracking_file,
)
from orderflow.suppliers.ports import Connections, Suppliers, default_suppliers
from orderflow.suppliers.sftp import SftpClient, SftpOperationError, SupplierUnavailable
from orderflow.suppliers.store import SentFile, TrackingFileRecord

log = logging.getLogger(__name__)

POLL_LEASE_SECONDS = 300


class SupplierPoll(BaseModel, defer_build=True):
    """What one poll of one supplier did."""

    warehouse_id: str
    files_read: int = 0
    files_duplicate: int = 0
    files_rejected: int = 0
    files_waiting: int = 0
    rows_applied: int = 0
    rows_bad: int = 0
    rows_duplicate: int = 0
    shipments_completed: int = 0
    shipments_partial: int = 0
    cancellations_sent: int = 0
    error_files: list[str] = []
    skipped: str | None = None
    error: str | None = None


class PollReport(BaseModel, defer_build=True):
    suppliers: list[SupplierPoll] = []

    def totals(self) -> dict[str, int]:
        keys = ("files_read", "files_duplicate", "files_rejected", "rows_applied", "rows_bad",
                "shipments_completed", "cancellations_sent")
        out = {k: sum(getattr(s, k) for s in self.suppliers) for k in keys}
        out["errors"] = sum(1 for s in self.suppliers if s.error)
        return out


def poll_all(ports: Ports, suppliers: Suppliers | None = None, *, warehouse_id: str | None = None,
             clock: Callable[[], float] = time.time) -> PollReport:
    suppliers = suppliers or default_suppliers(ports)
    if warehouse_id:
        config = suppliers.store.config(warehouse_id)
        if config is None:
            raise NotFound(f"no supplier is configured for warehouse {warehouse_id}", warehouse_id=warehouse_id)
        configs = [config]
    else:
        configs = suppliers.store.configs()
    report = PollReport()
    for config in configs:
        try:
            report.suppliers.append(poll_supplier(config, ports, suppliers, clock=clock))
        except Exception as err:  # noqa: BLE001 - one supplier's trouble must not stop the others' poll
            log.exception("tracking poll of supplier %s failed", config.warehouse_id)
            message = err.message if isinstance(err, OrderflowError) else f"internal error ({type(err).__name__})"
            report.suppliers.append(SupplierPoll(warehouse_id=config.warehouse_id, error=message))
    return report


def poll_supplier(config: SupplierConfig, ports: Ports, suppliers: Suppliers, *,
                  clock: Callable[[], float] = time.time) -> SupplierPoll:
    result = SupplierPoll(warehouse_id=config.warehouse_id)
    if not config.enabled:
        result.skipped = "disabled"
        return result
    owner = uuid.uuid4().hex
    if not suppliers.store.acquire_poll(config.warehouse_id, owner, POLL_LEASE_SECONDS):
        result.skipped = "another poll of this supplier is running"
        return result
    try:
        with Connections(suppliers) as connections:
            sftp = connections.get(config)
            for remote in sorted(sftp.listdir(config.folders.outbound), key=lambda f: f.name):
                if not _is_tracking_file(config, remote.name, remote.is_file):
                    continue
                if clock() - remote.mtime < config.tracking_file.min_age_seconds:
                    result.files_waiting += 1
                    continue
                _read_file(config, sftp, remote.name, remote.size, remote.mtime, ports, suppliers, result)
            _check_open_shipments(config, ports, suppliers, connections, result)
    except (SupplierUnavailable, SftpOperationError) as err:
        result.error = err.message
        log.warning("tracking poll of supplier %s failed: %s", config.warehouse_id, err.message)
    finally:
        suppliers.store.release_poll(config.warehouse_id, owner)
    activity = result.model_dump(exclude={"warehouse_id", "error_files"}, exclude_defaults=True)
    log.log(logging.INFO if activity else logging.DEBUG, "tracking poll of supplier %s: %s", config.warehouse_id,
            activity or "nothing new")
    return result


def _is_tracking_file(config: SupplierConfig, name: str, is_file: bool) -> bool:
    if not is_file or name.startswith(".") or name.lower().endswith(".tmp"):
        return False
    return fnmatch.fnmatch(name.lower(), config.tracking_file.file_pattern.lower())


def _read_file(config: SupplierConfig, sftp: SftpClient, name: str, size: int, mtime: float, ports: Ports,
               suppliers: Suppliers, result: SupplierPoll) -> None:
    store = suppliers.store
    path = posixpath.join(config.folders.outbound, name)
    try:
        data = sftp.read(path, config.tracking_file.max_bytes)
    except FileNotFoundError:
        return  # taken away meanwhile
    except SftpOperationError as err:
        if "larger than" not in err.message:
            raise
        _reject(config, sftp, name, err.message)
        result.files_rejected += 1
        return
    again = sftp.stat(path)
    if again is None:
        return
    if again.size != len(data) or again.size != size or again.mtime != mtime:
        result.files_waiting += 1  # still being written: next poll
        return
    sha = hashlib.sha256(data).hexdigest()
    known = store.tracking_file(config.warehouse_id, sha)
    if known is not None:
        result.files_duplicate += 1
        _dispose(config, sftp, name, sha, rejected=known.outcome == "rejected")
        return
    try:
        parsed = read_tracking_file(data, config.tracking_file)
    except FileRejected as err:
        _reject(config, sftp, name, str(err))
        store.record_tracking_file(TrackingFileRecord(warehouse_id=config.warehouse_id, sha256=sha, file_name=name,
                                                      outcome="rejected"))
        result.files_rejected += 1
        return
    applied = apply_rows(config, parsed.rows, sha, ports, suppliers)
    bad = parsed.bad + applied.bad
    error_name = None
    if bad:
        error_name = _free_name(sftp, config.folders.error, f"{_stem(name)}.errors.csv", sha)
        sftp.makedirs(config.folders.error)
        sftp.write_atomic(config.folders.error, error_name,
                          error_file(parsed.header, bad, config.tracking_file.delimiter))
        result.error_files.append(error_name)
    store.record_tracking_file(TrackingFileRecord(
        warehouse_id=config.warehouse_id, sha256=sha, file_name=name, outcome="applied", rows_ok=applied.ok,
        rows_bad=len(bad), rows_duplicate=applied.duplicate, error_file=error_name))
    _dispose(config, sftp, name, sha, rejected=False)
    result.files_read += 1
    result.rows_applied += applied.ok
    result.rows_bad += len(bad)
    result.rows_duplicate += applied.duplicate
    result.shipments_completed += applied.completed
    result.shipments_partial += applied.partial


def _stem(name: str) -> str:
    return name.rsplit(".", 1)[0] if "." in name else name


def _free_name(sftp: SftpClient, folder: str, name: str, sha: str) -> str:
    if not sftp.exists(posixpath.join(folder, name)):
        return name
    stem, dot, ext = name.partition(".")
    return f"{stem}.{sha[:12]}{dot}{ext}"


def _reject(config: SupplierConfig, sftp: SftpClient, name: str, reason: str) -> None:
    """The whole file is unusable: into error/ with a note saying why (unless files must stay)."""
    log.warning("tracking file of supplier %s rejected: %s", config.warehouse_id, reason)
    sftp.makedirs(config.folders.error)
    sha = hashlib.sha256(name.encode()).hexdigest()
    target = name if config.archive_mode == ArchiveMode.LEAVE else _free_name(sftp, config.folders.error, name, sha)
    note = f"{target}.err.txt"
    sftp.write_atomic(config.folders.error, note, f"{name}: {reason}\n".encode())
    if config.archive_mode != ArchiveMode.LEAVE:
        sftp.rename(posixpath.join(config.folders.outbound, name), posixpath.join(config.folders.error, target))


def _dispose(config: SupplierConfig, sftp: SftpClient, name: str, sha: str, *, rejected: bool) -> None:
    source = posixpath.join(config.folders.outbound, name)
    if config.archive_mode == ArchiveMode.LEAVE:
        return
    if rejected:
        sftp.makedirs(config.folders.error)
        sftp.rename(source, posixpath.join(config.folders.error, _free_name(sftp, config.folders.error, name, sha)))
    elif config.archive_mode == ArchiveMode.DELETE:
        sftp.remove(source)
    else:
        folder = posixpath.join(config.folders.archive, datetime.now(UTC).strftime("%Y/%m/%d"))
        sftp.makedirs(folder)
        sftp.rename(source, posixpath.join(folder, _free_name(sftp, folder, name, sha)))


# -- rows -> shipments ------------------------------------------------------------------------------


@dataclass
class Applied:
    ok: int = 0
    duplicate: int = 0
    completed: int = 0
    partial: int = 0
    bad: list[BadRow] = field(default_factory=list)


def apply_rows(config: SupplierConfig, rows: list[TrackingRow], sha: str, ports: Ports,
               suppliers: Suppliers) -> Applied:
    out = Applied()
    orders: dict[str, Order] = {}
    groups: dict[tuple[str, str], list[TrackingRow]] = {}
    for row in rows:
        try:
            order, shipment = _resolve(config, row, ports, suppliers, orders)
        except ValueError as err:
            out.bad.append(BadRow(row.row_no, row.raw, str(err)))
            continue
        groups.setdefault((order.order_id, shipment.shipment_id), []).append(row)
    for (order_id, shipment_id), group in groups.items():
        try:
            _apply_group(config, orders[order_id], shipment_id, group, sha, ports, suppliers, out)
        except TransientError:
            raise
        except OrderflowError as err:
            already = {b.row_no for b in out.bad}
            out.bad.extend(BadRow(r.row_no, r.raw, err.message) for r in group if r.row_no not in already)
    return out


def _resolve(config: SupplierConfig, row: TrackingRow, ports: Ports, suppliers: Suppliers,
             orders: dict[str, Order]) -> tuple[Order, Shipment]:
    wid = config.warehouse_id
    shipment_id = row.po_number
    if shipment_id:
        sent = suppliers.store.sent(wid, shipment_id)
        order_id = sent.order_id if sent else (row.order_number or shipment_id.rsplit("-", 1)[0])
    else:
        order_id = row.order_number or ""
    if order_id not in orders:
        try:
            orders[order_id] = ports.orders.get(order_id)
        except NotFound:
            raise ValueError(f"no order {order_id} (po_number/order_number unknown)") from None
    order = orders[order_id]
    if shipment_id:
        try:
            shipment = order.shipment(shipment_id)
        except NotFound:
            raise ValueError(f"order {order_id} has no shipment {shipment_id}") from None
    else:
        mine = [s for s in order.shipments if s.warehouse_id == wid and s.status != ShipmentStatus.CANCELLED]
        if row.sku:
            sku = _our_sku(config, row.sku)
            mine = [s for s in mine if any(line.sku == sku for line in s.lines)] or mine
        if len(mine) > 1:
            mine = [s for s in mine if s.status != ShipmentStatus.SHIPPED] or mine
        if not mine:
            raise ValueError(f"order {order_id} has no shipment from {wid}")
        if len(mine) > 1:
            raise ValueError(f"order {order_id} has {len(mine)} shipments from {wid}; give the po_number")
        shipment = mine[0]
    if shipment.warehouse_id != wid:
        raise ValueError(f"shipment {shipment.shipment_id} ships from {shipment.warehouse_id}, not from {wid}")
    if row.sku:
        sku = _our_sku(config, row.sku)
        if not any(line.sku == sku for line in shipment.lines):
            raise ValueError(f"SKU {row.sku} is not in shipment {shipment.shipment_id}")
        row.sku = sku
    return order, shipment


def _our_sku(config: SupplierConfig, sku: str) -> str:
    for ours, theirs in config.supplier_skus.items():
        if theirs == sku:
            return ours
    return sku


def _apply_group(config: SupplierConfig, order: Order, shipment_id: str, group: list[TrackingRow], sha: str,
                 ports: Ports, suppliers: Suppliers, out: Applied) -> None:
    from orderflow import service

    store = suppliers.store
    wid = config.warehouse_id
    shipment = order.shipment(shipment_id)
    if order.status == OrderStatus.CANCELLED or shipment.status == ShipmentStatus.CANCELLED:
        raise Conflict(f"order {order.order_id} was cancelled; the supplier reports shipment {shipment_id} as "
                       "shipped: check with the supplier")
    if shipment.status == ShipmentStatus.SHIPPED:
        _already_shipped(shipment, group, out)
        return
    keys = [f"{sha[:16]}:{row.row_no}" for row in group]
    record = store.sent(wid, shipment_id)
    if record is None:
        # Tracking for a shipment we have not sent (the supplier got it some other way): keep the progress in
        # a record a later forward may still take over and upload (status writing, no owner).
        store.claim(SentFile(warehouse_id=wid, shipment_id=shipment_id, order_id=order.order_id,
                             file_name=order_file_name(config, order, shipment)))
        record = store.sent(wid, shipment_id)
        assert record is not None
    new_rows = [(row, key) for row, key in zip(group, keys, strict=True) if key not in record.applied_rows]
    if not new_rows:
        out.duplicate += len(group)
        return
    ordered: dict[str, int] = {}
    for line in shipment.lines:
        ordered[line.sku] = ordered.get(line.sku, 0) + line.quantity
    shipped = dict(record.shipped)
    whole = False
    usable: list[tuple[TrackingRow, str]] = []
    for row, key in new_rows:
        if row.sku is None:  # no SKU: the row confirms the whole shipment
            whole = True
        else:
            left = ordered[row.sku] - shipped.get(row.sku, 0)
            quantity = left if row.quantity is None else row.quantity  # no quantity: all of that SKU
            if quantity > left:
                out.bad.append(BadRow(row.row_no, row.raw, f"quantity {quantity} of {row.sku} is more than the "
                                                           f"{left} unit(s) left to ship on {shipment_id}"))
                continue
            shipped[row.sku] = shipped.get(row.sku, 0) + quantity
        usable.append((row, key))
    if not usable:
        return
    numbers = list(record.tracking_numbers)
    for row, _ in usable:
        numbers += [n for n in row.tracking_numbers if n not in numbers]
    carrier = record.carrier or usable[0][0].carrier.value
    complete = whole or all(shipped.get(sku, 0) >= qty for sku, qty in ordered.items())
    if complete:
        try:
            service.add_tracking(order.order_id, service.TrackingIn(carrier=carrier, tracking_number=numbers[0],
                                                                    shipment_id=shipment_id), ports)
        except Conflict:
            current = ports.orders.get(order.order_id).shipment(shipment_id)
            if current.status != ShipmentStatus.SHIPPED:
                raise
        _keep_numbers(ports, order.order_id, shipment_id, numbers)
        out.completed += 1

    def progress(rec: SentFile) -> bool:
        fresh = [key for _, key in usable if key not in rec.applied_rows]
        if not fresh:
            return False
        rec.applied_rows += fresh
        rec.shipped = shipped
        rec.tracking_numbers = numbers
        rec.carrier = carrier
        if complete:
            from orderflow.models import utcnow

            rec.completed_at = rec.completed_at or utcnow()
        return True

    store.update_sent(wid, shipment_id, progress)
    out.ok += len(usable)
    if complete:
        store.close(wid, shipment_id)
    else:
        out.partial += 1
        done = sum(min(shipped.get(sku, 0), qty) for sku, qty in ordered.items())
        record_once(ports, order.order_id, "supplier_partial",
                    f"{shipment_id}: {done} of {sum(ordered.values())} unit(s) shipped ({carrier} "
                    f"{', '.join(numbers)}); waiting for the rest")


def _already_shipped(shipment: Shipment, group: list[TrackingRow], out: Applied) -> None:
    known = set(shipment.tracking_numbers or []) | {shipment.tracking_number or ""}
    for row in group:
        if set(row.tracking_numbers) <= known:
            out.duplicate += 1
        else:
            out.bad.append(BadRow(row.row_no, row.raw, f"shipment {shipment.shipment_id} already has tracking "
                                                       f"{shipment.tracking_number}"))


def _keep_numbers(ports: Ports, order_id: str, shipment_id: str, numbers: list[str]) -> None:
    """Every tracking number of the shipment (several parcels), beside the first in ``tracking_number``."""

    def keep(order: Order) -> bool:
        shipment = order.shipment(shipment_id)
        if shipment.tracking_numbers == numbers:
            return False
        shipment.tracking_numbers = numbers
        return True

    ports.orders.update(order_id, keep)


def _check_open_shipments(config: SupplierConfig, ports: Ports, suppliers: Suppliers, connections: Connections,
                          result: SupplierPoll) -> None:
    """Tell the supplier about cancelled orders it still has (and forget shipments that shipped)."""
    for item in suppliers.store.open_shipments(config.warehouse_id):
        try:
            order = ports.orders.get(item.order_id)
            shipment = order.shipment(item.shipment_id)
        except NotFound:
            suppliers.store.close(config.warehouse_id, item.shipment_id)
            continue
        if order.status == OrderStatus.CANCELLED or shipment.status == ShipmentStatus.CANCELLED:
            if tell_supplier(order, shipment, ports, suppliers, connections, config):
                result.cancellations_sent += 1
        elif shipment.status == ShipmentStatus.SHIPPED:
            suppliers.store.close(config.warehouse_id, item.shipment_id)
