"""Restart: the local stack keeps its data in its state folder. Stopped in the middle of a batch (Ctrl-C,
and separately kill -9) and started again, it has every order it had (kill -9: all but the last
snapshot interval), and every order whose workflow was running finishes: stock moves once."""

from __future__ import annotations

import json
import signal
import time

import httpx
import pytest

from orderflow_local.persistence import DATA_FILE
from tests.e2e.conftest import ADDRESS, TOKEN, start_stack, wait_status

pytestmark = pytest.mark.e2e


def client(stack) -> httpx.Client:
    return httpx.Client(base_url=stack["url"], headers={"Authorization": f"Bearer {TOKEN}"}, timeout=15)


def order(api, sku: str, quantity: int = 1) -> str:
    created = api.post("/orders", json={"lines": [{"sku": sku, "quantity": quantity, "unit_price": "5.00"}],
                                        "shipping_address": ADDRESS})
    assert created.status_code == 201, created.text
    return created.json()["order_id"]


def committed(api, sku: str) -> int:
    return sum(level["committed"] for level in api.get(f"/inventory/{sku}").json()["levels"])


def wait_saved(state_dir, order_ids, status, timeout=30):
    """Until the stack's snapshot (``<state dir>/data.json``, written atomically) holds these orders with
    this status."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            orders = json.loads((state_dir / DATA_FILE).read_text())["tables"]["orders"]
        except (OSError, ValueError, KeyError):
            orders = []
        saved = {item["order_id"]["S"]: item.get("status", {}).get("S") for item in orders}
        if all(saved.get(order_id) == status for order_id in order_ids):
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"no snapshot with {order_ids} {status}: {[saved.get(o) for o in order_ids]}")
        time.sleep(0.1)


def start(tmp_path, *extra):
    return start_stack(tmp_path, "--no-channels", *extra, persist=True)


def test_after_ctrl_c_in_the_middle_of_a_batch_nothing_is_lost_and_every_order_finishes(tmp_path):
    first = start(tmp_path)
    with client(first) as api:
        assert api.post("/warehouses", json={"warehouse_id": "re", "name": "Reno", "priority": 1}).status_code == 201
        assert api.put("/inventory/RESTART-1/re", json={"on_hand": 50}).status_code == 200
        settled = [order(api, "RESTART-1") for _ in range(3)]
        for order_id in settled:
            wait_status(api, order_id, "paid")
        shipped = settled[0]
        assert api.post(f"/orders/{shipped}/tracking", json={"carrier": "UPS", "tracking_number": "1ZRESTART"}
                        ).status_code == 202
        wait_status(api, shipped, "completed")
        in_flight = [order(api, "RESTART-1", 2) for _ in range(4)]  # still moving when the stack stops
    first["proc"].send_signal(signal.SIGINT)
    assert first["proc"].wait(timeout=30) == 0
    assert (tmp_path / "data.json").exists()

    second = start(tmp_path)
    try:
        assert "restored" in "".join(second["output"])
        with client(second) as api:
            assert api.get(f"/orders/{shipped}").json()["status"] == "completed"
            for order_id in settled[1:] + in_flight:
                wait_status(api, order_id, "paid", timeout=60)  # resumed: a new execution per order
            # 2 settled orders x 1 + 4 in flight x 2, each reserved exactly once
            assert committed(api, "RESTART-1") == 2 + 8
            level = api.get("/inventory/RESTART-1").json()["levels"][0]
            assert level["on_hand"] == 49 and level["available"] == 49 - 10
            # A resumed order completes as any other. (Its tracking is posted once the restart's reconciler,
            # which runs in the background, has given it its new execution: tracking that came first would
            # simply complete it, every shipment having left, with no execution to redrive.)
            resumed = in_flight[0]
            deadline = time.monotonic() + 60
            while "redriven" not in [e["type"] for e in api.get(f"/orders/{resumed}").json()["events"]]:
                assert time.monotonic() < deadline, "the restart did not redrive the order"
                time.sleep(0.2)
            assert api.post(f"/orders/{resumed}/tracking", json={"carrier": "UPS", "tracking_number": "1ZRESUMED"}
                            ).status_code == 202
            wait_status(api, resumed, "completed")
            assert committed(api, "RESTART-1") == 8
            events = [e["type"] for e in api.get(f"/orders/{resumed}").json()["events"]]
            assert "redriven" in events and events.count("stock_reserved") == 1
    finally:
        second["proc"].send_signal(signal.SIGINT)
        second["proc"].wait(timeout=30)


def test_after_kill_9_at_most_the_last_snapshot_interval_is_lost(tmp_path):
    first = start(tmp_path, "--snapshot-seconds", "1")
    with client(first) as api:
        assert api.post("/warehouses", json={"warehouse_id": "k9", "name": "Kill", "priority": 1}).status_code == 201
        assert api.put("/inventory/RESTART-9/k9", json={"on_hand": 20}).status_code == 200
        kept = [order(api, "RESTART-9") for _ in range(3)]
        for order_id in kept:
            wait_status(api, order_id, "paid")
        wait_saved(tmp_path, kept, "paid")  # a snapshot (every second) has them: kill -9 may lose only later writes
    first["proc"].send_signal(signal.SIGKILL)
    first["proc"].wait(timeout=10)

    second = start(tmp_path, "--snapshot-seconds", "1")
    try:
        with client(second) as api:
            for order_id in kept:
                wait_status(api, order_id, "paid", timeout=60)
            assert committed(api, "RESTART-9") == 3
            again = order(api, "RESTART-9")
            wait_status(api, again, "paid")
            assert committed(api, "RESTART-9") == 4
    finally:
        second["proc"].send_signal(signal.SIGINT)
        second["proc"].wait(timeout=30)
