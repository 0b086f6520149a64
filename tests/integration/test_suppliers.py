"""Dropship suppliers and 3PLs end to end: the real ASL on the local engine, the supplier queue feeding the
real forwarder (functions.forward_supplier), a real SFTP server on loopback (asyncssh) reached by the real
paramiko client, and the tracking poll (functions.poll_tracking) resuming the executions."""

from __future__ import annotations

import csv
import io
import json
import os
import secrets
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest

from orderflow import service
from orderflow.adapters.aws import client
from orderflow.models import OrderStatus, ShipmentStatus, Warehouse
from orderflow.suppliers.config import OrderFileFormat, TrackingFileFormat
from orderflow.suppliers.forwarding import RETRY_SECONDS_ENV
from orderflow_local import lambda_binding
from orderflow_local.lambda_binding import LocalLambdaContext
from orderflow_local.sandbox.sftp import SandboxSftpServer, SandboxSupplier
from orderflow_local.stack import function_name
from tests.integration.conftest import execution_status, final_state, make_order, wait_for

AUTH = {"Authorization": "Bearer test-token"}


def eventually(check: Callable[[], object], what: str, timeout: float = 30) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


class Deliveries:
    """Sits between the supplier queue's poller and the real forwarder: records each message's outcome
    per order, and when ``twice`` is set delivers every batch twice and sends every message again."""

    def __init__(self, handler, queue_url: str) -> None:
        self.handler = handler
        self.queue_url = queue_url
        self.twice: set[str] = set()  # warehouses whose messages are duplicated
        self.outcomes: dict[str, list[str]] = defaultdict(list)
        self.bodies: dict[str, list[str]] = defaultdict(list)
        self._resent: set[str] = set()
        self._lock = threading.Lock()

    def __call__(self, event, context):
        result = self.handler(event, context)
        for record in event["Records"]:
            message = json.loads(record["body"])
            with self._lock:
                self.bodies[message["order_id"]].append(record["body"])
            if message["warehouse_id"] in self.twice:
                self.handler({"Records": [record]}, context)  # the same delivery again
                with self._lock:
                    resend = record["body"] not in self._resent
                    self._resent.add(record["body"])
                if resend:  # and a second copy of the message (SQS is at-least-once)
                    client("sqs").send_message(QueueUrl=self.queue_url, MessageBody=record["body"])
        return result

    def record(self, real):
        def recording(body, **kwargs):
            order_id = json.loads(body)["order_id"]
            try:
                result = real(body, **kwargs)
            except Exception as exc:
                with self._lock:
                    self.outcomes[order_id].append(type(exc).__name__)
                raise
            with self._lock:
                self.outcomes[order_id].append(result.outcome)
            return result

        return recording


@pytest.fixture(scope="module")
def deliveries(stack):
    """The stack's supplier wiring (as `orderflow local` runs it), with retries 1 s apart for the tests."""
    import functions.forward_supplier.handler as forwarder

    saved_retry = os.environ.get(RETRY_SECONDS_ENV)
    os.environ[RETRY_SECONDS_ENV] = "1"
    runtime = stack.start_suppliers(poll_every=3600)
    watch = Deliveries(runtime.poller.handler, runtime.poller.queue_url)
    runtime.poller.handler = watch
    real_handle = forwarder.handle_record
    forwarder.handle_record = watch.record(real_handle)
    yield watch
    forwarder.handle_record = real_handle
    runtime.poller.handler = watch.handler  # the template's mapping goes on serving the queue
    runtime.stop()
    stack.supplier_runtime = None
    if saved_retry is None:
        os.environ.pop(RETRY_SECONDS_ENV, None)
    else:
        os.environ[RETRY_SECONDS_ENV] = saved_retry


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with SandboxSftpServer(tmp_path_factory.mktemp("suppliers")) as srv:
        yield srv


@pytest.fixture
def own_server(tmp_path):
    """A server of the test's own, to take down without disturbing the others."""
    with SandboxSftpServer(tmp_path / "sftp") as srv:
        yield srv


@pytest.fixture
def api(stack):
    with httpx.Client(base_url=stack.api_url, headers=AUTH, timeout=30) as http:
        yield http


class Supplier:
    def __init__(self, warehouse_id: str, folder: Path, config: dict) -> None:
        self.warehouse_id = warehouse_id
        self.folder = folder
        self.config = config

    def files(self, sub: str) -> list[str]:
        path = self.folder / sub.strip("/")
        return sorted(p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()) if path.exists() else []

    def behind(self, **kwargs) -> SandboxSupplier:
        folders = self.config.get("folders", {})
        return SandboxSupplier(self.folder, order_format=OrderFileFormat(**self.config.get("order_file", {})),
                               tracking_format=TrackingFileFormat(**self.config.get("tracking_file", {})),
                               in_folder=folders.get("inbound", "/in"), out_folder=folders.get("outbound", "/out"),
                               delay_seconds=0, **kwargs)


@pytest.fixture
def supplier(stack, ports, api, server, uid, deliveries):
    """A dropship (or 3PL) warehouse with its supplier configured through the API."""

    def make(kind: str = "dropship", srv: SandboxSftpServer | None = None, sla_hours: int = 72, **config) -> Supplier:
        srv = srv or server
        warehouse_id = f"sup-{kind}-{uid}"
        ports.settings.put_warehouse(Warehouse(warehouse_id=warehouse_id, name=warehouse_id, kind=kind,
                                               priority=10, sla_hours=sla_hours))
        password = secrets.token_urlsafe(12)
        folder = srv.add_account(f"{kind}-{uid}", password)
        folders = config.get("folders", {})
        for name in (folders.get("inbound", "/in"), folders.get("outbound", "/out")):
            (folder / name.strip("/")).mkdir(parents=True, exist_ok=True)
        body = {"sftp": {"host": srv.host, "port": srv.port, "username": f"{kind}-{uid}",
                         "host_key_fingerprint": srv.fingerprint},
                "tracking_file": {"min_age_seconds": 0}, **config, "credentials": {"password": password}}
        body["tracking_file"] = {"min_age_seconds": 0, **body["tracking_file"]}
        resp = api.put(f"/suppliers/{warehouse_id}", json=body)
        assert resp.status_code == 201, resp.text
        assert password not in resp.text
        return Supplier(warehouse_id, folder, body)

    return make


def poll(warehouse_id: str) -> dict:
    from functions.poll_tracking.handler import lambda_handler

    report = lambda_handler({"warehouse_id": warehouse_id}, LocalLambdaContext(function_name("poll_tracking")))
    assert len(report["suppliers"]) == 1
    return report["suppliers"][0]


def csv_rows(path: Path, delimiter: str = ",") -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(path.read_text(), newline=""), delimiter=delimiter))


def ledger(ports, sku):
    return sorted(e["kind"] for e in ports.inventory.ledger_for(sku, limit=100) if e["kind"] != "set_on_hand")


def events(order, *types):
    return [e.type for e in order.events if e.type in types]


# -- the two paths end to end ------------------------------------------------------------------------


def test_a_dropship_order_is_sent_to_the_supplier_and_its_tracking_file_completes_it(stack, ports, supplier, uid,
                                                                                      address, api):
    acme = supplier("dropship", supplier_skus={f"LAMP-{uid}": "ACME-L100"})
    sku = f"LAMP-{uid}"
    ports.inventory.set_on_hand(sku, acme.warehouse_id, 5)
    order, _ = service.create_order(make_order([(sku, 2)], address), ports)

    forwarded = wait_for(ports, order.order_id, OrderStatus.IN_FULFILLMENT)
    shipment = forwarded.shipments[0]
    name = f"ORD_{acme.warehouse_id}_{shipment.shipment_id}.csv"
    assert (shipment.status, shipment.fulfiller_ref) == (ShipmentStatus.FORWARDED, name)
    assert acme.files("in") == [name]
    [row] = csv_rows(acme.folder / "in" / name)
    assert (row["po_number"], row["order_number"], row["sku"], row["supplier_sku"], row["quantity"],
            row["ship_country"]) == (shipment.shipment_id, order.order_id, sku, "ACME-L100", "2", "GB")

    acme.behind().step()  # the supplier picks the order up and writes its ship confirmation to out/
    assert acme.files("out") == [f"SHIP_{shipment.shipment_id}.csv"]
    report = poll(acme.warehouse_id)
    assert (report["files_read"], report["rows_applied"], report["shipments_completed"], report["rows_bad"]) == (
        1, 1, 1, 0)

    done = wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    assert done.shipments[0].carrier == "UPS" and done.shipments[0].tracking_number.startswith("1Z")
    assert execution_status(stack, order.order_id)["status"] == "SUCCEEDED"
    assert acme.files("out") == []
    assert acme.files("archive") == [f"{datetime.now(UTC):%Y/%m/%d}/SHIP_{shipment.shipment_id}.csv"]
    assert ledger(ports, sku) == ["reserve", "ship"]  # stock shipped once
    assert ports.inventory.levels(sku)[0].on_hand == 3
    assert events(done, "forwarded", "tracking_added", "completed") == ["forwarded", "tracking_added", "completed"]

    shown = api.get(f"/suppliers/{acme.warehouse_id}").json()
    assert shown["credentials"] == {"stored": True, "kinds": ["password"]}
    assert acme.config["credentials"]["password"] not in json.dumps(shown)
    assert acme.config["credentials"]["password"] not in api.get("/suppliers").text


def test_a_3pl_with_its_own_formats_ships_in_parts_and_completes_when_everything_left(stack, ports, supplier, uid,
                                                                                       address, deliveries):
    north = supplier(
        "3pl", folders={"inbound": "/orders", "outbound": "/shipments", "archive": "/done", "error": "/rejected"},
        order_file={"delimiter": ";", "file_name": "NORTH_{date}_{shipment_id}.csv",
                    "columns": [{"header": "PO", "field": "po_number"}, {"header": "Item", "field": "sku"},
                                {"header": "Qty", "field": "quantity"}, {"header": "Service", "value": "STANDARD"}]},
        tracking_file={"delimiter": ";", "tracking_separators": "|", "file_pattern": "SHIP_*.csv",
                       "columns": {"po_number": "PO", "sku": "Item", "quantity": "Qty", "carrier": "Carrier",
                                   "tracking_number": "Tracking"}},
        archive_mode="delete")
    hoodie, cap = f"HOODIE-{uid}", f"CAP-{uid}"
    for sku in (hoodie, cap):
        ports.inventory.set_on_hand(sku, north.warehouse_id, 10)
    order, _ = service.create_order(make_order([(hoodie, 3), (cap, 1)], address), ports)
    forwarded = wait_for(ports, order.order_id, OrderStatus.IN_FULFILLMENT)
    po = forwarded.shipments[0].shipment_id
    [name] = north.files("orders")
    assert name.startswith("NORTH_") and name.endswith(f"_{po}.csv")
    assert [(r["PO"], r["Item"], r["Qty"], r["Service"]) for r in csv_rows(north.folder / "orders" / name, ";")] == [
        (po, hoodie, "3", "STANDARD"), (po, cap, "1", "STANDARD")]

    header = "Extra;PO;Item;Qty;Carrier;Tracking\r\n"
    (north.folder / "shipments" / "SHIP_part1.csv").write_text(header + f"x;{po};{hoodie};2;FedEx;7700001|7700002\r\n")
    stack.scheduler.run_now(stack.schedules.job_name("poll_tracking"))  # the schedule's run: every configured supplier
    part = wait_for(ports, order.order_id, OrderStatus.IN_FULFILLMENT)
    assert part.shipments[0].status == ShipmentStatus.FORWARDED
    assert [e.detail for e in part.events if e.type == "supplier_partial"] == [
        f"{po}: 2 of 4 unit(s) shipped (FEDEX 7700001, 7700002); waiting for the rest"]
    assert north.files("shipments") == []  # archive mode delete

    (north.folder / "shipments" / "SHIP_part2.csv").write_text(
        header + f"y;{po};{hoodie};1;FedEx;7700003\r\ny;{po};{cap};1;FedEx;7700003\r\n")
    assert poll(north.warehouse_id)["shipments_completed"] == 1
    done = wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    assert done.shipments[0].tracking_numbers == ["7700001", "7700002", "7700003"]
    assert (done.shipments[0].carrier, done.shipments[0].tracking_number) == ("FEDEX", "7700001")
    assert ledger(ports, hoodie) == ["reserve", "ship"] and ledger(ports, cap) == ["reserve", "ship"]
    assert deliveries.outcomes[order.order_id] == ["sent"]


# -- duplicates -----------------------------------------------------------------------------------------


def test_every_message_delivered_twice_writes_one_order_and_completes_once(stack, ports, supplier, uid, address,
                                                                            deliveries):
    acme = supplier("dropship")
    sku = f"SKU-{uid}"
    ports.inventory.set_on_hand(sku, acme.warehouse_id, 5)
    deliveries.twice.add(acme.warehouse_id)
    order, _ = service.create_order(make_order([(sku, 1)], address), ports)
    forwarded = wait_for(ports, order.order_id, OrderStatus.IN_FULFILLMENT)
    outcomes = eventually(lambda: len(deliveries.outcomes[order.order_id]) >= 4 and deliveries.outcomes[order.order_id],
                          "the duplicate deliveries")
    assert outcomes.count("sent") == 1 and set(outcomes) == {"sent", "already_sent"}
    name = forwarded.shipments[0].fulfiller_ref
    assert acme.files("in") == [name]

    acme.behind().step()  # the supplier moves the order file away...
    assert acme.files("in") == []
    client("sqs").send_message(QueueUrl=deliveries.queue_url, MessageBody=deliveries.bodies[order.order_id][0])
    eventually(lambda: len(deliveries.outcomes[order.order_id]) >= 5, "one more delivery")
    assert deliveries.outcomes[order.order_id][-1] == "already_sent"
    assert acme.files("in") == []  # ...and a redelivery does not send a second order

    first, again = poll(acme.warehouse_id), poll(acme.warehouse_id)  # the scheduled event twice
    assert (first["shipments_completed"], again["shipments_completed"], again["files_read"]) == (1, 0, 0)
    wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    assert not ports.workflow.resume(forwarded.fulfilment_token, {"order_id": order.order_id})  # used once
    assert events(ports.orders.get(order.order_id), "tracking_added", "completed") == ["tracking_added", "completed"]
    assert ledger(ports, sku) == ["reserve", "ship"]


def test_a_tracking_file_read_twice_does_nothing_twice(stack, ports, supplier, uid, address):
    acme = supplier("dropship", archive_mode="leave")
    sku = f"SKU-{uid}"
    ports.inventory.set_on_hand(sku, acme.warehouse_id, 5)
    order, _ = service.create_order(make_order([(sku, 1)], address), ports)
    po = wait_for(ports, order.order_id, OrderStatus.IN_FULFILLMENT).shipments[0].shipment_id
    acme.behind().step()
    [tracking] = acme.files("out")
    data = (acme.folder / "out" / tracking).read_bytes()
    (acme.folder / "out" / "resent-copy.csv").write_bytes(data)  # the supplier sends the same file again

    first = poll(acme.warehouse_id)
    assert (first["files_read"], first["files_duplicate"], first["shipments_completed"]) == (1, 1, 1)
    again = poll(acme.warehouse_id)  # archive mode leave: both files are still there
    assert (again["files_read"], again["files_duplicate"], again["shipments_completed"]) == (0, 2, 0)
    assert acme.files("out") == sorted(["resent-copy.csv", tracking])
    done = wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    assert done.shipments[0].shipment_id == po
    assert events(ports.orders.get(order.order_id), "tracking_added", "completed") == ["tracking_added", "completed"]
    assert ledger(ports, sku) == ["reserve", "ship"]


# -- bad files -----------------------------------------------------------------------------------------


def test_a_file_with_bad_rows_applies_the_good_ones_and_puts_the_bad_ones_in_error_with_reasons(
        stack, ports, supplier, uid, address):
    acme = supplier("dropship")
    sku, other = f"SKU-{uid}", f"OTHER-{uid}"
    ports.inventory.set_on_hand(sku, acme.warehouse_id, 5)
    ports.inventory.set_on_hand(other, acme.warehouse_id, 5)
    first, _ = service.create_order(make_order([(sku, 1)], address), ports)
    second, _ = service.create_order(make_order([(other, 2)], address), ports)
    po1 = wait_for(ports, first.order_id, OrderStatus.IN_FULFILLMENT).shipments[0].shipment_id
    po2 = wait_for(ports, second.order_id, OrderStatus.IN_FULFILLMENT).shipments[0].shipment_id
    lines = [
        "po_number,order_number,sku,quantity,carrier,tracking_number",
        f"{po1},,{sku},1,UPS,1Z999AA10123456784",                # good
        "ord_nope-1,,X,1,UPS,1Z999AA10123456785",                 # no such order
        f"{po2},,{other},1,UPS,not valid!",                       # bad tracking number
        f"{po2},,{other},3,UPS,1Z999AA10123456786",               # more than ordered
        f"{po2},,{sku},1,UPS,1Z999AA10123456787",                 # SKU not in that shipment
        f",{second.order_id},{other},1,DHL,JD014600003828",       # good: by order number, a partial
    ]
    (acme.folder / "out" / "shipments.csv").write_text("\r\n".join(lines) + "\r\n")
    (acme.folder / "out" / "garbage.csv").write_bytes(b"what,is,this\r\n1,2,3\r\n")

    report = poll(acme.warehouse_id)
    assert (report["files_read"], report["files_rejected"], report["rows_applied"], report["rows_bad"]) == (1, 1, 2, 4)
    assert wait_for(ports, first.order_id, OrderStatus.COMPLETED).shipments[0].tracking_number == "1Z999AA10123456784"
    partly = ports.orders.get(second.order_id)
    assert partly.status == OrderStatus.IN_FULFILLMENT and events(partly, "supplier_partial") == ["supplier_partial"]

    assert acme.files("error") == ["garbage.csv", "garbage.csv.err.txt", "shipments.errors.csv"]
    note = (acme.folder / "error" / "garbage.csv.err.txt").read_text()
    assert note.startswith("garbage.csv: the header row lacks column(s)") and "tracking_number" in note
    bad = csv_rows(acme.folder / "error" / "shipments.errors.csv")
    assert [(r["source_line"], r["po_number"]) for r in bad] == [("3", "ord_nope-1"), ("4", po2), ("5", po2), ("6", po2)]
    reasons = [r["error"] for r in bad]
    assert reasons[0].startswith("no order ord_nope")
    assert "tracking number 'notvalid!' is not valid" in reasons[1]
    assert reasons[2] == f"quantity 3 of {other} is more than the 2 unit(s) left to ship on {po2}"
    assert reasons[3] == f"SKU {sku} is not in shipment {po2}"
    assert acme.files("out") == [] and len(acme.files("archive")) == 1


# -- the supplier's server is down -------------------------------------------------------------------------


def test_a_server_that_is_down_gets_the_order_when_it_comes_back(stack, ports, supplier, own_server, uid, address,
                                                                 deliveries):
    acme = supplier("dropship", srv=own_server)
    sku = f"SKU-{uid}"
    ports.inventory.set_on_hand(sku, acme.warehouse_id, 5)
    own_server.go_down()
    order, _ = service.create_order(make_order([(sku, 1)], address), ports)
    failed = eventually(lambda: [e for e in ports.orders.get(order.order_id).events if e.type == "forward_failed"],
                        "a failed forward")
    assert "refused the connection" in failed[0].detail and "attempt 1 of 5, retrying" in failed[0].detail
    assert str(own_server.port) not in failed[0].detail
    assert ports.orders.get(order.order_id).status != OrderStatus.IN_FULFILLMENT

    own_server.come_back()
    forwarded = wait_for(ports, order.order_id, OrderStatus.IN_FULFILLMENT)
    assert acme.files("in") == [forwarded.shipments[0].fulfiller_ref]
    assert deliveries.outcomes[order.order_id][-1] == "sent"
    assert "SupplierUnavailable" in deliveries.outcomes[order.order_id]


@pytest.fixture
def quick_sla(stack, ports):
    """Shrink the SLA of chosen warehouses to 2 s (Warehouse.sla_hours is whole hours): their shipments are
    due 2 s after Prepare routed them, and the workflow's wait times out then."""
    from functions.prepare.handler import lambda_handler as real
    from orderflow.models import iso_at
    from orderflow.orders import DONE_SHIPPING

    fast: set[str] = set()

    def prepare(event, context):
        result = real(event, context)
        if event.get("action", "prepare") == "prepare" and result.get("routed"):
            order = ports.orders.get(event["order_id"])
            soon = {s.shipment_id for s in order.shipments if s.warehouse_id in fast and s.status not in DONE_SHIPPING}
            if soon:
                due = iso_at(time.time() + 2)
                ports.orders.update(order.order_id, lambda o: [setattr(s, "due_at", due) for s in o.shipments
                                                               if s.shipment_id in soon])
                result["timeout_seconds"] = 2
        return result

    lambda_binding.bind(function_name("prepare"), prepare)
    yield fast
    lambda_binding.bind(function_name("prepare"), real)


def test_a_supplier_down_past_its_sla_leaves_the_order_needing_attention_with_nothing_lost(
        stack, ports, supplier, own_server, uid, address, deliveries, quick_sla):
    acme = supplier("dropship", srv=own_server, sla_hours=1)
    quick_sla.add(acme.warehouse_id)
    sku = f"SKU-{uid}"
    ports.inventory.set_on_hand(sku, acme.warehouse_id, 5)
    own_server.go_down()
    order, _ = service.create_order(make_order([(sku, 1)], address), ports)

    stuck = wait_for(ports, order.order_id, OrderStatus.NEEDS_ATTENTION)
    assert stuck.attention_reason.startswith("the supplier or 3PL did not confirm the shipment within the SLA (")
    assert any(e.type == "forward_failed" for e in stuck.events)
    assert execution_status(stack, order.order_id)["error"] == "FulfillerSlaExpired"
    assert ledger(ports, sku) == ["reserve"]  # the stock stays promised to the order
    own_server.come_back()
    eventually(lambda: "stale" in deliveries.outcomes[order.order_id], "a late delivery")
    assert acme.files("in") == []  # a message of a workflow that stopped waiting sends nothing

    quick_sla.discard(acme.warehouse_id)
    service.redrive_order(order.order_id, ports, reason="supplier back")  # the fix: run the workflow again
    forwarded = wait_for(ports, order.order_id, OrderStatus.IN_FULFILLMENT)
    assert acme.files("in") == [forwarded.shipments[0].fulfiller_ref]
    assert ledger(ports, sku) == ["reserve"]


# -- cancellations -------------------------------------------------------------------------------------------


def test_cancelled_before_the_supplier_has_it_nothing_is_sent(stack, ports, supplier, uid, address, deliveries, api):
    acme = supplier("dropship")
    sku = f"SKU-{uid}"
    ports.inventory.set_on_hand(sku, acme.warehouse_id, 5)
    config = {k: v for k, v in acme.config.items() if k != "credentials"}
    assert api.put(f"/suppliers/{acme.warehouse_id}", json={**config, "enabled": False}).status_code == 200
    order, _ = service.create_order(make_order([(sku, 1)], address), ports)
    eventually(lambda: "SupplierNotConfigured" in deliveries.outcomes[order.order_id], "a held message")

    service.cancel_order(order.order_id, ports, reason="customer changed their mind")
    assert api.put(f"/suppliers/{acme.warehouse_id}", json={**config, "enabled": True}).status_code == 200
    eventually(lambda: "cancelled" in deliveries.outcomes[order.order_id], "the cancelled order's message")
    assert acme.files("in") == []
    assert ledger(ports, sku) == ["release", "reserve"]
    assert ports.orders.get(order.order_id).status == OrderStatus.CANCELLED


def test_cancel_after_forwarding_writes_the_supplier_a_cancellation_file(stack, ports, supplier, uid, address,
                                                                         deliveries):
    acme = supplier("dropship")
    sku = f"SKU-{uid}"
    ports.inventory.set_on_hand(sku, acme.warehouse_id, 5)
    order, _ = service.create_order(make_order([(sku, 2)], address), ports)
    po = wait_for(ports, order.order_id, OrderStatus.IN_FULFILLMENT).shipments[0].shipment_id

    cancelled = service.cancel_order(order.order_id, ports, reason="customer changed their mind")
    assert cancelled.status == OrderStatus.CANCELLED
    assert sorted(acme.files("in")) == [f"CANCEL_{acme.warehouse_id}_{po}.csv", f"ORD_{acme.warehouse_id}_{po}.csv"]
    [row] = csv_rows(acme.folder / "in" / f"CANCEL_{acme.warehouse_id}_{po}.csv")
    assert (row["po_number"], row["order_number"], row["action"], row["reason"]) == (
        po, order.order_id, "CANCEL", "customer changed their mind")
    assert ledger(ports, sku) == ["release", "reserve"]
    assert service.cancel_order(order.order_id, ports).status == OrderStatus.CANCELLED  # again: harmless
    assert events(ports.orders.get(order.order_id), "supplier_cancel_sent") == ["supplier_cancel_sent"]
    assert execution_status(stack, order.order_id, timeout=60)["status"] == "SUCCEEDED"
    assert final_state(stack, order.order_id) == "Cancelled"
    assert len(acme.files("in")) == 2  # the workflow's own retries sent nothing more

    behind = acme.behind()
    behind.step()
    assert behind.cancelled == [po] and behind.shipped == []
    # A supplier that ships anyway: its tracking lands in error/ with the reason, nothing is completed.
    (acme.folder / "out" / "late.csv").write_text(f"po_number,carrier,tracking_number\r\n{po},UPS,1Z999AA10123456789\r\n")
    report = poll(acme.warehouse_id)
    assert (report["rows_bad"], report["cancellations_sent"]) == (1, 0)
    [bad] = csv_rows(acme.folder / "error" / "late.errors.csv")
    assert "was cancelled" in bad["error"]
    assert ports.orders.get(order.order_id).status == OrderStatus.CANCELLED


def test_a_cancel_the_supplier_could_not_take_is_delivered_by_the_next_poll(stack, ports, supplier, own_server,
                                                                             uid, address):
    acme = supplier("dropship", srv=own_server)
    sku = f"SKU-{uid}"
    ports.inventory.set_on_hand(sku, acme.warehouse_id, 5)
    order, _ = service.create_order(make_order([(sku, 1)], address), ports)
    po = wait_for(ports, order.order_id, OrderStatus.IN_FULFILLMENT).shipments[0].shipment_id
    own_server.go_down()
    cancelled = service.cancel_order(order.order_id, ports)
    assert cancelled.status == OrderStatus.CANCELLED
    assert events(cancelled, "supplier_cancel_pending") == ["supplier_cancel_pending"]
    assert poll(acme.warehouse_id)["error"] == "the SFTP server refused the connection (is it down?)"
    own_server.come_back()
    poll(acme.warehouse_id)  # (the forwarder, meeting the workflow's retried message, may get there first)
    assert f"CANCEL_{acme.warehouse_id}_{po}.csv" in acme.files("in")
    assert events(ports.orders.get(order.order_id), "supplier_cancel_sent") == ["supplier_cancel_sent"]
    assert poll(acme.warehouse_id)["cancellations_sent"] == 0


# -- configuration ---------------------------------------------------------------------------------------------


def test_supplier_configuration_is_validated_and_secrets_stay_out_of_the_table(stack, ports, api, uid, supplier):
    acme = supplier("dropship")
    body = {"sftp": {"host": "sftp.example.com", "username": "u", "host_key_fingerprint": "SHA256:" + "A" * 43},
            "credentials": {"password": "pw-" + uid}}
    ports.settings.put_warehouse(Warehouse(warehouse_id=f"own-{uid}", name="own"))
    assert api.put(f"/suppliers/own-{uid}", json=body).json()["error"]["details"]["field"] == "warehouse_id"
    assert api.put(f"/suppliers/ghost-{uid}", json=body).status_code == 404
    missing = api.put(f"/suppliers/{acme.warehouse_id}", json={**body, "sftp": {"host": "sftp.example.com",
                                                                               "username": "u"}})
    assert missing.status_code == 422 and "host_key_fingerprint" in missing.text
    ports.settings.put_warehouse(Warehouse(warehouse_id=f"new-{uid}", name="new", kind="3pl"))
    no_creds = api.put(f"/suppliers/new-{uid}", json={"sftp": body["sftp"]})
    assert (no_creds.status_code, no_creds.json()["error"]["details"]["field"]) == (422, "credentials")
    assert api.post(f"/suppliers/new-{uid}/poll").status_code == 404

    stored = client("dynamodb").get_item(TableName=ports.settings.table,
                                         Key={"entity": {"S": "supplier"}, "id": {"S": acme.warehouse_id}})["Item"]
    assert acme.config["credentials"]["password"] not in json.dumps(stored)
    assert stored["credentials_ref"]["S"].startswith("file:")
    report = api.post(f"/suppliers/{acme.warehouse_id}/poll")
    assert report.status_code == 200 and report.json()["suppliers"][0]["warehouse_id"] == acme.warehouse_id


def test_credentials_in_secrets_manager(stack, uid):
    from orderflow.suppliers.config import SupplierCredentials
    from orderflow.suppliers.credentials import SecretsManagerCredentials

    store = SecretsManagerCredentials(prefix=f"test-{uid}/")
    assert store.get("acme") is None
    assert store.put("acme", SupplierCredentials(password="one")) == f"secretsmanager:test-{uid}/acme"
    store.put("acme", SupplierCredentials(password="two"))
    assert store.get("acme").password.get_secret_value() == "two"
    raw = client("secretsmanager").get_secret_value(SecretId=f"test-{uid}/acme")["SecretString"]
    assert json.loads(raw) == {"password": "two"}


def test_the_forwarder_answers_a_partial_batch_response(stack, ports, supplier, own_server, uid, address):
    from functions.forward_supplier.handler import lambda_handler
    from orderflow.models import AllocatedLine, Order, Shipment

    acme = supplier("dropship", srv=own_server)
    own_server.go_down()

    def stored_order(status: OrderStatus) -> Order:
        order = Order.from_new(make_order([(f"SKU-{uid}", 1)], address))
        order.status = status
        order.shipments = [Shipment(shipment_id=f"{order.order_id}-1", warehouse_id=acme.warehouse_id,
                                    method="dropship", lines=[AllocatedLine(line_no=1, sku=f"SKU-{uid}", quantity=1,
                                                                            warehouse_id=acme.warehouse_id)])]
        return ports.orders.create(order)[0]

    waiting, cancelled = stored_order(OrderStatus.NEW), stored_order(OrderStatus.CANCELLED)

    def record(message_id: str, body: str) -> dict:
        return {"messageId": message_id, "receiptHandle": f"handle-{message_id}", "body": body,
                "attributes": {"ApproximateReceiveCount": "1"}, "messageAttributes": {}, "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:orderflow-supplier-orders",
                "awsRegion": "us-east-1", "md5OfBody": ""}

    def message(order) -> str:
        return json.dumps({"order_id": order.order_id, "shipment_id": order.shipments[0].shipment_id,
                           "warehouse_id": acme.warehouse_id, "method": "dropship", "task_token": f"token-{uid}"})

    event = {"Records": [record("m1", "not json"), record("m2", message(waiting)), record("m3", message(cancelled))]}
    result = lambda_handler(event, LocalLambdaContext(function_name("forward_supplier")))
    assert result == {"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}
    assert events(ports.orders.get(waiting.order_id), "forward_failed") == ["forward_failed"]
    assert acme.files("in") == []


def test_a_channel_order_shipped_by_a_dropship_supplier_has_the_suppliers_tracking_pushed_to_the_channel(
        stack, ports, supplier, uid, address):
    from decimal import Decimal

    from orderflow.adapters.channel_store import ChannelStore, default_credentials
    from orderflow_local.sandbox.shopify import ShopifySandbox

    sku = f"DROP-{uid}"
    acme = supplier("dropship")
    ports.inventory.set_on_hand(sku, acme.warehouse_id, 5)
    with ShopifySandbox(catalog={sku: Decimal("20.00")}).start() as shop:
        config, credentials = shop.channel(f"shop-drop-{uid}")
        default_credentials().put(config.channel_id, credentials)
        ChannelStore().put(config)
        try:
            external_id = shop.add_order(lines=[(sku, 2)])
            order, _ = service.create_order(make_order([(sku, 2)], address, channel=config.channel_id,
                                                       external_id=external_id), ports)
            wait_for(ports, order.order_id, OrderStatus.IN_FULFILLMENT)
            acme.behind().step()  # the supplier ships it and writes its tracking file
            poll(acme.warehouse_id)
            done = wait_for(ports, order.order_id, OrderStatus.COMPLETED)
            number = done.shipments[0].tracking_number
            eventually(lambda: shop.fulfillments, "the supplier's tracking at the channel")
            [told] = shop.fulfillments
            assert told["tracking"]["number"] == number and told["lines"] == {sku: 2}
            assert shop.orders[external_id].status == "fulfilled"
            assert eventually(lambda: ports.orders.get(order.order_id).shipments[0].channel_update,
                              "the record of it") == "pushed"
        finally:
            ChannelStore().delete(config.channel_id)
