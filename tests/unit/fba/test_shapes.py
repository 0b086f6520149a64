"""Both sides in the shapes of Amazon's model (fulfillmentOutbound_2020-07-01.json): what our client sends,
what the sandbox answers at every status, and Amazon's own example read by our models. The sandbox cannot
drift from the real API without these failing."""

from __future__ import annotations

import json
from decimal import Decimal

import httpx
import pytest

from orderflow.fba import mcf
from orderflow.fba.forwarding import build_request
from tests.unit.fba.conftest import account, connect, order, validator

ORDERS = "/fba/outbound/2020-07-01/fulfillmentOrders"
ONE = ORDERS + "/{sellerFulfillmentOrderId}"


def token(amazon) -> str:
    return httpx.post(f"{amazon.url}/auth/o2/token", data={
        "grant_type": "refresh_token", "refresh_token": amazon.refresh_token, "client_id": amazon.client_id,
        "client_secret": amazon.client_secret}).json()["access_token"]


def test_our_create_request_is_the_models_and_money_is_a_decimal_string(spec):
    o, shipment = order(company="Analytical Engines Ltd", line2="Floor 2", phone="+1 212 555 0100")
    body = build_request(shipment.shipment_id, o, shipment, account(shipping_speed="Expedited"),
                         "ATVPDKIKX0DER").body()
    validator(spec, "CreateFulfillmentOrderRequest").validate(body)
    assert body["sellerFulfillmentOrderId"] == shipment.shipment_id
    assert body["displayableOrderId"] == o.order_id and body["shippingSpeedCategory"] == "Expedited"
    assert body["destinationAddress"] == {
        "name": "Ada Lovelace", "addressLine1": "Analytical Engines Ltd", "addressLine2": "12 Analytical St",
        "addressLine3": "Floor 2", "city": "Brooklyn", "stateOrRegion": "NY", "postalCode": "11201",
        "countryCode": "US", "phone": "+1 212 555 0100"}
    assert body["items"] == [
        {"sellerSku": "MUG-12OZ", "sellerFulfillmentOrderItemId": "line-1", "quantity": 2,
         "perUnitDeclaredValue": {"currencyCode": "USD", "value": "12.50"}},
        {"sellerSku": "TSHIRT-BLK-M", "sellerFulfillmentOrderItemId": "line-2", "quantity": 1,
         "perUnitDeclaredValue": {"currencyCode": "USD", "value": "19.99"}}]
    assert "float" not in json.dumps(body) and not any(isinstance(v, float) for v in _values(body))
    required = spec["definitions"]["CreateFulfillmentOrderRequest"]["required"]
    assert set(required) <= set(body)


def _values(node):
    if isinstance(node, dict):
        for v in node.values():
            yield from _values(v)
    elif isinstance(node, list):
        for v in node:
            yield from _values(v)
    else:
        yield node


def test_money_keeps_its_precision():
    assert mcf.money_value(Decimal("12.5")) == "12.50"
    assert mcf.money_value(Decimal("0.1234")) == "0.1234"
    assert mcf.money_value(Decimal("7")) == "7.00"


def test_the_requests_we_send_are_the_models_operations(spec, amazon):
    amazon.step_seconds = 1000.0  # still Received when it is cancelled
    client = connect(amazon)
    o, shipment = order()
    client.create(build_request(shipment.shipment_id, o, shipment, account(), amazon.marketplace_id))
    client.get(shipment.shipment_id)
    client.cancel(shipment.shipment_id)
    client.close()
    operations = {("POST", ORDERS): "createFulfillmentOrder", ("GET", ONE): "getFulfillmentOrder",
                  ("PUT", ONE + "/cancel"): "cancelFulfillmentOrder"}
    for (method, path), operation_id in operations.items():
        assert spec["paths"][path][method.lower()]["operationId"] == operation_id
    for r in amazon.api_requests("/fba/"):
        template = ORDERS if r["path"] == ORDERS else (ONE + "/cancel" if r["path"].endswith("/cancel") else ONE)
        assert (r["method"], template) in operations
        assert r["query"] == {}
    created = amazon.calls("create")[0]
    validator(spec, "CreateFulfillmentOrderRequest").validate(created["json"])


@pytest.mark.parametrize("status", ["Received", "Planning", "Processing", "Complete", "Cancelled", "Unfulfillable",
                                    "Invalid", "CompletePartialled"])
def test_get_fulfillment_order_answers_match_the_model_at_every_status(spec, amazon, status):
    client = connect(amazon)
    o, shipment = order()
    amazon.step_seconds = 1000.0
    client.create(build_request(shipment.shipment_id, o, shipment, account(), amazon.marketplace_id))
    client.close()
    amazon.set_status(shipment.shipment_id, status)
    answer = httpx.get(f"{amazon.url}{ORDERS}/{shipment.shipment_id}", headers={"x-amz-access-token": token(amazon)})
    assert answer.status_code == 200 and answer.headers["x-amzn-RateLimit-Limit"]
    body = answer.json()
    validator(spec, "GetFulfillmentOrderResponse").validate(body)
    details = mcf.FulfillmentOrderDetails.model_validate(body["payload"])
    assert details.status == mcf.order_status(status)


def test_errors_and_empty_answers_match_the_model(spec, amazon):
    headers = {"x-amz-access-token": token(amazon)}
    o, shipment = order()
    body = build_request(shipment.shipment_id, o, shipment, account(), amazon.marketplace_id).body()
    created = httpx.post(f"{amazon.url}{ORDERS}", json=body, headers=headers)
    validator(spec, "CreateFulfillmentOrderResponse").validate(created.json())
    duplicate = httpx.post(f"{amazon.url}{ORDERS}", json=body, headers=headers)
    assert duplicate.status_code == 400 and "already exists" in duplicate.json()["errors"][0]["message"]
    validator(spec, "CreateFulfillmentOrderResponse").validate(duplicate.json())
    missing = httpx.post(f"{amazon.url}{ORDERS}", json={**body, "items": []}, headers=headers)
    assert missing.status_code == 400
    validator(spec, "CreateFulfillmentOrderResponse").validate(missing.json())
    too_late = httpx.put(f"{amazon.url}{ORDERS}/{shipment.shipment_id}/cancel", headers=headers)
    assert too_late.status_code == 400  # step_seconds=0: it is Complete already
    validator(spec, "CancelFulfillmentOrderResponse").validate(too_late.json())
    unknown = httpx.get(f"{amazon.url}{ORDERS}/nope", headers=headers)
    assert unknown.status_code == 404
    validator(spec, "GetFulfillmentOrderResponse").validate(unknown.json())
    amazon.inject(status=429, retry_after=0.5, path_prefix="/fba/")
    throttled = httpx.get(f"{amazon.url}{ORDERS}/nope", headers=headers)
    assert throttled.status_code == 429 and throttled.headers["Retry-After"] == "0.5"
    validator(spec, "GetFulfillmentOrderResponse").validate(throttled.json())
    forbidden = httpx.get(f"{amazon.url}{ORDERS}/nope", headers={"x-amz-access-token": "Atza|stale"})
    assert forbidden.status_code == 403
    validator(spec, "GetFulfillmentOrderResponse").validate(forbidden.json())


def test_amazons_own_example_reads_into_our_models(spec):
    example = spec["paths"][ONE]["get"]["responses"]["200"]["examples"]
    details = mcf.FulfillmentOrderDetails.model_validate(example["payload"])
    assert details.status == mcf.PROCESSING  # the example spells it PROCESSING; the enum says Processing
    assert [s.status for s in details.shipments()] == ["PENDING"] and details.packages() == []
    assert not details.all_shipped()


def test_the_sandbox_validates_requests_like_amazon(amazon):
    headers = {"x-amz-access-token": token(amazon)}
    o, shipment = order()
    good = build_request(shipment.shipment_id, o, shipment, account(), amazon.marketplace_id).body()
    bad = [
        {**good, "sellerFulfillmentOrderId": "x" * 41},
        {**good, "shippingSpeedCategory": "Overnight"},
        {**good, "destinationAddress": {**good["destinationAddress"], "postalCode": ""}},
        {**good, "items": [{**good["items"][0], "quantity": 0}]},
        {**good, "items": [{**good["items"][0], "perUnitDeclaredValue": {"currencyCode": "USD", "value": 12.5}}]},
        {**good, "marketplaceId": "A1F83G8C2ARO7P"},
        {k: v for k, v in good.items() if k != "displayableOrderComment"},
    ]
    for body in bad:
        answer = httpx.post(f"{amazon.url}{ORDERS}", json=body, headers=headers)
        assert answer.status_code == 400, body
        assert answer.json()["errors"][0]["code"] == "InvalidInput"
    assert amazon.fulfillment_orders == {}
