"""Labels as a seller buys them: `orderflow local` over HTTP, with its sandbox carrier."""

from __future__ import annotations

import re
import stat
import uuid

import httpx
import pytest

from orderflow_local.sandbox.carrier import pdf_page_size
from tests.e2e.conftest import ADDRESS, wait_status
from tests.unit.carriers.test_carrier_parts import decode_barcodes

pytestmark = pytest.mark.e2e

DOCK = {"name": "Ship Dept", "company": "Acme Mugs", "line1": "5 Dock Rd", "city": "Newark", "region": "NJ",
        "postal_code": "07102", "country": "US"}
BOX = {"weight_oz": 14, "length_in": 9, "width_in": 6, "height_in": 4}


@pytest.fixture(scope="module")
def sandbox_url(api, local_stack) -> str:
    """The stack's sandbox carrier, registered at start as the default account ``sandbox``."""
    printed = re.search(r"carrier: +sandbox .* at (http://\S+);", "".join(local_stack["output"]))
    assert printed, "orderflow local did not announce its sandbox carrier"
    url = printed.group(1)
    carrier = api.get("/carriers/sandbox").json()
    assert (carrier["type"], carrier["base_url"]) == ("sandbox", url), carrier
    # Other tests share this stack (the API fuzzer adds accounts, some made the default): restore it.
    restored = api.put("/carriers/sandbox", json={"type": "sandbox", "base_url": url, "is_default": True,
                                                  "max_attempts": 3})
    assert restored.status_code == 200 and restored.json()["is_default"], restored.text
    return url


@pytest.fixture(scope="module")
def dock(api) -> str:
    warehouse_id = f"dock-{uuid.uuid4().hex[:6]}"
    resp = api.post("/warehouses", json={"warehouse_id": warehouse_id, "name": "Dock", "priority": 1,
                                         "address": DOCK})
    assert resp.status_code == 201, resp.text
    return warehouse_id


def paid_order(api, dock: str, quantity: int = 1) -> tuple[dict, str]:
    sku = f"LBL-{uuid.uuid4().hex[:8]}"
    assert api.put(f"/inventory/{sku}/{dock}", json={"on_hand": 10}).status_code == 200
    created = api.post("/orders", json={"lines": [{"sku": sku, "quantity": quantity, "unit_price": "9.50"}],
                                        "shipping_address": ADDRESS})
    assert created.status_code == 201, created.text
    return wait_status(api, created.json()["order_id"], "paid"), sku


def sales_for(sandbox_url: str, shipment_id: str) -> list[dict]:
    sales = httpx.get(f"{sandbox_url}/_sandbox/sales", timeout=10).json()["sales"]
    return [s for s in sales if s["reference"] == shipment_id]


def test_buy_a_label_download_it_and_the_order_completes(api, dock, sandbox_url):
    order, sku = paid_order(api, dock, quantity=2)
    order_id, sid = order["order_id"], order["shipments"][0]["shipment_id"]

    resp = api.post(f"/orders/{order_id}/labels", json={"parcel": BOX})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert body["shipment_id"] == sid and body["order_id"] == order_id and body["status"] == "shipped"
    assert body["carrier"] == "USPS" and body["tracking_number"] == body["label"]["tracking_number"]
    assert body["label"]["download_path"] == f"/orders/{order_id}/labels/{sid}" == resp.headers["location"]
    assert body["label"]["cost"] and body["label"]["currency"] == "USD" and body["label"]["format"] == "pdf"
    assert "claim_id" not in body["label"] and "task_token" not in body

    done = wait_status(api, order_id, "completed")
    assert done["shipments"][0]["tracking_number"] == body["tracking_number"]
    assert [e["type"] for e in done["events"]][-3:] == ["label_bought", "tracking_added", "completed"]
    stock = api.get(f"/inventory/{sku}").json()
    assert (stock["totals"]["on_hand"], stock["totals"]["committed"]) == (8, 0)
    assert sorted(e["kind"] for e in stock["ledger"] if e.get("order_id") == order_id) == ["reserve", "ship"]

    pdf = api.get(body["label"]["download_path"])
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'inline; filename="{sid}.pdf"'
    assert pdf.content.startswith(b"%PDF-")
    assert pdf_page_size(pdf.content) == (288.0, 432.0)  # 4 x 6 inches
    [sale] = sales_for(sandbox_url, sid)
    assert sale["tracking_code"] == body["tracking_number"]

    assert decode_barcodes(pdf.content) == [body["tracking_number"]]  # the barcode scans back to the number


def test_a_zpl_label_for_a_named_service(api, dock, sandbox_url):
    order, _ = paid_order(api, dock)
    resp = api.post(f"/orders/{order['order_id']}/labels",
                    json={"parcel": BOX, "format": "zpl", "service": "UPS:Ground"})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    assert (body["carrier"], body["label"]["service"], body["label"]["format"]) == ("UPS", "Ground", "zpl")
    zpl = api.get(body["label"]["download_path"])
    assert zpl.status_code == 200 and zpl.headers["content-type"] == "application/zpl"
    text = zpl.text
    assert text.startswith("^XA") and text.rstrip().endswith("^XZ")
    assert f"^BCN,200,N,N,N,A^FD{body['tracking_number']}^FS" in text


def test_a_retried_request_does_not_buy_twice(api, dock, sandbox_url):
    order, _ = paid_order(api, dock)
    order_id, sid = order["order_id"], order["shipments"][0]["shipment_id"]
    key = {"Idempotency-Key": f"retry-{uuid.uuid4().hex}"}
    first = api.post(f"/orders/{order_id}/labels", json={"parcel": BOX}, headers=key)
    assert first.status_code == 201, first.text
    for headers in (key, {}):
        again = api.post(f"/orders/{order_id}/labels", json={"parcel": BOX}, headers=headers)
        assert again.status_code == 200, again.text
        assert again.json()["tracking_number"] == first.json()["tracking_number"]
    assert len(sales_for(sandbox_url, sid)) == 1


def test_a_carrier_outage_is_503_and_a_later_retry_succeeds(api, dock, sandbox_url):
    order, _ = paid_order(api, dock)
    order_id, sid = order["order_id"], order["shipments"][0]["shipment_id"]
    httpx.post(f"{sandbox_url}/_sandbox/faults", json={"status": 500, "count": None, "on": "buy"}, timeout=10)
    try:
        down = api.post(f"/orders/{order_id}/labels", json={"parcel": BOX})
    finally:
        httpx.delete(f"{sandbox_url}/_sandbox/faults", timeout=10)
    assert down.status_code == 503, down.text
    assert down.json()["error"]["code"] == "carrier_unavailable"
    label = api.get(f"/orders/{order_id}").json()["shipments"][0]["label"]
    assert label["status"] == "failed" and "HTTP 500" in label["error"]

    up = api.post(f"/orders/{order_id}/labels", json={"parcel": BOX})
    assert up.status_code == 201, up.text
    assert len(sales_for(sandbox_url, sid)) == 1
    wait_status(api, order_id, "completed")


def test_a_carrier_refusal_is_422_with_the_carriers_message(api, dock, sandbox_url):
    order, _ = paid_order(api, dock)
    httpx.post(f"{sandbox_url}/_sandbox/faults", timeout=10,
               json={"status": 422, "count": 1, "on": "create", "message": "Recipient address is not deliverable"})
    resp = api.post(f"/orders/{order['order_id']}/labels", json={"parcel": BOX})
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "carrier_rejected" and "Recipient address is not deliverable" in error["message"]
    assert api.post(f"/orders/{order['order_id']}/labels", json={"parcel": BOX}).status_code == 201


@pytest.fixture(scope="module")
def waiting_for_a_label(api, dock, sandbox_url) -> dict:
    return paid_order(api, dock)[0]


@pytest.mark.parametrize(("body", "field"), [
    ({"parcel": {"weight_oz": 0}}, "body.parcel.weight_oz"),
    ({"parcel": {"weight_oz": "heavy"}}, "body.parcel.weight_oz"),
    ({"parcel": {"weight_oz": 10, "length_in": 5}}, "body.parcel"),
    ({"parcel": {"weight_oz": 10, "length_in": -1, "width_in": 1, "height_in": 1}}, "body.parcel.length_in"),
    ({"parcel": BOX, "format": "png"}, "body.format"),
    ({}, "body.parcel"),
])
def test_a_bad_request_is_422_naming_the_field(api, waiting_for_a_label, body, field):
    resp = api.post(f"/orders/{waiting_for_a_label['order_id']}/labels", json=body)
    assert resp.status_code == 422, resp.text
    error = resp.json()["error"]
    assert error["code"] == "validation_error" and error["message"].startswith(field)


def test_labels_wait_until_the_order_is_paid(api, dock):
    sku = f"NONE-{uuid.uuid4().hex[:8]}"
    api.put(f"/inventory/{sku}/{dock}", json={"on_hand": 0})
    order_id = api.post("/orders", json={"lines": [{"sku": sku, "quantity": 1, "unit_price": "1.00"}],
                                         "shipping_address": ADDRESS}).json()["order_id"]
    wait_status(api, order_id, "awaiting_stock")
    resp = api.post(f"/orders/{order_id}/labels", json={"parcel": BOX})
    assert resp.status_code == 409 and resp.json()["error"]["details"]["status"] == "awaiting_stock"
    assert api.get(f"/orders/{order_id}/labels/{order_id}-1").status_code == 404


def test_carrier_accounts_keep_their_keys_to_themselves(api, local_stack, sandbox_url):
    carrier_id = f"ep-{uuid.uuid4().hex[:6]}"
    secret = f"EZTK{uuid.uuid4().hex}"
    put = api.put(f"/carriers/{carrier_id}", json={"type": "easypost", "api_key": secret,
                                                   "default_service": "Priority", "from_address": DOCK})
    assert put.status_code == 201, put.text
    assert put.json()["has_api_key"] and put.json()["base_url"] == "https://api.easypost.com"
    for text in (put.text, api.get(f"/carriers/{carrier_id}").text, api.get("/carriers").text):
        assert secret not in text and "api_key\"" not in text.replace("has_api_key\"", "")
    keys = local_stack["state_dir"] / "carrier-credentials.json"
    assert secret in keys.read_text() and stat.S_IMODE(keys.stat().st_mode) == 0o600

    again = api.put(f"/carriers/{carrier_id}", json={"type": "easypost", "name": "Main EasyPost"})
    assert again.status_code == 200 and again.json()["has_api_key"]  # the stored key is kept
    no_key = api.put(f"/carriers/sh-{carrier_id}", json={"type": "shippo"})
    assert no_key.status_code == 422 and no_key.json()["error"]["details"]["field"] == "api_key"
    bad_url = api.put(f"/carriers/{carrier_id}", json={"type": "easypost", "base_url": "http://evil.example"})
    assert bad_url.status_code == 422
    assert api.get("/carriers/sandbox").json()["is_default"]  # not made the default by accident
    assert httpx.get(f"{local_stack['url']}/carriers").status_code == 401
