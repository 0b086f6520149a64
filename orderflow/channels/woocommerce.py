"""WooCommerce REST API v3: orders by ``modified_after``, page-number paging, products by SKU.

Paging is by page number (``per_page`` up to 100, ``X-WP-TotalPages``), newest first (WooCommerce's
default ``orderby=date&order=desc``). With a ``modified_after`` lower bound an order only ever enters the
result set, and new orders enter at the front, so pages shift towards the end while we read: an order
may be read twice (the importer dedupes it), never skipped.

Tracking: a customer note on the order (``POST /orders/{id}/notes`` with ``customer_note``; WooCommerce
emails it) naming the shipment, and ``status: completed`` once the last shipment left. The notes are read
first, so a note for a shipment is never added twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from orderflow.channels.base import (
    ChannelError,
    ChannelOrder,
    ChannelState,
    FulfillmentNotice,
    FulfillmentResult,
    Page,
    PushResult,
    build,
    money,
    parse_time,
    payload_id,
    text,
    utc,
)
from orderflow.channels.config import WooCommerceConfig, WooCommerceCredentials
from orderflow.channels.http import ChannelHttp, Deadline, RetryPolicy, read_json, server_time

API = "/wp-json/wc/v3"

STATES = {
    "processing": (ChannelState.READY, "status processing (paid)"),
    "pending": (ChannelState.UNPAID, "status pending (awaiting payment)"),
    "on-hold": (ChannelState.UNPAID, "status on-hold (awaiting payment confirmation)"),
    "failed": (ChannelState.UNPAID, "status failed (payment failed)"),
    "checkout-draft": (ChannelState.UNPAID, "status checkout-draft"),
    "completed": (ChannelState.FULFILLED, "status completed"),
    "cancelled": (ChannelState.CANCELLED, "cancelled on WooCommerce"),
    "refunded": (ChannelState.CANCELLED, "refunded on WooCommerce"),
    "trash": (ChannelState.CANCELLED, "trashed on WooCommerce"),
}


def woo_time(value: datetime) -> str:
    """WooCommerce's date parameters: ``2026-01-10T16:00:00`` (GMT with ``dates_are_gmt=true``)."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%S")


def normalize(order: dict[str, Any], channel_id: str) -> ChannelOrder:
    external_id = text(order.get("id")) or payload_id(order)
    status = str(order.get("status") or "").lower()
    state, detail = STATES.get(status, (ChannelState.UNPAID, f"status {status or 'unknown'}"))

    def fields() -> dict[str, Any]:
        ship = order.get("shipping") or {}
        bill = order.get("billing") or {}
        address = ship if text(ship.get("address_1")) else bill  # virtual-only stores leave shipping empty
        name = " ".join(filter(None, (text(address.get("first_name")), text(address.get("last_name"))))) or None
        shipping_address = None
        if text(address.get("address_1")):
            shipping_address = {k: v for k, v in {
                "name": name, "company": text(address.get("company")), "line1": text(address.get("address_1")),
                "line2": text(address.get("address_2")), "city": text(address.get("city")),
                "region": text(address.get("state")), "postal_code": text(address.get("postcode")),
                "country": text(address.get("country")),
                "phone": text(address.get("phone")) or text(bill.get("phone")),
            }.items() if v is not None}
        customer = {k: v for k, v in (("name", name), ("email", text(bill.get("email")))) if v} or None
        return {
            "channel": channel_id, "external_id": external_id,
            "currency": order.get("currency") or "USD",
            "lines": [{"sku": text(item.get("sku")), "quantity": item.get("quantity"),
                       "unit_price": money(item.get("price"))} for item in order.get("line_items") or []],
            "shipping_address": shipping_address,
            "customer": customer,
        }

    updated = parse_time(order.get("date_modified_gmt")) or parse_time(order.get("date_modified"))
    return build(external_id, state, detail, updated, order, fields)


class WooCommerceClient:
    def __init__(self, config: WooCommerceConfig, credentials: WooCommerceCredentials, *,
                 retry: RetryPolicy | None = None, deadline: Deadline | None = None, timeout: float = 30.0) -> None:
        self.config = config
        self.channel_id = config.channel_id
        # Consumer key and secret as HTTP Basic auth (WooCommerce's documented way over HTTPS).
        self.http = ChannelHttp(
            config.base_url, config.channel_id,
            auth=(credentials.consumer_key.get_secret_value(), credentials.consumer_secret.get_secret_value()),
            headers={"Accept": "application/json"},
            retry=retry or RetryPolicy(), deadline=deadline or Deadline(), timeout=timeout)

    def close(self) -> None:
        self.http.close()

    def fetch_page(self, updated_after: datetime, token: str | None) -> Page:
        page = int(token or 1)
        response = self.http.request("GET", f"{API}/orders", params={
            "modified_after": woo_time(updated_after), "dates_are_gmt": "true", "status": "any",
            "orderby": "date", "order": "desc", "per_page": self.config.page_size, "page": page})
        body = read_json(response)
        if not isinstance(body, list):
            raise ChannelError(f"{self.channel_id}: orders answer is not a list", channel_id=self.channel_id)
        try:
            total_pages = int(response.headers.get("x-wp-totalpages", "0"))
        except ValueError:
            total_pages = 0
        orders = [normalize(order, self.channel_id) for order in body if isinstance(order, dict)]
        more = bool(body) and page < total_pages
        return Page(orders=orders, next_token=str(page + 1) if more else None, server_time=server_time(response))

    def order_deleted(self, external_id: str) -> bool:
        """Whether the store has really deleted the order (``GET /orders/{id}`` answers 404, or it is in
        the trash): an ``order.deleted`` webhook's headers are not signed, so its topic is confirmed here."""
        try:
            order = read_json(self.http.request("GET", f"{API}/orders/{int(external_id)}"))
        except ValueError:
            return False
        except ChannelError as err:
            if getattr(err, "details", {}).get("status") == 404:
                return True
            raise
        return isinstance(order, dict) and order.get("status") == "trash"

    def product_by_sku(self, sku: str) -> dict[str, Any]:
        response = self.http.request("GET", f"{API}/products", params={"sku": sku, "per_page": 10})
        for product in read_json(response) or []:
            if isinstance(product, dict) and product.get("sku") == sku:
                return product
        raise ChannelError(f"{self.channel_id}: no product with SKU {sku}", sku=sku)

    def push_inventory(self, sku: str, quantity: int, *, idempotency_key: str | None = None,
                       expected_quantity: int | None = None) -> PushResult:
        """``PUT /products/{id}`` (or ``/products/{parent}/variations/{id}``) with ``stock_quantity``.
        A PUT of an absolute quantity is idempotent by itself, so ``idempotency_key`` is not sent."""
        product = self.product_by_sku(sku)
        if expected_quantity is not None and product.get("stock_quantity") != expected_quantity:
            raise ChannelError(f"{self.channel_id}: {sku} has {product.get('stock_quantity')} on the store, "
                               f"not the expected {expected_quantity}", sku=sku, code="stale_quantity")
        if product.get("type") == "variation" and product.get("parent_id"):
            path = f"{API}/products/{product['parent_id']}/variations/{product['id']}"
        else:
            path = f"{API}/products/{product['id']}"
        response = self.http.request("PUT", path, json={"manage_stock": True, "stock_quantity": int(quantity)})
        body = read_json(response)
        return PushResult(channel_id=self.channel_id, sku=sku, quantity=int(quantity),
                          reference=str(body.get("id", product["id"])) if isinstance(body, dict) else None)

    def push_fulfillment(self, notice: FulfillmentNotice) -> FulfillmentResult:
        path = f"{API}/orders/{notice.external_id}"
        marker = f"[{notice.shipment_id}]"
        notes = read_json(self.http.request("GET", f"{path}/notes", params={"type": "customer"}))
        noted = isinstance(notes, list) and any(marker in str(n.get("note", "")) for n in notes if isinstance(n, dict))
        reference = None
        if not noted:
            items = ", ".join(f"{qty} x {sku}" for sku, qty in sorted(notice.lines.items()))
            tracking = ", ".join(notice.tracking_numbers)
            text_ = (f"Shipped {marker}: {items}" + (f" via {notice.carrier}" if notice.carrier else "")
                     + (f", tracking {tracking}" if tracking else "") + ".")
            created = read_json(self.http.request("POST", f"{path}/notes",
                                                  json={"note": text_, "customer_note": True}))
            reference = str(created.get("id")) if isinstance(created, dict) and created.get("id") else None
        if notice.complete:
            order = read_json(self.http.request("PUT", path, json={"status": "completed"}))
            if isinstance(order, dict) and order.get("status") not in (None, "completed"):
                raise ChannelError(f"{self.channel_id}: order {notice.external_id} stayed {order.get('status')}")
        if noted:
            return FulfillmentResult("on_channel", note="the store has this shipment's note already")
        return FulfillmentResult("pushed", reference=reference,
                                 note="order completed on the store" if notice.complete else None)
