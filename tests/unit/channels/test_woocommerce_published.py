"""WooCommerce's own published order payloads (REST API v3 docs, "Retrieve an order" and "List all orders";
see fixtures/README.md) through our client, ``woocommerce.normalize()`` and the webhook reader: the
shapes a real store sends, not our hand-written ones.

The documented order 727 has a line whose product has no SKU (``"sku": ""``), as many real stores do:
it is kept with a problem (needs attention), never dropped and never imported with a guessed SKU."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal

import httpx
import pytest

from orderflow.channels import woocommerce
from orderflow.channels.base import ChannelState
from orderflow.channels.config import WooCommerceConfig, WooCommerceCredentials
from orderflow.channels.webhooks import InvalidSignature, read_delivery, sign
from tests.unit.channels.conftest import FIXTURES, fast_retry

SECRET = "whsec-test"
RETRIEVED = (FIXTURES / "woocommerce-order-v3.json").read_bytes()
LISTED = (FIXTURES / "woocommerce-orders-v3.json").read_bytes()


def documented(**changes) -> dict:
    """Order 727 as WooCommerce documents it (floats as Decimal, like our readers), with ``changes``."""
    return {**json.loads(RETRIEVED, parse_float=Decimal), **changes}


def with_skus(order: dict) -> dict:
    """The same order after the seller gave every product a SKU (``WOO-<product_id>``)."""
    lines = [{**item, "sku": item["sku"] or f"WOO-{item['product_id']}"} for item in order["line_items"]]
    return {**order, "line_items": lines}


def woo_headers(body: bytes, topic: str = "order.created", secret: str = SECRET) -> dict[str, str]:
    """The headers WooCommerce's WC_Webhook sends with a delivery."""
    resource, event = topic.split(".", 1)
    return {"Content-Type": "application/json", "User-Agent": "WooCommerce/9.0 Hookshot (WordPress/6.5)",
            "X-WC-Webhook-Source": "https://example.com/", "X-WC-Webhook-Topic": topic,
            "X-WC-Webhook-Resource": resource, "X-WC-Webhook-Event": event,
            "X-WC-Webhook-Signature": sign(body, secret), "X-WC-Webhook-ID": "142",
            "X-WC-Webhook-Delivery-ID": "0f6d3e1c2b5a4a7e9d8c7b6a5f4e3d2c"}


def test_the_documented_order_reads_into_a_new_order_once_its_products_have_skus():
    co = woocommerce.normalize(with_skus(documented()), "woo")
    assert co.problem is None and co.external_id == "727"
    assert co.state == ChannelState.READY and co.state_detail == "status processing (paid)"
    # date_modified_gmt, not the store's local date_modified (16:28:08 at UTC-3)
    assert co.updated_at == datetime(2017, 3, 22, 19, 28, 8, tzinfo=UTC)
    new = co.order
    assert (new.channel, new.external_id, new.currency) == ("woo", "727", "USD")
    # "price" is the unit price after discounts: 6.00 for 2 x "Woo Single #1" is 3 each
    assert [(line.sku, line.quantity, line.unit_price) for line in new.lines] == [
        ("WOO-93", 2, Decimal("3")), ("Bar3", 1, Decimal("12"))]
    address = new.shipping_address
    assert (address.name, address.company, address.line1, address.line2, address.city, address.region,
            address.postal_code, address.country) == \
        ("John Doe", None, "969 Market", None, "San Francisco", "CA", "94103", "US")
    assert address.phone == "(555) 555-5555"  # only billing has a phone: it is used for the carrier
    assert (new.customer.name, new.customer.email) == ("John Doe", "john.doe@example.com")


def test_the_documented_order_with_a_product_without_a_sku_is_kept_for_attention():
    co = woocommerce.normalize(documented(), "woo")
    assert co.external_id == "727" and co.state == ChannelState.READY and co.order is None
    assert co.problem.startswith("lines.0.sku")  # the first line names no SKU
    assert co.partial["currency"] == "USD" and co.partial["address"].line1 == "969 Market"
    assert [line.sku for line in co.partial["lines"]] == ["Bar3"]  # what could be read is kept


def test_the_documented_list_reads_both_orders_with_their_states():
    orders = [woocommerce.normalize(with_skus(o), "woo") for o in json.loads(LISTED, parse_float=Decimal)]
    assert [(co.external_id, co.state) for co in orders] == [("727", ChannelState.READY),
                                                             ("723", ChannelState.FULFILLED)]
    completed = orders[1].order
    assert [(line.sku, line.unit_price) for line in completed.lines] == [("WOO-87", Decimal("9")),
                                                                         ("WOO-34", Decimal("20"))]
    assert (completed.shipping_address.name, completed.shipping_address.postal_code,
            completed.shipping_address.country) == ("João Silva", "12345-000", "BR")
    assert orders[1].updated_at == datetime(2017, 3, 21, 19, 54, 51, tzinfo=UTC)


def test_the_client_pages_through_the_documented_list_answer():
    seen: list[httpx.Request] = []

    def store(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, content=LISTED, headers={
            "Content-Type": "application/json; charset=UTF-8", "X-WP-Total": "2", "X-WP-TotalPages": "1",
            "Date": "Wed, 22 Mar 2017 19:30:00 GMT"})

    config = WooCommerceConfig(channel_id="woo", base_url="https://example.com")
    client = woocommerce.WooCommerceClient(config, WooCommerceCredentials(consumer_key="ck_x", consumer_secret="cs_x"),
                                           retry=fast_retry())
    client.http.client = httpx.Client(base_url="https://example.com", auth=("ck_x", "cs_x"),
                                      transport=httpx.MockTransport(store))
    try:
        page = client.fetch_page(datetime(2017, 3, 1, tzinfo=UTC), None)
    finally:
        client.close()
    assert seen[0].url.path == "/wp-json/wc/v3/orders" and seen[0].headers["authorization"].startswith("Basic ")
    assert seen[0].url.params["modified_after"] == "2017-03-01T00:00:00" and seen[0].url.params["dates_are_gmt"] == "true"
    assert [(co.external_id, co.state) for co in page.orders] == [("727", ChannelState.READY),
                                                                  ("723", ChannelState.FULFILLED)]
    assert page.next_token is None and page.server_time == datetime(2017, 3, 22, 19, 30, tzinfo=UTC)


@pytest.mark.parametrize("topic", ["order.created", "order.updated"])
def test_a_webhook_with_the_documented_body_reads_like_the_rest_answer(topic):
    body = json.dumps(with_skus(documented()), indent=2).encode()  # WooCommerce sends the REST order JSON
    delivery = read_delivery("woocommerce", "woo", woo_headers(body, topic), body, SECRET)
    assert delivery.topic == topic and delivery.event_id == "0f6d3e1c2b5a4a7e9d8c7b6a5f4e3d2c"
    assert delivery.ignored is None and len(delivery.orders) == 1
    co = delivery.orders[0]
    assert co.problem is None and co.order == woocommerce.normalize(with_skus(documented()), "woo").order


def test_a_webhook_with_the_documented_body_verbatim_keeps_the_order_for_attention():
    delivery = read_delivery("woocommerce", "woo", woo_headers(RETRIEVED), RETRIEVED, SECRET)
    co = delivery.orders[0]
    assert co.external_id == "727" and co.order is None and co.problem.startswith("lines.0.sku")


def test_a_webhook_signed_over_other_bytes_of_the_same_order_is_refused():
    reserialized = json.dumps(json.loads(RETRIEVED)).encode()  # same JSON, different bytes
    with pytest.raises(InvalidSignature):
        read_delivery("woocommerce", "woo", woo_headers(reserialized), RETRIEVED, SECRET)
    with pytest.raises(InvalidSignature):
        read_delivery("woocommerce", "woo", woo_headers(RETRIEVED, secret="another-store"), RETRIEVED, SECRET)


def test_a_deleted_webhook_with_the_documented_body_cancels_the_order():
    body = json.dumps(documented(status="trash")).encode()
    delivery = read_delivery("woocommerce", "woo", woo_headers(body, "order.deleted"), body, SECRET)
    assert [(co.external_id, co.state) for co in delivery.orders] == [("727", ChannelState.CANCELLED)]


def test_non_order_topics_with_documented_headers_are_ignored():
    body = b'{"id": 93, "sku": ""}'
    delivery = read_delivery("woocommerce", "woo", woo_headers(body, "product.updated"), body, SECRET)
    assert delivery.ignored and not delivery.orders
