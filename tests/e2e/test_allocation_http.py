"""Warehouse assignment, stock and purchasing through the HTTP API of a running local stack."""

from __future__ import annotations

import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.conftest import ADDRESS, wait_status

pytestmark = pytest.mark.e2e
NYC = {**ADDRESS, "city": "New York", "region": "NY", "postal_code": "10001"}


def warehouse(api, wid, priority=10, zip_code=None, state="NJ"):
    body = {"warehouse_id": wid, "name": wid, "priority": priority}
    if zip_code:
        body["address"] = {"name": wid, "line1": "1 Dock Rd", "city": "x", "region": state,
                           "postal_code": zip_code, "country": "US"}
    assert api.post("/warehouses", json=body).status_code == 201


def order(api, lines, address=NYC):
    resp = api.post("/orders", json={"lines": [{"sku": s, "quantity": q, "unit_price": "5.00"} for s, q in lines],
                                     "shipping_address": address})
    assert resp.status_code == 201, resp.text
    return resp.json()["order_id"]


@pytest.fixture
def uid():
    return uuid.uuid4().hex[:6]


def plan_of(api, order_id):
    placed = wait_status(api, order_id, "paid", "awaiting_stock", "needs_attention")
    return placed, sorted((ln["line_no"], ln["warehouse_id"], ln["quantity"]) for ln in placed["allocations"][-1]["lines"])


def test_equal_priority_the_closest_warehouse_ships_and_the_decision_is_recorded(api, uid):
    warehouse(api, f"reno-{uid}", zip_code="89502", state="NV")
    warehouse(api, f"newark-{uid}", zip_code="07114")
    for wid in (f"reno-{uid}", f"newark-{uid}"):
        api.put(f"/inventory/A-{uid}/{wid}", json={"on_hand": 5})
    placed, lines = plan_of(api, order(api, [(f"A-{uid}", 1)]))
    assert lines == [(1, f"newark-{uid}", 1)]
    decision = placed["allocations"][-1]
    assert decision["rule_set"].startswith("policy/")
    reno = [c for c in decision["candidates"] if c["warehouse_id"] == f"reno-{uid}" and not c["kept"]]
    assert reno and reno[0]["rule"] == "closest" and "km" in reno[0]["reason"]


def test_one_warehouse_with_every_line_beats_a_split(api, uid):
    warehouse(api, f"near-{uid}", zip_code="07114")
    warehouse(api, f"far-{uid}", zip_code="89502", state="NV")
    api.put(f"/inventory/A-{uid}/near-{uid}", json={"on_hand": 5})
    api.put(f"/inventory/A-{uid}/far-{uid}", json={"on_hand": 5})
    api.put(f"/inventory/B-{uid}/far-{uid}", json={"on_hand": 5})
    _, lines = plan_of(api, order(api, [(f"A-{uid}", 1), (f"B-{uid}", 1)]))
    assert lines == [(1, f"far-{uid}", 1), (2, f"far-{uid}", 1)]


def test_a_line_bigger_than_any_warehouse_is_split_when_the_seller_allows_it(api, uid):
    warehouse(api, f"a-{uid}", priority=1)
    warehouse(api, f"b-{uid}", priority=2)
    api.put(f"/inventory/BIG-{uid}/a-{uid}", json={"on_hand": 3})
    api.put(f"/inventory/BIG-{uid}/b-{uid}", json={"on_hand": 4})
    before = api.get("/settings/allocation").json()
    assert api.put("/settings/allocation", json={"allow_line_split": True}).json()["allow_line_split"] is True
    try:
        placed, lines = plan_of(api, order(api, [(f"BIG-{uid}", 6)]))
    finally:
        api.put("/settings/allocation", json={k: v for k, v in before.items() if k != "version"})
    assert placed["status"] == "paid"
    assert lines == [(1, f"a-{uid}", 3), (1, f"b-{uid}", 3)]
    assert len(placed["shipments"]) == 2


def test_racing_orders_never_oversell(api, uid):
    warehouse(api, f"race-{uid}")
    api.put(f"/inventory/HOT-{uid}/race-{uid}", json={"on_hand": 4})
    with ThreadPoolExecutor(6) as pool:
        ids = list(pool.map(lambda _: order(api, [(f"HOT-{uid}", 1)]), range(15)))
    final = [wait_status(api, i, "paid", "awaiting_stock")["status"] for i in ids]
    assert final.count("paid") == 4 and final.count("awaiting_stock") == 11
    level = api.get(f"/inventory/HOT-{uid}").json()["levels"][0]
    assert (level["on_hand"], level["committed"], level["available"]) == (4, 4, 0)


def test_a_backorder_is_drafted_onto_a_purchase_order_and_released_by_receiving_it(api, uid):
    wid = f"po-{uid}"
    warehouse(api, wid)
    api.put(f"/inventory/BO-{uid}/{wid}", json={"on_hand": 1})
    rule = api.put(f"/reorder-rules/BO-{uid}", json={"supplier": f"acme-{uid}", "warehouse_id": wid, "multiple": 10})
    assert rule.status_code == 200, rule.text
    order_id = order(api, [(f"BO-{uid}", 3)])
    assert wait_status(api, order_id, "awaiting_stock")["allocations"][-1]["backordered"][0]["quantity"] == 3

    # the allocate step records awaiting_stock first, then adds the backorder to the draft
    deadline = time.monotonic() + 30
    while True:
        drafts = [po for po in api.get("/purchase-orders").json()["purchase_orders"]
                  if po["supplier"] == f"acme-{uid}"]
        if (drafts and drafts[0]["lines"]) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert len(drafts) == 1 and drafts[0]["status"] == "draft"
    assert [(ln["sku"], ln["quantity"]) for ln in drafts[0]["lines"]] == [(f"BO-{uid}", 10)]
    po_id = drafts[0]["po_id"]
    early = api.post(f"/purchase-orders/{po_id}/receive", json={"lines": [{"sku": f"BO-{uid}", "quantity": 1}]})
    assert early.status_code == 409  # a draft has not been sent yet
    assert api.post(f"/purchase-orders/{po_id}/submit").json()["status"] == "ordered"
    too_many = api.post(f"/purchase-orders/{po_id}/receive", json={"lines": [{"sku": f"BO-{uid}", "quantity": 11}]})
    assert too_many.status_code == 422 and "lines.0.quantity" in str(too_many.json()["error"]["details"])

    # Received stock resumes the waiting order, whether its execution stored its wait token before the
    # receipt (the receipt resumes it) or after (it sees the stock itself when it starts waiting).
    got = api.post(f"/purchase-orders/{po_id}/receive",
                   json={"receipt_id": f"r-{uid}", "lines": [{"sku": f"BO-{uid}", "quantity": 4}]}).json()
    assert got["purchase_order"]["status"] == "partially_received"
    paid = wait_status(api, order_id, "paid")
    assert [p["status"] for p in paid["allocations"]] == ["waiting", "reserved"]
    level = api.get(f"/inventory/BO-{uid}").json()["levels"][0]
    assert (level["on_hand"], level["committed"]) == (5, 3)
    again = api.post(f"/purchase-orders/{po_id}/receive",
                     json={"receipt_id": f"r-{uid}", "lines": [{"sku": f"BO-{uid}", "quantity": 4}]}).json()
    assert again["new_receipt"] is False
    assert api.get(f"/inventory/BO-{uid}").json()["levels"][0]["on_hand"] == 5


def test_adjustments_keep_promised_units_and_are_idempotent(api, uid):
    wid = f"adj-{uid}"
    warehouse(api, wid)
    api.put(f"/inventory/ADJ-{uid}/{wid}", json={"on_hand": 5})
    order_id = order(api, [(f"ADJ-{uid}", 3)])
    wait_status(api, order_id, "paid")
    refused = api.post(f"/inventory/ADJ-{uid}/{wid}/adjustments", json={"delta": -3, "reason": "damaged"})
    assert refused.status_code == 409 and refused.json()["error"]["details"]["field"] == "delta"
    body = {"delta": -2, "reason": "damaged", "adjustment_id": f"a-{uid}"}
    first = api.post(f"/inventory/ADJ-{uid}/{wid}/adjustments", json=body).json()
    second = api.post(f"/inventory/ADJ-{uid}/{wid}/adjustments", json=body).json()
    assert (first["applied"], second["applied"]) == (True, False)
    assert second["level"] == {"sku": f"ADJ-{uid}", "warehouse_id": wid, "on_hand": 3, "committed": 3,
                               "available": 0}
    ledger = api.get(f"/inventory/ADJ-{uid}").json()["ledger"]
    assert [e["kind"] for e in ledger].count("adjust") == 1


def test_policy_validation_names_the_field(api):
    bad = api.put("/settings/allocation", json={"rules": ["closest"]})
    assert bad.status_code == 422 and "stock rule" in bad.json()["error"]["message"]
    ghost = api.put("/settings/allocation", json={"pins": [{"channel": "amazon", "warehouse_ids": ["nowhere"]}]})
    assert ghost.status_code == 404 and "pins.0" in ghost.json()["error"]["message"]
