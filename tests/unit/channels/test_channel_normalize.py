"""Channel JSON into our order model: Decimal money, addresses, status mapping, malformed orders kept."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest

from orderflow.channels import amazon, shopify, woocommerce
from orderflow.channels.base import ChannelState
from tests.contracts import amazon_model
from tests.unit.channels.conftest import FIXTURES


def shopify_fixture() -> dict:
    return json.loads((FIXTURES / "shopify-order-rest.json").read_text(), parse_float=Decimal)["order"]


def test_shopifys_own_order_fixture_reads_into_a_new_order():
    co = shopify.normalize_rest(shopify_fixture(), "shop")
    assert co.problem is None and co.external_id == "450789469"
    assert co.state == ChannelState.READY and co.state_detail == "financial status AUTHORIZED"
    new = co.order
    assert (new.channel, new.external_id, new.currency) == ("shop", "450789469", "USD")
    assert [(line.sku, line.quantity, line.unit_price) for line in new.lines] == [
        ("IPOD2008GREEN", 1, Decimal("199.00")), ("IPOD2008RED", 1, Decimal("199.00")),
        ("IPOD2008BLACK", 1, Decimal("199.00"))]
    address = new.shipping_address
    assert (address.name, address.line1, address.line2, address.city, address.region, address.postal_code,
            address.country) == ("Bob Norman", "Chestnut Street 92", None, "Louisville", "KY", "40202", "US")
    assert new.customer.email == "bob.norman@hostmail.com"
    assert co.updated_at.isoformat() == "2008-01-10T16:00:00+00:00"


@pytest.mark.parametrize("financial, fulfillment, cancelled, state", [
    ("paid", None, None, ChannelState.READY),
    ("authorized", None, None, ChannelState.READY),
    ("partially_refunded", None, None, ChannelState.READY),
    ("pending", None, None, ChannelState.UNPAID),
    ("partially_paid", None, None, ChannelState.UNPAID),
    ("expired", None, None, ChannelState.UNPAID),
    ("refunded", None, None, ChannelState.CANCELLED),
    ("voided", None, None, ChannelState.CANCELLED),
    ("paid", None, "2026-01-01T00:00:00Z", ChannelState.CANCELLED),
    ("paid", "fulfilled", None, ChannelState.FULFILLED),
    ("paid", "partial", None, ChannelState.CLOSED),
])
def test_shopify_status_mapping(financial, fulfillment, cancelled, state):
    order = {**shopify_fixture(), "financial_status": financial, "fulfillment_status": fulfillment,
             "cancelled_at": cancelled}
    assert shopify.normalize_rest(order, "shop").state == state


def test_shopify_graphql_node_reads_like_the_rest_payload():
    node = {"id": "gid://shopify/Order/450789469", "legacyResourceId": "450789469", "updatedAt": "2026-01-10T16:00:00Z",
            "displayFinancialStatus": "PAID", "displayFulfillmentStatus": "UNFULFILLED", "cancelledAt": None,
            "currencyCode": "EUR", "email": "a@example.com",
            "shippingAddress": {"name": "A B", "address1": "1 St", "address2": "", "city": "Paris", "provinceCode": None,
                                "zip": "75001", "countryCodeV2": "FR", "phone": None, "company": None},
            "lineItems": {"nodes": [{"sku": "S-1", "quantity": 2,
                                     "originalUnitPriceSet": {"shopMoney": {"amount": "10.10"}}}]}}
    co = shopify.normalize_graphql(node, "shop")
    assert co.state == ChannelState.READY and co.order.currency == "EUR"
    assert co.order.lines[0].unit_price == Decimal("10.10") and co.order.shipping_address.country == "FR"


def test_a_malformed_order_names_the_fields_never_their_values():
    order = shopify_fixture()
    order["line_items"][1]["sku"] = None
    order["line_items"][2]["price"] = "a lot"
    order["shipping_address"]["country_code"] = "Secret Country Name"
    co = shopify.normalize_rest(order, "shop")
    assert co.order is None
    assert "lines.1.sku" in co.problem and "lines.2.unit_price" in co.problem
    assert "shipping_address.country" in co.problem
    assert "Secret Country Name" not in co.problem and "Bob" not in co.problem
    assert [line.sku for line in co.partial["lines"]] == ["IPOD2008GREEN"]  # what could be read is kept
    assert "address" not in co.partial and co.partial["currency"] == "USD"


def test_an_order_without_an_id_still_gets_a_stable_one():
    order = shopify_fixture()
    del order["id"]
    first, second = shopify.normalize_rest(order, "shop"), shopify.normalize_rest(dict(order), "shop")
    assert first.external_id.startswith("unidentified-") and first.external_id == second.external_id


def woo_order(**changes) -> dict:
    order = {
        "id": 727, "status": "processing", "currency": "USD", "date_modified_gmt": "2026-01-10T16:00:00",
        "billing": {"first_name": "John", "last_name": "Doe", "email": "john.doe@example.com", "phone": "555",
                    "address_1": "969 Market", "city": "San Francisco", "state": "CA", "postcode": "94103",
                    "country": "US"},
        "shipping": {"first_name": "John", "last_name": "Doe", "company": "", "address_1": "969 Market",
                     "address_2": "", "city": "San Francisco", "state": "CA", "postcode": "94103", "country": "US"},
        "line_items": [{"id": 315, "sku": "MUG-12OZ", "quantity": 2, "price": Decimal("12.5"), "subtotal": "25.00"}],
    }
    order.update(changes)
    return order


def test_woocommerce_order_reads_with_its_number_price_exactly():
    co = woocommerce.normalize(woo_order(), "woo")
    assert co.state == ChannelState.READY and co.external_id == "727"
    assert co.order.lines[0].unit_price == Decimal("12.5")
    assert co.order.shipping_address.name == "John Doe" and co.order.customer.email == "john.doe@example.com"
    assert co.updated_at.isoformat() == "2026-01-10T16:00:00+00:00"


@pytest.mark.parametrize("status, state", [
    ("processing", ChannelState.READY), ("pending", ChannelState.UNPAID), ("on-hold", ChannelState.UNPAID),
    ("failed", ChannelState.UNPAID), ("completed", ChannelState.FULFILLED), ("cancelled", ChannelState.CANCELLED),
    ("refunded", ChannelState.CANCELLED), ("trash", ChannelState.CANCELLED)])
def test_woocommerce_status_mapping(status, state):
    assert woocommerce.normalize(woo_order(status=status), "woo").state == state


def test_woocommerce_falls_back_to_the_billing_address_for_virtual_orders():
    empty = dict.fromkeys(woo_order()["shipping"], "")
    co = woocommerce.normalize(woo_order(shipping=empty), "woo")
    assert co.order.shipping_address.line1 == "969 Market"


def test_amazons_own_sandbox_example_reads_into_orders():
    example = amazon_model("orders_2026-01-01.json")["paths"]["/orders/2026-01-01/orders"]["get"]["responses"]["200"]
    response = example["x-amzn-api-sandbox"]["static"][0]["response"]
    co = amazon.normalize(response["orders"][0], "amz")
    # That example is an FBA order Amazon has shipped: not ours to fulfil.
    assert co.state == ChannelState.CLOSED and co.problem is None
    assert co.order.currency == "JPY" and co.order.lines[1].quantity == 2
    assert co.order.lines[0].unit_price == Decimal("5980") and co.order.shipping_address.country == "JP"
    assert co.order.shipping_address.line2 == "Suite 456"


@pytest.mark.parametrize("status, by, state", [
    ("UNSHIPPED", "MERCHANT", ChannelState.READY), ("PENDING", "MERCHANT", ChannelState.UNPAID),
    ("PENDING_AVAILABILITY", "MERCHANT", ChannelState.UNPAID), ("SHIPPED", "MERCHANT", ChannelState.FULFILLED),
    ("PARTIALLY_SHIPPED", "MERCHANT", ChannelState.CLOSED), ("CANCELLED", "MERCHANT", ChannelState.CANCELLED),
    ("UNSHIPPED", "AMAZON", ChannelState.CLOSED), ("CANCELLED", "AMAZON", ChannelState.CANCELLED)])
def test_amazon_status_mapping(status, by, state):
    order = {"orderId": "1", "fulfillment": {"fulfillmentStatus": status, "fulfilledBy": by}, "orderItems": []}
    assert amazon.normalize(order, "amz").state == state
