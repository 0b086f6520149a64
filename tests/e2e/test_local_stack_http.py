"""The whole system as a user meets it: `orderflow local` in its own process, driven over HTTP."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import httpx
import pytest

from tests.e2e.conftest import ADDRESS, TOKEN, start_stack, wait_status

pytestmark = pytest.mark.e2e


def test_an_order_from_post_to_completed_with_stock_down_once(api, local_stack):
    assert api.post("/warehouses", json={"warehouse_id": "nj", "name": "Newark", "priority": 1}).status_code == 201
    assert api.put("/inventory/MUG-E2E/nj", json={"on_hand": 12}).json()["available"] == 12

    created = api.post("/orders", json={"lines": [{"sku": "MUG-E2E", "quantity": 2, "unit_price": "12.50"}],
                                        "shipping_address": ADDRESS, "customer": {"email": "g@example.com"}})
    assert created.status_code == 201, created.text
    order_id = created.json()["order_id"]
    assert created.json()["total"] == "25.00"

    paid = wait_status(api, order_id, "paid")
    assert paid["allocations"][-1]["lines"][0]["warehouse_id"] == "nj"
    assert paid["allocations"][-1]["candidates"]  # the decision explains itself
    assert "task_token" not in paid["shipments"][0]
    listed = api.get("/orders", params={"status": "paid"}).json()["orders"]
    assert order_id in [o["order_id"] for o in listed]

    tracked = api.post(f"/orders/{order_id}/tracking", json={"carrier": "USPS", "tracking_number": "9400100000"})
    assert tracked.status_code == 202, tracked.text
    done = wait_status(api, order_id, "completed")
    assert done["shipments"][0]["tracking_number"] == "9400100000"

    stock = api.get("/inventory/MUG-E2E").json()
    assert stock["levels"][0] == {"sku": "MUG-E2E", "warehouse_id": "nj", "on_hand": 10, "committed": 0,
                                  "available": 10}
    assert sorted(e["kind"] for e in stock["ledger"] if e.get("order_id") == order_id) == ["reserve", "ship"]

    again = api.post(f"/orders/{order_id}/complete")
    assert again.status_code == 409 and again.json()["error"]["code"] == "conflict"

    # the stack logged one line per order event
    log = "".join(local_stack["output"])
    for event in ("created", "allocated", "stock_reserved", "paid", "tracking_added", "completed"):
        assert f"{order_id} {event}" in " ".join(log.split())

    # orderflow trace finds this stack through its state file and prints the states
    trace = subprocess.run([sys.executable, "-m", "orderflow.cli", "trace", order_id, "--state-dir",
                            str(local_stack["state_dir"])], capture_output=True, text=True, timeout=60,
                           env=local_stack["env"])
    assert trace.returncode == 0, trace.stderr
    for state in ("Prepare", "AwaitFulfilment"):
        assert f"▶ {state}" in trace.stdout
    assert "execution SUCCEEDED" in trace.stdout and "■ Prepare" in trace.stdout and '"allocated"' in trace.stdout


def test_cancel_twice_releases_stock_once(api):
    api.post("/warehouses", json={"warehouse_id": "cx", "name": "Cancel test", "priority": 99})
    api.put("/inventory/CANCEL-E2E/cx", json={"on_hand": 4})
    order_id = api.post("/orders", json={"lines": [{"sku": "CANCEL-E2E", "quantity": 3, "unit_price": "1.00"}],
                                         "shipping_address": ADDRESS}).json()["order_id"]
    wait_status(api, order_id, "paid")
    first = api.post(f"/orders/{order_id}/cancel", json={"reason": "customer asked"})
    second = api.post(f"/orders/{order_id}/cancel")
    assert first.status_code == second.status_code == 200
    assert first.json()["status"] == second.json()["status"] == "cancelled"
    level = api.get("/inventory/CANCEL-E2E").json()["levels"][0]
    assert (level["on_hand"], level["committed"], level["available"]) == (4, 0, 4)
    assert api.post(f"/orders/{order_id}/tracking", json={"carrier": "UPS", "tracking_number": "1Z1"}).status_code \
        == 409


def test_auth_is_required_except_for_health(local_stack):
    assert httpx.get(f"{local_stack['url']}/health").json()["status"] == "ok"
    refused = httpx.get(f"{local_stack['url']}/warehouses")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "unauthorized"
    wrong = httpx.get(f"{local_stack['url']}/warehouses", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    # the API's description needs the token too, as it needs SigV4 on AWS (the template's REST API)
    assert httpx.get(f"{local_stack['url']}/openapi.json").status_code == 401
    described = httpx.get(f"{local_stack['url']}/openapi.json", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert "/orders" in described["paths"] and described["components"]["securitySchemes"]["bearerAuth"]


@pytest.mark.parametrize("body, status, field", [
    ('{"lines": [', 422, "body"),
    ({"lines": [], "shipping_address": ADDRESS}, 422, "body.lines"),
    ({"lines": [{"sku": "X", "quantity": -1, "unit_price": "1"}], "shipping_address": ADDRESS}, 422,
     "body.lines.0.quantity"),
    ('{"lines": [{"sku": "X", "quantity": 1, "unit_price": 1e400}], "shipping_address": ' + json.dumps(ADDRESS)
     + "}", 422, "body.lines.0.unit_price"),
    ({"lines": [{"sku": "X", "quantity": 1, "unit_price": "12.345678"}], "shipping_address": ADDRESS}, 422,
     "body.lines.0.unit_price"),
    ({"lines": [{"sku": "X", "quantity": 1, "unit_price": "1"}], "shipping_address": {**ADDRESS, "country": "USA"}},
     422, "body.shipping_address.country"),
    ({"lines": [{"sku": "NOT-STOCKED", "quantity": 1, "unit_price": "1"}], "shipping_address": ADDRESS}, 422,
     "lines"),
    ([1, 2], 422, "body"),
])
def test_bad_orders_get_a_4xx_naming_the_field(api, body, status, field):
    if isinstance(body, str):
        resp = api.post("/orders", content=body, headers={"Content-Type": "application/json"})
    else:
        resp = api.post("/orders", json=body)
    assert resp.status_code == status, resp.text
    error = resp.json()["error"]
    assert field in (error["message"] + str(error["details"]))


def test_other_mistakes_are_4xx_too(api):
    assert api.get("/orders/ord_does_not_exist").status_code == 404
    assert api.get("/no/such/route").status_code == 404
    assert api.get("/orders", params={"status": "shipped-ish"}).status_code == 422
    assert api.put("/inventory/SKU/no-such-warehouse", json={"on_hand": 1}).status_code == 404
    assert api.put("/inventory/SKU/nj", json={"on_hand": -5}).status_code == 422
    assert api.post("/warehouses", json={"warehouse_id": "x", "name": "X", "kind": "moon"}).status_code == 422
    assert api.post("/orders/ord_missing/tracking", json={"carrier": "UPS", "tracking_number": "1Z1"}).status_code \
        in (404, 422)
    assert api.get("/inventory/NEVER-STOCKED").status_code == 404


def test_ctrl_c_stops_the_stack_cleanly(tmp_path):
    own = start_stack(tmp_path)
    proc = own["proc"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(timeout=20) == 0
    assert "stopped." in "".join(own["output"])
    assert not (own["state_dir"] / "local.json").exists()
