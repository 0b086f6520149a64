"""Security as a caller meets it: every route but /health and signed webhooks needs the token, and the
stack's logs never carry an order's personal data (names, addresses, emails, phones) or a secret."""

from __future__ import annotations

import re

import httpx
import pytest

from tests.e2e.conftest import TOKEN, wait_status

pytestmark = pytest.mark.e2e

PERSON = {"name": "Zebediah Quuxworth", "line1": "742 Evergreen Terrace", "line2": "Apt 9Q",
          "city": "Springfield", "region": "OR", "postal_code": "97403", "country": "US",
          "phone": "+1 541 555 0199"}
EMAIL = "zebediah.quuxworth@pii.example"


def test_every_documented_route_but_health_and_webhooks_refuses_a_caller_without_the_token(local_stack, api):
    document = api.get("/openapi.json").json()
    checked = 0
    for path, operations in document["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "x", path)
        for method in operations:
            if method not in ("get", "post", "put", "patch", "delete"):
                continue
            response = httpx.request(method.upper(), f"{local_stack['url']}{concrete}", json={}, timeout=10)
            if path == "/health":
                assert response.status_code == 200, response.text  # public by contract
                continue
            if path.startswith("/webhooks/"):
                continue  # signature-checked instead of the token (test_channels_http: a forged one gets 401)
            assert response.status_code == 401, (method, path, response.status_code)
            wrong = httpx.request(method.upper(), f"{local_stack['url']}{concrete}", json={}, timeout=10,
                                  headers={"Authorization": "Bearer not-the-token"})
            assert wrong.status_code == 401, (method, path, wrong.status_code)
            checked += 1
    assert checked >= 20


def test_an_orders_personal_data_never_reaches_the_logs(local_stack, api):
    assert api.post("/warehouses", json={"warehouse_id": "pii", "name": "PII", "priority": 1}).status_code == 201
    assert api.put("/inventory/PII-1/pii", json={"on_hand": 5}).status_code == 200
    created = api.post("/orders", json={"lines": [{"sku": "PII-1", "quantity": 1, "unit_price": "3.00"}],
                                        "shipping_address": PERSON,
                                        "customer": {"name": PERSON["name"], "email": EMAIL}})
    assert created.status_code == 201, created.text
    order_id = created.json()["order_id"]
    wait_status(api, order_id, "paid")
    assert api.post(f"/orders/{order_id}/tracking", json={"carrier": "UPS", "tracking_number": "1ZPII0001"}
                    ).status_code == 202
    wait_status(api, order_id, "completed")
    # And a refused one: the 422 names the field, the log does not echo the body.
    bad = api.post("/orders", json={"lines": [{"sku": "PII-1", "quantity": -1, "unit_price": "3.00"}],
                                    "shipping_address": PERSON, "customer": {"email": EMAIL}})
    assert bad.status_code == 422
    log = "".join(local_stack["output"])
    assert f"{order_id} completed" in " ".join(log.split())  # the log does tell the order's story
    for secret in (PERSON["name"], "Quuxworth", PERSON["line1"], PERSON["line2"], PERSON["phone"], EMAIL,
                   "Evergreen"):
        assert secret not in log, f"{secret!r} is in the stack's log"
    assert f"Bearer {TOKEN}" not in log
