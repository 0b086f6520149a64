"""The sandbox Amazon answers, and our client asks, in the shapes of Amazon's own OpenAPI models, so the
local fakes cannot drift from the real API."""

from __future__ import annotations

import jsonschema
import pytest

from orderflow.channels.amazon import INCLUDED_DATA
from orderflow_local.sandbox import AmazonSandbox
from tests.contracts import amazon_model as model
from tests.unit.channels.conftest import connect, read_all


def validator(spec: dict, definition: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": spec["definitions"]})


@pytest.fixture
def amazon_shop():
    with AmazonSandbox(settle_seconds=0, rate=50, burst=50) as shop:
        yield shop


def test_search_orders_answers_match_the_orders_model(amazon_shop):
    import httpx

    spec = model("orders_2026-01-01.json")
    for _ in range(3):
        amazon_shop.add_order()
    amazon_shop.add_order(state="pending")
    cancelled = amazon_shop.add_order()
    amazon_shop.cancel(cancelled)
    token = httpx.post(f"{amazon_shop.url}/auth/o2/token", data={
        "grant_type": "refresh_token", "refresh_token": amazon_shop.refresh_token,
        "client_id": amazon_shop.client_id, "client_secret": amazon_shop.client_secret}).json()["access_token"]
    check = validator(spec, "SearchOrdersResponse")
    params = {"lastUpdatedAfter": "2020-01-01T00:00:00Z", "marketplaceIds": amazon_shop.marketplace_id,
              "includedData": ",".join(INCLUDED_DATA), "maxResultsPerPage": 2}
    pages = 0
    while True:
        answer = httpx.get(f"{amazon_shop.url}/orders/2026-01-01/orders", params=params,
                           headers={"x-amz-access-token": token})
        assert answer.status_code == 200 and answer.headers["x-amzn-RateLimit-Limit"]
        body = answer.json()
        check.validate(body)
        pages += 1
        if "pagination" not in body:
            break
        params["paginationToken"] = body["pagination"]["nextToken"]
    assert pages == 3
    error = httpx.get(f"{amazon_shop.url}/orders/2026-01-01/orders", params={"createdAfter": "2020-01-01T00:00:00Z",
                      "lastUpdatedAfter": "2020-01-01T00:00:00Z"}, headers={"x-amz-access-token": token})
    assert error.status_code == 400
    validator(spec, "ErrorList").validate(error.json())


def test_our_search_orders_parameters_are_the_models(amazon_shop):
    spec = model("orders_2026-01-01.json")
    operation = spec["paths"]["/orders/2026-01-01/orders"]["get"]
    known = {p["name"]: p for p in operation["parameters"]}
    amazon_shop.add_order()
    amazon_shop.add_order()
    read_all(connect(amazon_shop, page_size=1))
    for request in amazon_shop.api_requests("/orders/"):
        assert set(request["query"]) <= set(known)
        for name in ("includedData", "fulfilledBy", "marketplaceIds"):
            allowed = known[name]["items"].get("enum")
            if allowed:
                assert set(request["query"][name].split(",")) <= set(allowed)


def test_our_listing_patch_is_the_models_request_and_its_answer_the_models_response(amazon_shop):
    spec = model("listingsItems_2021-08-01.json")
    operation = spec["paths"]["/listings/2021-08-01/items/{sellerId}/{sku}"]["patch"]
    connect(amazon_shop).push_inventory("TSHIRT-BLK-M", 4)
    request = amazon_shop.api_requests("/listings/")[-1]
    assert set(request["query"]) <= {p["name"] for p in operation["parameters"]}
    validator(spec, "ListingsItemPatchRequest").validate(request["json"])
    assert request["json"]["patches"][0]["path"] == "/attributes/fulfillment_availability"
    import httpx

    token = connect(amazon_shop).access_token()
    answer = httpx.patch(f"{amazon_shop.url}/listings/2021-08-01/items/{amazon_shop.seller_id}/TSHIRT-BLK-M",
                         params={"marketplaceIds": amazon_shop.marketplace_id}, json=request["json"],
                         headers={"x-amz-access-token": token})
    validator(spec, "ListingsItemSubmissionResponse").validate(answer.json())
