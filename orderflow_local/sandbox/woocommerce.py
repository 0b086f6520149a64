"""A sandbox WooCommerce store: REST API v3 orders and products, and signed ``order.*`` webhooks.

Orders: ``GET /wp-json/wc/v3/orders`` with ``modified_after`` (strictly after, GMT with
``dates_are_gmt``), ``per_page`` (1-100), ``page``, ``orderby=date``/``id``, ``order``, ``status``;
answers carry ``X-WP-Total``, ``X-WP-TotalPages`` and ``Link``; a page past the last is a 400, as in
WordPress. Money is a decimal string, except ``line_items[].price``, a JSON number (as WooCommerce
sends it). Auth: consumer key and secret, as HTTP Basic or as query parameters.

Tracking: ``GET``/``POST /orders/{id}/notes`` (customer notes) and ``PUT /orders/{id}`` with a
``status`` (``completed`` fulfils every line that is still open).
"""

from __future__ import annotations

import base64
import json
import math
import re
from decimal import Decimal, InvalidOperation
from typing import Any
from urllib.parse import urlencode

from orderflow.channels.base import parse_time
from orderflow.channels.webhooks import sign
from orderflow_local.sandbox.base import Request, Response, SandboxChannel, ShopOrder, iso_z

API = "/wp-json/wc/v3"
PRODUCT = re.compile(rf"^{API}/products/(\d+)(?:/variations/(\d+))?$")
ORDER = re.compile(rf"^{API}/orders/(\d+)$")
NOTES = re.compile(rf"^{API}/orders/(\d+)/notes$")
NO_ORDER = {"code": "woocommerce_rest_shop_order_invalid_id", "message": "Invalid ID.", "data": {"status": 404}}


def _wc_time(epoch: float) -> str:
    return iso_z(epoch).rstrip("Z")


class WooCommerceSandbox(SandboxChannel):
    kind = "woocommerce"

    def __init__(self, *args: Any, consumer_key: str = "ck_sandbox", consumer_secret: str = "cs_sandbox",
                 **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.consumer_key = consumer_key
        self.consumer_secret = consumer_secret
        self.products = {sku: {"id": 100 + i, "sku": sku, "name": sku.title(), "type": "simple",
                               "manage_stock": False, "stock_quantity": None, "parent_id": 0}
                         for i, sku in enumerate(sorted(self.catalog), start=1)}
        self._deliveries = 0
        self.notes: dict[str, list[dict[str, Any]]] = {}

    def channel(self, channel_id: str, **config: Any) -> tuple[Any, Any]:
        from orderflow.channels.config import WooCommerceConfig, WooCommerceCredentials

        return (WooCommerceConfig(channel_id=channel_id, base_url=self.url, **config),
                WooCommerceCredentials(consumer_key=self.consumer_key, consumer_secret=self.consumer_secret,
                                       webhook_secret=self.webhook_secret))

    # -- rendering ------------------------------------------------------------------------------------

    @staticmethod
    def status(order: ShopOrder) -> str:
        if order.status == "cancelled":
            return "cancelled"
        if order.status == "fulfilled":
            return "completed"
        return {"paid": "processing", "pending": "pending", "refunded": "refunded"}.get(order.payment, "pending")

    def render(self, order: ShopOrder) -> dict[str, Any]:
        first, _, last = order.name.partition(" ")
        address = {"first_name": first, "last_name": last, "company": "", "address_1": order.line1,
                   "address_2": order.line2 or "", "city": order.city, "state": order.region or "",
                   "postcode": order.postal, "country": order.country or ""}
        empty = dict.fromkeys(address, "")
        items = []
        for i, line in enumerate(order.lines, 1):
            try:
                price: Any = float(Decimal(line.price))
                subtotal = str(Decimal(line.price) * line.quantity)
            except InvalidOperation:
                price, subtotal = line.price, line.price
            product = self.products.get(line.sku or "", {})
            items.append({"id": int(order.id) * 100 + i, "name": line.sku or "Custom item",
                          "product_id": product.get("id", 0), "variation_id": 0, "quantity": line.quantity,
                          "tax_class": "", "subtotal": subtotal, "subtotal_tax": "0.00", "total": subtotal,
                          "total_tax": "0.00", "taxes": [], "meta_data": [], "sku": line.sku or "", "price": price})
        return {
            "id": int(order.id), "parent_id": 0, "number": str(order.number), "order_key": f"wc_order_{order.id}",
            "created_via": "checkout", "version": "9.4.0", "status": self.status(order), "currency": order.currency,
            "date_created": _wc_time(order.created), "date_created_gmt": _wc_time(order.created),
            "date_modified": _wc_time(order.updated), "date_modified_gmt": _wc_time(order.updated),
            "discount_total": "0.00", "shipping_total": "0.00", "total": _total(order), "customer_id": 0,
            "billing": {**(address if order.has_address else empty), "email": order.email, "phone": ""},
            "shipping": {**(address if order.has_address else empty), "phone": ""},
            "payment_method": "stripe", "payment_method_title": "Credit card",
            "date_paid_gmt": _wc_time(order.created) if order.payment == "paid" else None,
            "line_items": items, "shipping_lines": [], "meta_data": [],
        }

    # -- API ------------------------------------------------------------------------------------------

    def _authorized(self, request: Request) -> bool:
        header = request.header("authorization") or ""
        if header.startswith("Basic "):
            try:
                key, _, secret = base64.b64decode(header[6:]).decode().partition(":")
            except ValueError:
                return False
        else:
            key, secret = request.q("consumer_key", ""), request.q("consumer_secret", "")
        return key == self.consumer_key and secret == self.consumer_secret

    def route(self, request: Request) -> Response:
        if not request.path.startswith(API):
            return Response(404, {"code": "rest_no_route", "message": "No route was found matching the URL and "
                                  "request method.", "data": {"status": 404}})
        if not self._authorized(request):
            return Response(401, {"code": "woocommerce_rest_cannot_view", "message": "Sorry, you cannot list "
                                  "resources.", "data": {"status": 401}})
        if request.path == f"{API}/orders" and request.method == "GET":
            return self._orders(request)
        if request.path == f"{API}/products" and request.method == "GET":
            sku = request.q("sku")
            with self.lock:
                found = [dict(p) for p in self.products.values() if sku is None or p["sku"] == sku]
            return Response(200, found)
        if match := NOTES.match(request.path):
            return self._notes(match.group(1), request)
        if (match := ORDER.match(request.path)) and request.method in ("PUT", "POST"):
            return self._update_order(match.group(1), request)
        if (match := ORDER.match(request.path)) and request.method == "GET":
            with self.lock:
                order = self.orders.get(match.group(1))
                return Response(200, self.render(order)) if order else Response(404, NO_ORDER)
        if (match := ORDER.match(request.path)) and request.method == "DELETE":
            with self.lock:
                order = self.orders.get(match.group(1))
                body = self.render(order) if order else None
            if body is None:
                return Response(404, NO_ORDER)
            self.delete(match.group(1))
            return Response(200, body)
        match = PRODUCT.match(request.path)
        if match and request.method in ("PUT", "POST"):
            return self._update_product(int(match.group(2) or match.group(1)), request)
        return Response(404, {"code": "rest_no_route", "message": "No route was found matching the URL and "
                              "request method.", "data": {"status": 404}})

    def _orders(self, request: Request) -> Response:
        try:
            per_page = int(request.q("per_page", "10") or 10)
            page = int(request.q("page", "1") or 1)
            if not 1 <= per_page <= 100 or page < 1:
                raise ValueError
            after = parse_time(request.q("modified_after")) if request.q("modified_after") else None
            before = parse_time(request.q("modified_before")) if request.q("modified_before") else None
        except ValueError:
            return Response(400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): per_page, page",
                                  "data": {"status": 400}})
        status = request.q("status", "any")
        orderby = request.q("orderby", "date")
        descending = request.q("order", "desc") == "desc"
        with self.lock:
            matching = [o for o in self.orders.values()
                        if (after is None or o.updated > after.timestamp())
                        and (before is None or o.updated < before.timestamp())
                        and (status == "any" or self.status(o) == status)]
            key = {"date": lambda o: (o.created, int(o.id)), "id": lambda o: int(o.id),
                   "modified": lambda o: (o.updated, int(o.id))}.get(orderby or "date", lambda o: (o.created, int(o.id)))
            matching.sort(key=key, reverse=descending)
            total = len(matching)
            pages = max(1, math.ceil(total / per_page)) if total else 0
            if total and page > pages:
                return Response(400, {"code": "rest_post_invalid_page_number", "message": "The page number "
                                      "requested is larger than the number of pages available.", "data": {"status": 400}})
            body = [self.render(o) for o in matching[(page - 1) * per_page: page * per_page]]
        base = {k: v[-1] for k, v in request.query.items() if k not in ("consumer_key", "consumer_secret")}
        links = []
        if page < pages:
            links.append(f'<{self.url}{API}/orders?{urlencode({**base, "page": page + 1})}>; rel="next"')
        if page > 1:
            links.append(f'<{self.url}{API}/orders?{urlencode({**base, "page": page - 1})}>; rel="prev"')
        headers = {"X-WP-Total": str(total), "X-WP-TotalPages": str(pages)}
        if links:
            headers["Link"] = ", ".join(links)
        return Response(200, body, headers)

    def _update_product(self, product_id: int, request: Request) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            return Response(400, {"code": "rest_invalid_json", "message": "Invalid JSON body passed.",
                                  "data": {"status": 400}})
        with self.lock:
            product = next((p for p in self.products.values() if p["id"] == product_id), None)
            if product is None:
                return Response(404, {"code": "woocommerce_rest_product_invalid_id", "message": "Invalid ID.",
                                      "data": {"status": 404}})
            quantity = body.get("stock_quantity")
            if not isinstance(quantity, int) or isinstance(quantity, bool):
                return Response(400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): "
                                      "stock_quantity", "data": {"status": 400}})
            product.update(manage_stock=bool(body.get("manage_stock", product["manage_stock"])),
                           stock_quantity=quantity)
            self.record_push(product["sku"], quantity, product_id=product_id)
            return Response(200, dict(product))

    def _notes(self, order_id: str, request: Request) -> Response:
        with self.lock:
            if order_id not in self.orders:
                return Response(404, NO_ORDER)
            notes = self.notes.setdefault(order_id, [])
            if request.method == "GET":
                kind = request.q("type", "any")
                return Response(200, [n for n in notes if kind == "any"
                                      or (kind == "customer") == n["customer_note"]])
            if request.method != "POST":
                return Response(404, {"code": "rest_no_route", "data": {"status": 404}})
            try:
                body = request.json() or {}
            except ValueError:
                body = None
            if not isinstance(body, dict) or not isinstance(body.get("note"), str) or not body["note"].strip():
                return Response(400, {"code": "rest_missing_callback_param", "message": "Missing parameter(s): note",
                                      "data": {"status": 400, "params": ["note"]}})
            note = {"id": 500 + sum(len(v) for v in self.notes.values()), "author": "WooCommerce",
                    "date_created_gmt": _wc_time(self.clock()), "note": body["note"],
                    "customer_note": bool(body.get("customer_note")), "added_by_user": False}
            notes.append(note)
            self.fulfillments.append({"order_id": order_id, "number": len(self.fulfillments) + 1,
                                      "at": iso_z(self.clock()), "note": note["note"],
                                      "customer_note": note["customer_note"]})
            self.orders[order_id].touch(self.clock())
            return Response(201, note)

    def _update_order(self, order_id: str, request: Request) -> Response:
        try:
            body = request.json() or {}
        except ValueError:
            return Response(400, {"code": "rest_invalid_json", "message": "Invalid JSON body passed.",
                                  "data": {"status": 400}})
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return Response(404, NO_ORDER)
            status = body.get("status") if isinstance(body, dict) else None
            if status not in (None, "completed", "processing", "on-hold", "cancelled"):
                return Response(400, {"code": "rest_invalid_param", "message": "Invalid parameter(s): status",
                                      "data": {"status": 400, "params": {"status": "status is not one of ..."}}})
            if status == "completed" and order.status != "fulfilled":
                if order.status == "cancelled":
                    return Response(400, {"code": "woocommerce_rest_invalid_status", "message":
                                          "A cancelled order cannot be completed.", "data": {"status": 400}})
                open_units = {i: line.quantity - line.fulfilled for i, line in enumerate(order.lines)
                              if line.quantity > line.fulfilled}
                self.record_fulfillment(order_id, open_units, status="completed")
            return Response(200, self.render(order))

    def delete(self, order_id: str) -> None:
        """The seller deletes the order for good (``DELETE /orders/{id}?force=true``): it is gone from the
        API (404) and the store sends ``order.deleted`` with just its id."""
        with self.lock:
            self.orders.pop(order_id)
        self.notify(order_id, "deleted")

    # -- webhooks -------------------------------------------------------------------------------------

    def webhook(self, order_id: str, change: str) -> tuple[str, dict[str, str], bytes] | None:
        with self.lock:
            order = self.orders.get(order_id)
            body = json.dumps(self.render(order) if order else {"id": int(order_id)}).encode()
            self._deliveries += 1
            delivery = self._deliveries
        assert self.webhook_url and self.webhook_secret
        event = change if change in ("created", "deleted") else "updated"
        return self.webhook_url, {
            "Content-Type": "application/json", "X-WC-Webhook-Source": f"{self.url}/",
            "X-WC-Webhook-Topic": f"order.{event}", "X-WC-Webhook-Resource": "order",
            "X-WC-Webhook-Event": event, "X-WC-Webhook-Signature": sign(body, self.webhook_secret),
            "X-WC-Webhook-ID": "1", "X-WC-Webhook-Delivery-ID": str(delivery)}, body


def _total(order: ShopOrder) -> str:
    try:
        return f"{sum((Decimal(line.price) * line.quantity for line in order.lines), Decimal('0')):.2f}"
    except InvalidOperation:
        return "0.00"
