"""Webhook signatures: good, bad, one byte off, base64 bodies; dedupe ids; topics we ignore."""

from __future__ import annotations

import base64
import json

import pytest

from orderflow.channels.base import ChannelState
from orderflow.channels.webhooks import InvalidSignature, raw_body, read_delivery, sign, verify
from tests.unit.channels.conftest import FIXTURES

SECRET = "hush"
BODY = (FIXTURES / "shopify-order-rest.json").read_bytes()
ORDER = json.dumps(json.loads(BODY)["order"]).encode()


def shopify_headers(body: bytes, secret: str = SECRET, topic: str = "orders/create") -> dict:
    return {"X-Shopify-Hmac-Sha256": sign(body, secret), "X-Shopify-Topic": topic, "X-Shopify-Event-Id": "evt-1",
            "X-Shopify-Webhook-Id": "w-1"}


def test_sign_is_base64_hmac_sha256_of_the_raw_body():
    import hashlib
    import hmac

    expected = base64.b64encode(hmac.new(b"hush", ORDER, hashlib.sha256).digest()).decode()
    assert sign(ORDER, SECRET) == expected
    assert verify(ORDER, expected, SECRET)
    assert not verify(ORDER, expected, "other") and not verify(ORDER, None, SECRET) and not verify(ORDER, expected, None)


def test_shopify_delivery_with_a_good_signature_reads_the_order():
    delivery = read_delivery("shopify", "shop", shopify_headers(ORDER), ORDER, SECRET)
    assert delivery.event_id == "evt-1" and delivery.topic == "orders/create"
    assert delivery.orders[0].external_id == "450789469" and delivery.orders[0].state == ChannelState.READY


def test_headers_are_matched_whatever_their_case():
    headers = {k.lower(): v for k, v in shopify_headers(ORDER).items()}
    assert read_delivery("shopify", "shop", headers, ORDER, SECRET).event_id == "evt-1"


@pytest.mark.parametrize("tamper", ["one byte", "wrong secret", "no header", "no secret"])
def test_shopify_delivery_with_a_bad_signature_is_refused(tamper):
    body, headers, secret = ORDER, shopify_headers(ORDER), SECRET
    if tamper == "one byte":
        body = ORDER.replace(b"450789469", b"450789460", 1)
    elif tamper == "wrong secret":
        headers = shopify_headers(ORDER, "not-it")
    elif tamper == "no header":
        headers.pop("X-Shopify-Hmac-Sha256")
    else:
        secret = None
    with pytest.raises(InvalidSignature) as err:
        read_delivery("shopify", "shop", headers, body, secret)
    assert err.value.http_status == 401


def test_a_base64_encoded_api_gateway_body_is_verified_over_its_bytes():
    event = {"body": base64.b64encode(ORDER).decode(), "isBase64Encoded": True}
    assert raw_body(event) == ORDER
    assert read_delivery("shopify", "shop", shopify_headers(ORDER), raw_body(event), SECRET).orders
    assert raw_body({"body": "{}", "isBase64Encoded": False}) == b"{}"


def test_non_order_topics_and_woo_pings_are_acknowledged_and_ignored():
    other = read_delivery("shopify", "shop", shopify_headers(b"{}", topic="app/uninstalled"), b"{}", SECRET)
    assert other.ignored and not other.orders
    ping = read_delivery("woocommerce", "woo", {}, b"webhook_id=12", SECRET)
    assert ping.ignored == "webhook ping"


def test_woocommerce_delivery():
    body = json.dumps({"id": 5, "status": "processing", "line_items": [], "currency": "USD"}).encode()
    headers = {"X-WC-Webhook-Signature": sign(body, SECRET), "X-WC-Webhook-Topic": "order.created",
               "X-WC-Webhook-Delivery-ID": "77"}
    delivery = read_delivery("woocommerce", "woo", headers, body, SECRET)
    assert delivery.event_id == "77" and delivery.orders[0].external_id == "5"
    assert delivery.orders[0].problem  # no lines, no address: it will be kept as needs_attention
    with pytest.raises(InvalidSignature):
        read_delivery("woocommerce", "woo", {**headers, "X-WC-Webhook-Signature": sign(body, "x")}, body, SECRET)
    deleted = json.dumps({"id": 5}).encode()
    gone = read_delivery("woocommerce", "woo", {"X-WC-Webhook-Signature": sign(deleted, SECRET),
                                                "X-WC-Webhook-Topic": "order.deleted"}, deleted, SECRET)
    assert gone.orders[0].state == ChannelState.CANCELLED


def test_amazon_has_no_http_webhooks_and_is_refused_like_a_forgery():
    with pytest.raises(InvalidSignature) as refused:
        read_delivery("amazon", "amz", {}, b"{}", SECRET)
    with pytest.raises(InvalidSignature) as forged:
        read_delivery("shopify", "shop", {"X-Shopify-Hmac-Sha256": "forged"}, b"{}", SECRET)
    assert str(refused.value) == str(forged.value)
