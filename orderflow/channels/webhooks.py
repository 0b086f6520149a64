"""Channel webhooks: check the channel's signature over the raw body, then read the order in it.

- Shopify: ``X-Shopify-Hmac-Sha256`` = base64(HMAC-SHA256(app client secret, raw body)); the body is the
  REST order JSON; ``X-Shopify-Event-Id`` is the same across redeliveries of one event.
- WooCommerce: ``X-WC-Webhook-Signature`` = base64(HMAC-SHA256(webhook secret, raw body));
  ``X-WC-Webhook-Delivery-ID`` names the delivery. Creating a webhook sends a ping (``webhook_id=N``).
- Amazon delivers notifications through SQS/EventBridge, not HTTP webhooks: refused here.

The signature is checked over the bytes received, never over re-serialized JSON.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from orderflow.channels import shopify, woocommerce
from orderflow.channels.base import ChannelOrder, ChannelState
from orderflow.channels.config import ChannelType
from orderflow.errors import OrderflowError, ValidationFailed


class InvalidSignature(OrderflowError):
    http_status = 401
    code = "invalid_signature"


#: One answer for every refused delivery (a bad signature, an unknown channel, a channel that takes no
#: webhooks), so the answer does not tell a prober which channel ids exist or what type they are.
REFUSED = "the webhook's signature does not match the body for this channel"


@dataclass
class Delivery:
    topic: str
    #: The channel's id for the event (same across its redeliveries); None when it sends none.
    event_id: str | None
    orders: list[ChannelOrder] = field(default_factory=list)
    #: A ping or a topic we do not act on: answered 200, nothing imported.
    ignored: str | None = None


def sign(raw: bytes, secret: str) -> str:
    """base64(HMAC-SHA256(secret, raw)): Shopify's and WooCommerce's webhook signature."""
    return base64.b64encode(hmac.new(secret.encode(), raw, hashlib.sha256).digest()).decode()


def verify(raw: bytes, signature: str | None, secret: str | None) -> bool:
    if not signature or not secret:
        return False
    return hmac.compare_digest(sign(raw, secret).encode(), signature.strip().encode())


def raw_body(event: dict[str, Any]) -> bytes:
    """The request body as received (API Gateway base64-encodes binary bodies)."""
    body = event.get("body") or ""
    if event.get("isBase64Encoded"):
        return base64.b64decode(body)
    return body.encode("utf-8")


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw, parse_float=Decimal)
    except ValueError as err:
        raise ValidationFailed("the webhook body is not JSON", field="body") from err


WOO_PING = re.compile(rb"^webhook_id=\d+$")


def read_delivery(channel_type: ChannelType | str, channel_id: str, headers: dict[str, str], raw: bytes,
                  secret: str | None) -> Delivery:
    """Verify and read one webhook delivery. Raises :class:`InvalidSignature` (401) on a bad signature."""
    h = {k.lower(): v for k, v in headers.items()}
    kind = ChannelType(channel_type)
    if kind == ChannelType.SHOPIFY:
        if not verify(raw, h.get("x-shopify-hmac-sha256"), secret):
            raise InvalidSignature(REFUSED, channel_id=channel_id)
        topic = h.get("x-shopify-topic", "")
        event_id = h.get("x-shopify-event-id") or h.get("x-shopify-webhook-id")
        if not topic.startswith("orders/"):
            return Delivery(topic=topic, event_id=event_id, ignored=f"topic {topic or '(none)'} is not an order topic")
        body = _json(raw)
        if not isinstance(body, dict):
            raise ValidationFailed("the webhook body is not an order object", field="body")
        return Delivery(topic=topic, event_id=event_id, orders=[shopify.normalize_rest(body, channel_id)])
    if kind == ChannelType.WOOCOMMERCE:
        if WOO_PING.match(raw.strip()):
            return Delivery(topic="ping", event_id=None, ignored="webhook ping")
        if not verify(raw, h.get("x-wc-webhook-signature"), secret):
            raise InvalidSignature(REFUSED, channel_id=channel_id)
        topic = h.get("x-wc-webhook-topic", "")
        event_id = h.get("x-wc-webhook-delivery-id")
        if not topic.startswith("order."):
            return Delivery(topic=topic, event_id=event_id, ignored=f"topic {topic or '(none)'} is not an order topic")
        body = _json(raw)
        if not isinstance(body, dict):
            raise ValidationFailed("the webhook body is not an order object", field="body")
        if topic == "order.deleted":
            external_id = str(body.get("id", ""))
            deleted = ChannelOrder(external_id=external_id, state=ChannelState.CANCELLED,
                                   state_detail="deleted on WooCommerce", updated_at=None, raw=body)
            return Delivery(topic=topic, event_id=event_id, orders=[deleted] if external_id else [])
        return Delivery(topic=topic, event_id=event_id, orders=[woocommerce.normalize(body, channel_id)])
    # Amazon delivers notifications through SQS/EventBridge, never to this route: refused like a forgery.
    raise InvalidSignature(REFUSED, channel_id=channel_id)
