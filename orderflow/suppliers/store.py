"""The suppliers' records in the settings table (``entity`` + ``id``), all small documents:

- ``supplier`` / warehouse id: the configuration (:class:`SupplierConfig`), never credentials;
- ``supplier-file#<warehouse>`` / shipment id: the sent-files record (:class:`SentFile`): which order
  file a shipment produced and how far its upload got. Claimed with a conditional put, so a
  redelivered message never writes a second order, even after the supplier moved the first away;
  it also keeps the partial-shipment progress read from tracking files;
- ``supplier-open#<warehouse>`` / shipment id: shipments at the supplier that have not shipped (the
  tracking poll checks them for cancellations); deleted when shipped or cancelled;
- ``supplier-tracking#<warehouse>`` / sha256: the tracking files read (:class:`TrackingFileRecord`), so
  a file read twice does nothing twice;
- ``supplier-poll`` / warehouse id: a lease so one poll of a supplier runs at a time.
"""

from __future__ import annotations

import time
from typing import Literal

from pydantic import Field

from orderflow.errors import ConcurrentUpdate, Conflict
from orderflow.models import Document, utcnow
from orderflow.ports import Documents, SettingsDocs
from orderflow.suppliers.config import SupplierConfig

CONFIG = "supplier"
POLL_LEASE = "supplier-poll"


def _files(warehouse_id: str) -> str:
    return f"supplier-file#{warehouse_id}"


def _open(warehouse_id: str) -> str:
    return f"supplier-open#{warehouse_id}"


def _tracking(warehouse_id: str) -> str:
    return f"supplier-tracking#{warehouse_id}"


# ``defer_build=True`` (here and below): pydantic builds a model's validator when it is first used, not at
# import, so a function's cold start pays only for the models it validates (issue 13).
class SentFile(Document, defer_build=True):
    warehouse_id: str
    shipment_id: str
    order_id: str
    file_name: str
    #: writing: claimed, the upload may not have happened; uploaded: the .tmp is complete and is being
    #: renamed (never upload again from here on); sent: the supplier has it.
    status: Literal["writing", "uploaded", "sent"] = "writing"
    owner: str = ""
    lease_until: int = 0  # epoch seconds
    claimed_at: str = Field(default_factory=utcnow)
    sent_at: str | None = None
    sha256: str | None = None
    #: Tracking read back: units shipped per SKU, the rows that counted them (``<file sha>:<row>``).
    shipped: dict[str, int] = Field(default_factory=dict)
    applied_rows: list[str] = Field(default_factory=list)
    tracking_numbers: list[str] = Field(default_factory=list)
    carrier: str | None = None
    completed_at: str | None = None
    cancel_file: str | None = None
    cancel_sent_at: str | None = None


class OpenShipment(Document, defer_build=True):
    order_id: str
    shipment_id: str
    file_name: str


class TrackingFileRecord(Document, defer_build=True):
    warehouse_id: str
    sha256: str
    file_name: str
    outcome: Literal["applied", "rejected"]
    rows_ok: int = 0
    rows_bad: int = 0
    rows_duplicate: int = 0
    error_file: str | None = None
    read_at: str = Field(default_factory=utcnow)


class PollLease(Document, defer_build=True):
    owner: str
    until: int  # epoch seconds


class SupplierStore:
    """Supplier configurations, batches and poll leases: typed documents in the settings table
    (``settings``), deleted through the document store (``docs``); orderflow.wiring's ports hand both."""

    def __init__(self, settings: SettingsDocs, docs: Documents) -> None:
        self.settings = settings
        self.docs = docs

    # configurations

    def config(self, warehouse_id: str) -> SupplierConfig | None:
        return self.settings.get_doc(CONFIG, warehouse_id, SupplierConfig)

    def configs(self) -> list[SupplierConfig]:
        return sorted(self.settings.list_docs(CONFIG, SupplierConfig), key=lambda c: c.warehouse_id)

    def put_config(self, config: SupplierConfig) -> SupplierConfig:
        self.settings.put_doc(CONFIG, config.warehouse_id, config)
        return config

    # sent files

    def sent(self, warehouse_id: str, shipment_id: str) -> SentFile | None:
        return self.settings.get_doc(_files(warehouse_id), shipment_id, SentFile)

    def claim(self, record: SentFile) -> bool:
        """Write a new sent-file record; False if the shipment has one already."""
        try:
            self.settings.put_doc(_files(record.warehouse_id), record.shipment_id, record, new=True)
        except Conflict:
            return False
        return True

    def save_sent(self, record: SentFile) -> None:
        """Raises :class:`ConcurrentUpdate` if someone else changed it since it was read."""
        self.settings.put_doc(_files(record.warehouse_id), record.shipment_id, record)

    def update_sent(self, warehouse_id: str, shipment_id: str, change, attempts: int = 6) -> SentFile | None:  # noqa: ANN001
        """Read, change (may return False: no write), save; again if it changed meanwhile."""
        for attempt in range(attempts):
            record = self.sent(warehouse_id, shipment_id)
            if record is None or change(record) is False:
                return record
            try:
                self.save_sent(record)
                return record
            except ConcurrentUpdate:
                if attempt == attempts - 1:
                    raise
        return None

    # shipments at the supplier, not shipped yet

    def open(self, warehouse_id: str, order_id: str, shipment_id: str, file_name: str) -> None:
        doc = OpenShipment(order_id=order_id, shipment_id=shipment_id, file_name=file_name)
        try:
            self.settings.put_doc(_open(warehouse_id), shipment_id, doc, new=True)
        except Conflict:
            pass

    def open_shipments(self, warehouse_id: str) -> list[OpenShipment]:
        return self.settings.list_docs(_open(warehouse_id), OpenShipment)

    def close(self, warehouse_id: str, shipment_id: str) -> None:
        self._delete(_open(warehouse_id), shipment_id)

    # tracking files read

    def tracking_file(self, warehouse_id: str, sha256: str) -> TrackingFileRecord | None:
        return self.settings.get_doc(_tracking(warehouse_id), sha256, TrackingFileRecord)

    def record_tracking_file(self, record: TrackingFileRecord) -> bool:
        try:
            self.settings.put_doc(_tracking(record.warehouse_id), record.sha256, record, new=True)
        except Conflict:
            return False
        return True

    # one poll per supplier at a time

    def acquire_poll(self, warehouse_id: str, owner: str, seconds: int) -> bool:
        now = int(time.time())
        lease = self.settings.get_doc(POLL_LEASE, warehouse_id, PollLease)
        if lease is not None and lease.until > now and lease.owner != owner:
            return False
        fresh = PollLease(owner=owner, until=now + seconds)
        fresh._version = lease._version if lease else 0
        try:
            self.settings.put_doc(POLL_LEASE, warehouse_id, fresh, new=lease is None)
        except (ConcurrentUpdate, Conflict):
            return False
        return True

    def release_poll(self, warehouse_id: str, owner: str) -> None:
        lease = self.settings.get_doc(POLL_LEASE, warehouse_id, PollLease)
        if lease is not None and lease.owner == owner:
            lease.until = 0
            try:
                self.settings.put_doc(POLL_LEASE, warehouse_id, lease)
            except ConcurrentUpdate:
                pass

    def _delete(self, entity: str, doc_id: str) -> None:
        self.docs.delete(entity, doc_id)
