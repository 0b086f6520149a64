"""Suppliers as a seller meets them: `orderflow local` in its own process, configured and driven over HTTP,
with real SFTP servers on loopback."""

from __future__ import annotations

import os
import queue
import secrets
import signal
import subprocess
import sys
import threading
import time

import httpx
import pytest

from orderflow.suppliers.config import TrackingFileFormat
from orderflow_local.sandbox.sftp import SandboxSftpServer, SandboxSupplier
from orderflow_local.stack import free_port
from tests.e2e.conftest import ADDRESS, TOKEN, wait_status

pytestmark = pytest.mark.e2e


def test_a_supplier_configured_over_http_gets_its_orders_and_its_tracking_completes_them(api, tmp_path):
    with SandboxSftpServer(tmp_path / "sftp") as server:
        password = secrets.token_urlsafe(12)
        folder = server.add_account("acme", password)
        assert api.post("/warehouses", json={"warehouse_id": "acme-e2e", "name": "Acme", "kind": "dropship",
                                             "priority": 1, "sla_hours": 48}).status_code == 201
        assert api.put("/inventory/LAMP-E2E/acme-e2e", json={"on_hand": 4}).status_code == 200
        config = {"sftp": {"host": server.host, "port": server.port, "username": "acme",
                           "host_key_fingerprint": server.fingerprint},
                  "tracking_file": {"min_age_seconds": 0}, "credentials": {"password": password}}
        put = api.put("/suppliers/acme-e2e", json=config)
        assert put.status_code == 201, put.text
        assert password not in put.text and put.json()["credentials"]["stored"] is True

        created = api.post("/orders", json={"lines": [{"sku": "LAMP-E2E", "quantity": 1, "unit_price": "39.00"}],
                                            "shipping_address": ADDRESS})
        order_id = created.json()["order_id"]
        forwarded = wait_status(api, order_id, "in_fulfillment")
        name = forwarded["shipments"][0]["fulfiller_ref"]
        assert (folder / "in" / name).is_file()

        SandboxSupplier(folder, tracking_format=TrackingFileFormat(min_age_seconds=0), delay_seconds=0).step()
        report = api.post("/suppliers/acme-e2e/poll")
        assert report.status_code == 200, report.text
        # this poll completes it, unless the supplier's own scheduled poll read the file a moment before
        assert report.json()["totals"]["shipments_completed"] in (0, 1), report.text
        done = wait_status(api, order_id, "completed")
        assert done["shipments"][0]["tracking_number"].startswith("1Z")
        assert api.get("/inventory/LAMP-E2E").json()["levels"][0]["on_hand"] == 3


def test_the_sample_data_shows_dropship_and_3pl_orders_completing(tmp_path):
    """`make run`: the seeded sandbox supplier and 3PL pick up orders and their tracking completes them."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORDERFLOW_", "MOTO_"))}
    env["ORDERFLOW_SANDBOX_SUPPLIER_DELAY_SECONDS"] = "0.2"
    proc = subprocess.Popen(
        [sys.executable, "-m", "orderflow.cli", "local", "--port", str(port), "--token", TOKEN, "--no-channels",
         "--tracking-poll-every", "0.5", "--state-dir", str(tmp_path / "state")],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump():
        for line in proc.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    try:
        deadline = time.monotonic() + 240  # a first start synthesizes the CDK app
        while "Press Ctrl-C" not in "".join(output):
            assert proc.poll() is None and time.monotonic() < deadline, "".join(output)
            time.sleep(0.1)
        banner = "".join(output)
        assert "sandbox acme-dropship: sftp://acme@127.0.0.1:" in banner
        assert "sandbox north-3pl: sftp://north@127.0.0.1:" in banner
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"Authorization": f"Bearer {TOKEN}"},
                          timeout=10) as api:
            orders = []
            for sku in ("LAMP-DESK", "HOODIE-GRY-L"):
                created = api.post("/orders", json={"lines": [{"sku": sku, "quantity": 1, "unit_price": "10.00"}],
                                                    "shipping_address": ADDRESS})
                assert created.status_code == 201, created.text
                orders.append(created.json()["order_id"])
            dropship, three_pl = (wait_status(api, order_id, "completed") for order_id in orders)
        assert dropship["shipments"][0]["method"] == "dropship" and dropship["shipments"][0]["carrier"] == "UPS"
        assert three_pl["shipments"][0]["method"] == "3pl" and len(three_pl["shipments"][0]["tracking_numbers"]) == 2
        log = " ".join("".join(output).split())
        for order_id in orders:
            for event in ("forwarded", "tracking_added", "completed"):
                assert f"{order_id} {event}" in log
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
    assert proc.returncode == 0
    assert "stopped." in "".join(output)
