"""A sandbox Shopify: the GraphQL Admin API (``orders``, ``productVariants``, ``locations``,
``inventorySetQuantities``, an order's ``fulfillmentOrders`` and ``fulfillmentCreate``) and REST-shaped
signed ``orders/*`` webhooks.

It speaks the documented shapes: keyset cursors (``pageInfo.endCursor``) over ``sortKey: UPDATED_AT``,
``extensions.cost.throttleStatus`` on every answer, ``THROTTLED`` errors, 429 with ``Retry-After``,
the 2026-04 rules of ``inventorySetQuantities`` (``@idempotent`` key required, ``changeFromQuantity``
required, ``IDEMPOTENCY_KEY_PARAMETER_MISMATCH`` and ``CHANGE_FROM_QUANTITY_STALE``).
"""

from __future__ import annotations

import base64
import json
import re
from decimal import Decimal, InvalidOperation
from typing import Any

from orderflow.channels.base import parse_time
from orderflow.channels.webhooks import sign
from orderflow_local.sandbox.base import Fault, Request, Response, SandboxChannel, ShopOrder, iso_z

GRAPHQL = re.compile(r"^/admin/api/(\d{4}-\d{2})/graphql\.json$")
FILTER = re.compile(r"updated_at:(>=|<=|>|<)'([^']+)'")
QUERY_COST = 752


def _epoch(text: str) -> float:
    parsed = parse_time(text)
    if parsed is None:
        raise ValueError(f"bad time {text!r}")
    return parsed.timestamp()


class ShopifySandbox(SandboxChannel):
    kind = "shopify"

    def __init__(self, *args: Any, access_token: str = "shpat_sandbox", shop_domain: str = "sandbox.myshopify.com",
                 redeliver_every: int | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_token = access_token
        self.shop_domain = shop_domain
        self.redeliver_every = redeliver_every
        self.location_id = "gid://shopify/Location/1"
        self.idempotency: dict[str, tuple[str, dict[str, Any]]] = {}
        self._groups = 0
        self._deliveries = 0

    def channel(self, channel_id: str, **config: Any) -> tuple[Any, Any]:
        from orderflow.channels.config import ShopifyConfig, ShopifyCredentials

        return (ShopifyConfig(channel_id=channel_id, base_url=self.url, **config),
                ShopifyCredentials(access_token=self.access_token, webhook_secret=self.webhook_secret))

    # -- rendering ------------------------------------------------------------------------------------

    def node(self, order: ShopOrder, lines_first: int) -> dict[str, Any]:
        lines = [self._line_node(line) for line in order.lines]
        return {
            "id": f"gid://shopify/Order/{order.id}", "legacyResourceId": order.id, "name": f"#{order.number}",
            "createdAt": iso_z(order.created), "updatedAt": iso_z(order.updated),
            "cancelledAt": iso_z(order.updated) if order.status == "cancelled" else None,
            "closedAt": iso_z(order.updated) if order.status == "fulfilled" else None,
            "displayFinancialStatus": order.payment.upper(),
            "displayFulfillmentStatus": {"fulfilled": "FULFILLED", "partially_fulfilled": "PARTIALLY_FULFILLED"}.get(
                order.status, "UNFULFILLED"),
            "currencyCode": order.currency, "email": order.email,
            "shippingAddress": {
                "name": order.name, "company": None, "address1": order.line1, "address2": order.line2,
                "city": order.city, "provinceCode": order.region, "zip": order.postal,
                "countryCodeV2": order.country, "phone": None} if order.has_address else None,
            "lineItems": {"pageInfo": {"hasNextPage": len(lines) > lines_first,
                                       "endCursor": _cursor([lines_first]) if len(lines) > lines_first else None},
                          "nodes": lines[:lines_first]},
        }

    @staticmethod
    def _line_node(line: Any) -> dict[str, Any]:
        return {"sku": line.sku, "quantity": line.quantity,
                "originalUnitPriceSet": {"shopMoney": {"amount": line.price, "currencyCode": "USD"}}}

    def rest(self, order: ShopOrder) -> dict[str, Any]:
        """The REST order JSON (the shape of webhook payloads and of Shopify's own fixtures)."""
        first, _, last = order.name.partition(" ")
        return {
            "id": int(order.id), "admin_graphql_api_id": f"gid://shopify/Order/{order.id}",
            "name": f"#{order.number}", "order_number": order.number, "email": order.email,
            "created_at": iso_z(order.created), "updated_at": iso_z(order.updated),
            "cancelled_at": iso_z(order.updated) if order.status == "cancelled" else None,
            "cancel_reason": "customer" if order.status == "cancelled" else None,
            "closed_at": None, "financial_status": order.payment,
            "fulfillment_status": {"fulfilled": "fulfilled", "partially_fulfilled": "partial"}.get(order.status),
            "currency": order.currency, "total_price": _total(order),
            "line_items": [{"id": int(order.id) * 100 + i, "sku": line.sku, "quantity": line.quantity,
                            "price": line.price, "title": line.sku or "(no sku)", "requires_shipping": True,
                            "fulfillment_status": None} for i, line in enumerate(order.lines, 1)],
            "shipping_address": {
                "first_name": first, "last_name": last, "name": order.name, "address1": order.line1,
                "address2": order.line2 or "", "city": order.city, "province_code": order.region,
                "zip": order.postal, "country_code": order.country, "phone": None, "company": None,
            } if order.has_address else None,
        }

    # -- API ------------------------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        match = GRAPHQL.match(request.path)
        if not match or request.method != "POST":
            return Response(404, {"errors": "Not Found"})
        if request.header("x-shopify-access-token") != self.access_token:
            return Response(401, {"errors": "[API] Invalid API key or access token (unrecognized login or wrong "
                                            "password)"})
        version = match.group(1)
        try:
            body = request.json()
            query, variables = body["query"], body.get("variables") or {}
        except (ValueError, KeyError, TypeError):
            return Response(400, {"errors": {"query": "Required parameter missing or invalid"}})
        if "inventorySetQuantities" in query:
            data = self._set_quantities(version, query, variables)
        elif "productVariants" in query:
            data = self._variants(variables)
        elif "locations" in query:
            data = {"data": {"locations": {"nodes": [{"id": self.location_id, "name": "Sandbox warehouse"}]}}}
        elif "fulfillmentCreate" in query:
            data = self._fulfillment_create(variables)
        elif "fulfillmentOrders" in query:
            data = self._fulfillment_orders(variables)
        elif re.search(r"\border\(id:", query):
            data = self._order_lines(variables)
        elif re.search(r"\borders\(", query):
            data = self._orders(query, variables)
        else:
            data = {"errors": [{"message": "Field doesn't exist on type 'QueryRoot'",
                                "extensions": {"code": "undefinedField"}}]}
        data["extensions"] = {"cost": {"requestedQueryCost": QUERY_COST, "actualQueryCost": 12,
                                       "throttleStatus": {"maximumAvailable": 1000.0, "currentlyAvailable": 988.0,
                                                          "restoreRate": 50.0}}}
        return Response(200, data)

    def fault_response(self, fault: Fault, request: Request) -> Response:
        if fault.kind != "throttled":
            return super().fault_response(fault, request)
        wait = 1.0 if fault.retry_after is None else float(fault.retry_after)
        restore = 100.0
        return Response(200, {
            "errors": [{"message": "Throttled", "extensions": {
                "code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}],
            "extensions": {"cost": {"requestedQueryCost": QUERY_COST, "actualQueryCost": None,
                                    "throttleStatus": {"maximumAvailable": 1000.0,
                                                       "currentlyAvailable": QUERY_COST - wait * restore,
                                                       "restoreRate": restore}}}})

    def _orders(self, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        first = variables.get("first")
        if not isinstance(first, int) or not 1 <= first <= 250:
            return {"errors": [{"message": "The first argument must be between 1 and 250",
                                "extensions": {"code": "BAD_REQUEST"}}]}
        lines_first = int(m.group(1)) if (m := re.search(r"lineItems\(first:\s*(\d+)", query)) else 10
        try:
            bounds = [(op, _epoch(value)) for op, value in FILTER.findall(variables.get("query") or "")]
            after = _uncursor(variables["after"]) if variables.get("after") else None
        except (ValueError, KeyError, TypeError):
            return {"errors": [{"message": "Invalid cursor or search query", "extensions": {"code": "BAD_REQUEST"}}]}
        with self.lock:
            matching = [o for o in self.orders.values() if all(_compare(o.updated, op, t) for op, t in bounds)]
            matching.sort(key=lambda o: (o.updated, int(o.id)))
            if after is not None:
                matching = [o for o in matching if (o.updated, int(o.id)) > (after[0], after[1])]
            page = matching[:first]
            nodes = [self.node(o, lines_first) for o in page]
            end = _cursor([page[-1].updated, int(page[-1].id)]) if page else None
        return {"data": {"orders": {"pageInfo": {"hasNextPage": len(matching) > first, "endCursor": end},
                                    "nodes": nodes}}}

    def _order_lines(self, variables: dict[str, Any]) -> dict[str, Any]:
        order_id = str(variables.get("id", "")).rsplit("/", 1)[-1]
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return {"data": {"order": None}}
            start = _uncursor(variables["after"])[0] if variables.get("after") else 0
            lines = [self._line_node(line) for line in order.lines]
        chunk = lines[start:start + 100]
        more = len(lines) > start + 100
        return {"data": {"order": {"lineItems": {
            "pageInfo": {"hasNextPage": more, "endCursor": _cursor([start + 100]) if more else None},
            "nodes": chunk}}}}

    # -- fulfillment orders ---------------------------------------------------------------------------

    @staticmethod
    def _fo_status(order: ShopOrder) -> str:
        if order.status == "cancelled":
            return "CANCELLED"
        if all(line.fulfilled >= line.quantity for line in order.lines):
            return "CLOSED"
        return "IN_PROGRESS" if any(line.fulfilled for line in order.lines) else "OPEN"

    def _fulfillment_orders(self, variables: dict[str, Any]) -> dict[str, Any]:
        order_id = str(variables.get("id", "")).rsplit("/", 1)[-1]
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return {"data": {"order": None}}
            items = [{"id": f"gid://shopify/FulfillmentOrderLineItem/{int(order.id) * 1000 + i}",
                      "remainingQuantity": line.quantity - line.fulfilled, "lineItem": {"sku": line.sku}}
                     for i, line in enumerate(order.lines)]
            return {"data": {"order": {"fulfillmentOrders": {"nodes": [{
                "id": f"gid://shopify/FulfillmentOrder/{order.id}", "status": self._fo_status(order),
                "lineItems": {"nodes": items}}]}}}}

    def _fulfillment_create(self, variables: dict[str, Any]) -> dict[str, Any]:
        def refused(field: list[str], message: str) -> dict[str, Any]:
            return {"data": {"fulfillmentCreate": {"fulfillment": None,
                                                   "userErrors": [{"field": field, "message": message}]}}}

        fulfillment = variables.get("fulfillment")
        if not isinstance(fulfillment, dict) or not fulfillment.get("lineItemsByFulfillmentOrder"):
            return refused(["fulfillment", "lineItemsByFulfillmentOrder"], "Line items by fulfillment order is required.")
        groups = fulfillment["lineItemsByFulfillmentOrder"]
        with self.lock:
            plans: list[tuple[str, dict[int, int]]] = []
            for g, group in enumerate(groups):
                order_id = str(group.get("fulfillmentOrderId", "")).rsplit("/", 1)[-1]
                order = self.orders.get(order_id)
                where = ["fulfillment", "lineItemsByFulfillmentOrder", str(g)]
                if order is None:
                    return refused([*where, "fulfillmentOrderId"], "Fulfillment order does not exist.")
                if self._fo_status(order) not in ("OPEN", "IN_PROGRESS"):
                    return refused([*where, "fulfillmentOrderId"],
                                   "Fulfillment order is not in a fulfillable state.")
                quantities: dict[int, int] = {}
                items = group.get("fulfillmentOrderLineItems") or [
                    {"id": f"gid://shopify/FulfillmentOrderLineItem/{int(order.id) * 1000 + i}",
                     "quantity": line.quantity - line.fulfilled} for i, line in enumerate(order.lines)]
                for item in items:
                    try:
                        index = int(str(item.get("id", "")).rsplit("/", 1)[-1]) - int(order.id) * 1000
                        line = order.lines[index]
                        units = int(item.get("quantity"))
                    except (ValueError, TypeError, IndexError):
                        return refused([*where, "fulfillmentOrderLineItems"], "Invalid fulfillment order line item.")
                    if units < 0 or units > line.quantity - line.fulfilled:
                        return refused([*where, "fulfillmentOrderLineItems"],
                                       "Invalid fulfillment order line item quantity requested.")
                    if units:
                        quantities[index] = quantities.get(index, 0) + units
                plans.append((order_id, quantities))
            tracking = fulfillment.get("trackingInfo") or {}
            records = [self.record_fulfillment(order_id, quantities, tracking=tracking,
                                               notify_customer=bool(fulfillment.get("notifyCustomer")),
                                               message=variables.get("message"))
                       for order_id, quantities in plans if quantities]
        if not records:
            return refused(["fulfillment"], "No line items to fulfill.")
        return {"data": {"fulfillmentCreate": {"fulfillment": {
            "id": f"gid://shopify/Fulfillment/{records[-1]['number']}", "status": "SUCCESS"}, "userErrors": []}}}

    def _variants(self, variables: dict[str, Any]) -> dict[str, Any]:
        match = re.search(r"sku:'([^']*)'", variables.get("query") or "")
        sku = match.group(1) if match else None
        skus = sorted(self.catalog)
        nodes = []
        if sku in self.catalog:
            n = skus.index(sku) + 1
            nodes.append({"id": f"gid://shopify/ProductVariant/{n}", "sku": sku,
                          "inventoryItem": {"id": f"gid://shopify/InventoryItem/{n}"}})
        return {"data": {"productVariants": {"nodes": nodes}}}

    def _set_quantities(self, version: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
        key = variables.get("idempotencyKey") if "@idempotent" in query else None
        if version >= "2026-04" and not key:
            return {"errors": [{"message": "An idempotency key is required for this mutation: use the "
                                           "@idempotent directive", "extensions": {"code": "BAD_REQUEST"}}]}
        payload = variables.get("input") or {}
        fingerprint = json.dumps(payload, sort_keys=True, default=str)
        with self.lock:
            if key and key in self.idempotency:
                seen, result = self.idempotency[key]
                if seen == fingerprint:
                    return {"data": {"inventorySetQuantities": result}}
                return {"data": {"inventorySetQuantities": {"inventoryAdjustmentGroup": None, "userErrors": [{
                    "code": "IDEMPOTENCY_KEY_PARAMETER_MISMATCH", "field": None,
                    "message": "The same idempotency key was used with different parameters."}]}}}
            skus = sorted(self.catalog)
            errors, changes = [], []
            for i, q in enumerate(payload.get("quantities") or []):
                item = str(q.get("inventoryItemId", ""))
                try:
                    sku = skus[int(item.rsplit("/", 1)[-1]) - 1]
                except (ValueError, IndexError):
                    errors.append({"code": "INVALID_INVENTORY_ITEM", "field": ["input", "quantities", str(i)],
                                   "message": "The specified inventory item could not be found."})
                    continue
                if version >= "2026-04" and "changeFromQuantity" not in q:
                    errors.append({"code": None, "field": ["input", "quantities", str(i), "changeFromQuantity"],
                                   "message": "changeFromQuantity is required (pass null to skip the check)."})
                    continue
                expected = q.get("changeFromQuantity")
                if expected is not None and expected != self.levels.get(sku, 0):
                    errors.append({"code": "CHANGE_FROM_QUANTITY_STALE", "field": ["input", "quantities", str(i)],
                                   "message": "The quantity has changed since it was last read."})
                    continue
                try:
                    quantity = int(Decimal(str(q.get("quantity"))))
                except (InvalidOperation, ValueError):
                    errors.append({"code": "INVALID_QUANTITY", "field": ["input", "quantities", str(i), "quantity"],
                                   "message": "The quantity is not a number."})
                    continue
                changes.append((sku, quantity, q.get("locationId")))
            if errors:
                result: dict[str, Any] = {"inventoryAdjustmentGroup": None, "userErrors": errors}
            else:
                for sku, quantity, location in changes:
                    self.record_push(sku, quantity, location=location, idempotency_key=key,
                                     name=payload.get("name"), reason=payload.get("reason"))
                self._groups += 1
                result = {"inventoryAdjustmentGroup": {"id": f"gid://shopify/InventoryAdjustmentGroup/{self._groups}",
                                                       "reason": payload.get("reason")}, "userErrors": []}
                if key:
                    self.idempotency[key] = (fingerprint, result)
        return {"data": {"inventorySetQuantities": result}}

    # -- webhooks -------------------------------------------------------------------------------------

    TOPICS = {"created": "orders/create", "paid": "orders/paid", "cancelled": "orders/cancelled",
              "fulfilled": "orders/fulfilled"}

    def webhook(self, order_id: str, change: str) -> tuple[str, dict[str, str], bytes] | None:
        with self.lock:
            body = json.dumps(self.rest(self.orders[order_id])).encode()
            self._deliveries += 1
            again = bool(self.redeliver_every) and self._deliveries % self.redeliver_every == 0
        assert self.webhook_url and self.webhook_secret
        event = self.event_id()
        headers = {"Content-Type": "application/json", "X-Shopify-Topic": self.TOPICS[change],
                   "X-Shopify-Hmac-Sha256": sign(body, self.webhook_secret),
                   "X-Shopify-Shop-Domain": self.shop_domain, "X-Shopify-API-Version": "2026-04",
                   "X-Shopify-Webhook-Id": self.event_id(), "X-Shopify-Event-Id": event,
                   "X-Shopify-Triggered-At": iso_z(self.clock())}
        if again:  # Shopify redelivers with the same event id; the receiver must not import it twice
            self._outbox.put((self.webhook_url, {**headers, "X-Shopify-Webhook-Id": self.event_id()}, body))
        return self.webhook_url, headers, body


def _total(order: ShopOrder) -> str:
    try:
        return str(sum((Decimal(line.price) * line.quantity for line in order.lines), Decimal("0")))
    except InvalidOperation:
        return "0.00"


def _compare(value: float, op: str, bound: float) -> bool:
    return {">=": value >= bound, ">": value > bound, "<=": value <= bound, "<": value < bound}[op]


def _cursor(parts: list[Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(parts).encode()).decode()


def _uncursor(cursor: str) -> list[Any]:
    parts = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    if not isinstance(parts, list) or not parts:
        raise ValueError("bad cursor")
    return parts
