"""Suppliers on ``orderflow local``: the forwarder on the supplier queue, the tracking poll on the
local scheduler, and (with sample data) a sandbox SFTP server with a dropship supplier and a 3PL.

- the supplier-orders queue is fed to ``functions.forward_supplier.handler`` by a local poller, as
  Lambda's event source mapping does on AWS (batches, partial batch failures, redrive to the DLQ);
- ``functions.poll_tracking.handler`` runs every ``poll_every`` seconds (divided by the stack's
  schedule speed-up), as the EventBridge Scheduler schedule does on AWS;
- credentials go to ``<state dir>/supplier-credentials.json`` (mode 0600), never to the table;
- the sandbox server listens on a free loopback port; each sandbox supplier's folder is a fresh
  temporary folder, and its configuration pins the server's generated host key.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orderflow.config import SANDBOX_SUPPLIER_DELAY
from orderflow.suppliers.config import (
    Folders,
    OrderColumn,
    OrderFileFormat,
    SftpSettings,
    SupplierConfig,
    SupplierCredentials,
    TrackingFileFormat,
)
from orderflow.suppliers.credentials import CREDENTIALS_FILE_ENV

#: How often the local stack polls suppliers' tracking files (AWS: the schedule's rate, 5 minutes).
DEFAULT_POLL_SECONDS = 10.0
SANDBOX_DELAY_ENV = SANDBOX_SUPPLIER_DELAY.name


@dataclass
class SupplierRuntime:
    poller: Any = None
    job: Any = None
    sandbox: Any = None
    root: Path | None = None
    described: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None

    def describe(self) -> list[str]:
        return self.described


def prepare(stack: Any) -> None:
    """Keep supplier credentials in the stack's state folder (fresh for each run: the data is in memory)."""
    path = (stack.state_dir / "supplier-credentials.json").resolve()
    path.unlink(missing_ok=True)
    os.environ[CREDENTIALS_FILE_ENV] = str(path)


def start_suppliers(stack: Any, *, poll_every: float = DEFAULT_POLL_SECONDS, sandbox: bool = False) -> SupplierRuntime:
    prepare(stack)
    runtime = SupplierRuntime()
    # The template's event source mapping of supplier-orders, and its poll_tracking schedule run this often.
    runtime.poller = stack.poller_of("forward_supplier")
    stack.schedules.override("poll_tracking", poll_every)
    runtime.job = stack.scheduler.jobs.get(stack.schedules.job_name("poll_tracking"))
    speed = stack.scheduler.speedup
    runtime.described.append(f"tracking files polled every {poll_every / speed:g}s; order files forwarded "
                             "from the supplier-orders queue")
    if sandbox:
        from orderflow_local.sandbox.sftp import SandboxSftpServer

        runtime.root = Path(tempfile.mkdtemp(prefix="orderflow-sftp-"))
        runtime.sandbox = SandboxSftpServer(runtime.root, host=stack.host).start()
    return runtime


#: The sandbox suppliers of the sample data: (warehouse id, login, what it looks like).
SANDBOX_DROPSHIP = "acme-dropship"
SANDBOX_3PL = "north-3pl"


def sandbox_configs(server: Any) -> list[tuple[SupplierConfig, SupplierCredentials, dict]]:
    """A dropship supplier with the canonical formats, and a 3PL with its own column names, semicolons,
    two parcels per order and files deleted after reading (to show what is configurable)."""
    settings = {"host": server.host, "port": server.port, "host_key_fingerprint": server.fingerprint}
    dropship = SupplierConfig(
        warehouse_id=SANDBOX_DROPSHIP, name="Acme Lamps (sandbox dropship supplier)", code="ACME",
        sftp=SftpSettings(username="acme", **settings),
        tracking_file=TrackingFileFormat(min_age_seconds=0),
        supplier_skus={"LAMP-DESK": "ACME-L100"}, unit_costs={"LAMP-DESK": "18.40"})
    three_pl = SupplierConfig(
        warehouse_id=SANDBOX_3PL, name="North Fulfilment (sandbox 3PL)", code="NORTH",
        sftp=SftpSettings(username="north", **settings),
        folders=Folders(inbound="/orders", outbound="/shipments", archive="/processed", error="/rejected"),
        order_file=OrderFileFormat(
            delimiter=";", file_name="NORTH_{date}_{shipment_id}.csv",
            columns=[OrderColumn(header=h, field=f) for h, f in (
                ("PO", "po_number"), ("OrderRef", "order_number"), ("Name", "ship_name"),
                ("Address1", "ship_address1"), ("Address2", "ship_address2"), ("City", "ship_city"),
                ("State", "ship_state"), ("Zip", "ship_postal_code"), ("Country", "ship_country"),
                ("Item", "sku"), ("Qty", "quantity"))] + [OrderColumn(header="Service", value="STANDARD")]),
        tracking_file=TrackingFileFormat(
            delimiter=";", tracking_separators="|", min_age_seconds=0, file_pattern="SHIP_*.csv",
            columns={"po_number": "PO", "order_number": "OrderRef", "sku": "Item", "quantity": "Qty",
                     "carrier": "Carrier", "tracking_number": "Tracking"}),
        archive_mode="delete")
    return [(dropship, SupplierCredentials(password=secrets.token_urlsafe(16)), {"parcels": 1, "carrier": "UPS"}),
            (three_pl, SupplierCredentials(password=secrets.token_urlsafe(16)), {"parcels": 2, "carrier": "FedEx"})]


def seed_sandbox_suppliers(runtime: SupplierRuntime, *, delay_seconds: float | None = None) -> list[str]:
    """Configure the sandbox suppliers (their warehouses and stock come from ``orderflow_local.seed``)
    and start the supplier behind each account. Returns a line per supplier for the banner."""
    from orderflow.suppliers.ports import default_suppliers
    from orderflow.wiring import default_ports
    from orderflow_local.sandbox.sftp import SandboxSupplier

    server = runtime.sandbox
    assert server is not None, "start_suppliers(..., sandbox=True) first"
    delay = float(os.environ.get(SANDBOX_DELAY_ENV, 3.0)) if delay_seconds is None else delay_seconds
    suppliers = default_suppliers(default_ports())
    store, credentials = suppliers.store, suppliers.credentials
    lines = []
    for config, secret, behaviour in sandbox_configs(server):
        folder = server.add_account(config.sftp.username, secret.password.get_secret_value())
        for name in (config.folders.inbound, config.folders.outbound):
            (folder / name.strip("/")).mkdir(parents=True, exist_ok=True)
        config.credentials_ref = credentials.put(config.warehouse_id, secret)
        existing = store.config(config.warehouse_id)  # a restarted stack has it already: replace it
        if existing is not None:
            config.created_at, config._version = existing.created_at, existing._version
        store.put_config(config)
        supplier = SandboxSupplier(folder, order_format=config.order_file, tracking_format=config.tracking_file,
                                   in_folder=config.folders.inbound, out_folder=config.folders.outbound,
                                   delay_seconds=delay, **behaviour).start()
        server.suppliers.append(supplier)
        lines.append(f"{config.warehouse_id}: sftp://{config.sftp.username}@{server.host}:{server.port} "
                     f"({folder})")
    runtime.described.extend(lines)
    return lines
