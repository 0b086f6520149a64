"""Shopify: the GraphQL Admin API for polling and inventory, the REST-shaped JSON of its webhooks.

- Polling: ``orders(first, after, sortKey: UPDATED_AT, query: "updated_at:>='…'")`` with cursor paging
  (``pageInfo.endCursor``); Shopify's cursors are keyset cursors, so an order changed while we page
  moves to the end and is read again rather than skipped.
- Throttling: HTTP 429 with ``Retry-After``, or a 200 whose ``errors`` say ``THROTTLED``; we wait for
  the bucket to refill (``extensions.cost.throttleStatus``) and retry.
- Inventory: ``inventorySetQuantities`` with ``name: "available"``, an ``@idempotent(key:)`` directive
  (required from 2026-04) and ``changeFromQuantity`` given explicitly (``null`` opts out of the
  compare-and-swap; required from 2026-04).
- Webhooks (``orders/create`` …) carry the REST order JSON: :func:`normalize_rest`.
- Tracking: the order's ``fulfillmentOrders`` (their line items' ``remainingQuantity``), then
  ``fulfillmentCreate`` for this shipment's lines with ``trackingInfo``; what is no longer remaining
  is not fulfilled again, so a repeat is harmless.
"""

from __future__ import annotations

import uuid
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
    RateLimited,
    build,
    iso,
    money,
    parse_time,
    payload_id,
    text,
)
from orderflow.channels.config import ShopifyConfig, ShopifyCredentials
from orderflow.channels.http import ChannelHttp, Deadline, RetryPolicy, read_json, server_time

LINES_PER_ORDER = 30  # keeps a page of 25 orders under the 1000-point query cost of a standard shop

ORDERS_QUERY = """
query OrdersUpdatedSince($first: Int!, $after: String, $query: String!) {
  orders(first: $first, after: $after, sortKey: UPDATED_AT, query: $query) {
    pageInfo { hasNextPage endCursor }
    nodes {
      id legacyResourceId name createdAt updatedAt cancelledAt closedAt
      displayFinancialStatus displayFulfillmentStatus currencyCode email
      shippingAddress { name company address1 address2 city provinceCode zip countryCodeV2 phone }
      lineItems(first: LINES) {
        pageInfo { hasNextPage endCursor }
        nodes { sku quantity originalUnitPriceSet { shopMoney { amount currencyCode } } }
      }
    }
  }
}
""".replace("LINES", str(LINES_PER_ORDER))

ORDER_LINES_QUERY = """
query OrderLines($id: ID!, $after: String) {
  order(id: $id) {
    lineItems(first: 100, after: $after) {
      pageInfo { hasNextPage endCursor }
      nodes { sku quantity originalUnitPriceSet { shopMoney { amount currencyCode } } }
    }
  }
}
"""

VARIANT_BY_SKU_QUERY = """
query VariantBySku($query: String!) {
  productVariants(first: 5, query: $query) { nodes { id sku inventoryItem { id } } }
}
"""

FIRST_LOCATION_QUERY = """
query FirstLocation { locations(first: 1) { nodes { id name } } }
"""

SET_QUANTITIES_MUTATION = """
mutation SetAvailable($input: InventorySetQuantitiesInput!, $idempotencyKey: String!) {
  inventorySetQuantities(input: $input) @idempotent(key: $idempotencyKey) {
    inventoryAdjustmentGroup { id reason }
    userErrors { code field message }
  }
}
"""

FULFILLMENT_ORDERS_QUERY = """
query FulfillmentOrders($id: ID!) {
  order(id: $id) {
    fulfillmentOrders(first: 10) {
      nodes { id status lineItems(first: 100) { nodes { id remainingQuantity lineItem { sku } } } }
    }
  }
}
"""

FULFILLMENT_CREATE_MUTATION = """
mutation FulfillmentCreate($fulfillment: FulfillmentInput!, $message: String) {
  fulfillmentCreate(fulfillment: $fulfillment, message: $message) {
    fulfillment { id status }
    userErrors { field message }
  }
}
"""

#: Shopify builds the tracking URL when the company is named as in its carrier list.
SHOPIFY_CARRIERS = {"ups": "UPS", "usps": "USPS", "fedex": "FedEx", "dhl": "DHL Express", "dhlexpress": "DHL Express",
                    "dhl_express": "DHL Express", "canada_post": "Canada Post", "canadapost": "Canada Post",
                    "royal_mail": "Royal Mail", "royalmail": "Royal Mail", "ontrac": "OnTrac", "amazon": "Amazon Logistics"}
OPEN_FULFILLMENT_ORDER = {"OPEN", "IN_PROGRESS", "SCHEDULED", "INCOMPLETE"}

#: Before 2026-01: no @idempotent directive, compareQuantity instead of changeFromQuantity.
SET_QUANTITIES_MUTATION_LEGACY = """
mutation SetAvailable($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) {
    inventoryAdjustmentGroup { id reason }
    userErrors { code field message }
  }
}
"""

# -- status mapping (GraphQL enums; the REST/webhook values are the same words in lower case) ----------

READY_FINANCIAL = {"PAID", "AUTHORIZED", "PARTIALLY_REFUNDED"}
UNPAID_FINANCIAL = {"PENDING", "PARTIALLY_PAID", "EXPIRED"}
CANCELLED_FINANCIAL = {"REFUNDED", "VOIDED"}
FULFILLED = {"FULFILLED"}
CLOSED_FULFILLMENT = {"PARTIALLY_FULFILLED", "RESTOCKED", "PARTIAL"}


def state_of(financial: str | None, fulfillment: str | None, cancelled_at: Any) -> tuple[ChannelState, str]:
    fin = (financial or "").upper()
    ful = (fulfillment or "").upper()
    if cancelled_at:
        return ChannelState.CANCELLED, "cancelled on Shopify"
    if ful in FULFILLED:
        return ChannelState.FULFILLED, f"fulfillment status {ful}"
    if ful in CLOSED_FULFILLMENT:
        return ChannelState.CLOSED, f"fulfillment status {ful}"
    if fin in CANCELLED_FINANCIAL:
        return ChannelState.CANCELLED, f"financial status {fin}"
    if fin in READY_FINANCIAL:
        return ChannelState.READY, f"financial status {fin}"
    return ChannelState.UNPAID, f"financial status {fin or 'unknown'}"


def _address(name: Any, company: Any, line1: Any, line2: Any, city: Any, region: Any, postal: Any, country: Any,
             phone: Any) -> dict[str, Any] | None:
    fields = {"name": text(name), "company": text(company), "line1": text(line1), "line2": text(line2),
              "city": text(city), "region": text(region), "postal_code": text(postal), "country": text(country),
              "phone": text(phone)}
    if not any(fields.values()):
        return None
    return {k: v for k, v in fields.items() if v is not None}


def normalize_graphql(node: dict[str, Any], channel_id: str) -> ChannelOrder:
    """An ``Order`` node of the GraphQL Admin API."""
    external_id = text(node.get("legacyResourceId")) or text(str(node.get("id", "")).rsplit("/", 1)[-1]) \
        or payload_id(node)
    state, detail = state_of(node.get("displayFinancialStatus"), node.get("displayFulfillmentStatus"),
                             node.get("cancelledAt"))

    def fields() -> dict[str, Any]:
        ship = node.get("shippingAddress") or {}
        lines = []
        for item in (node.get("lineItems") or {}).get("nodes") or []:
            price = ((item.get("originalUnitPriceSet") or {}).get("shopMoney") or {}).get("amount")
            lines.append({"sku": text(item.get("sku")), "quantity": item.get("quantity"), "unit_price": money(price)})
        return {
            "channel": channel_id, "external_id": external_id,
            "currency": node.get("currencyCode") or "USD",
            "lines": lines,
            "shipping_address": _address(ship.get("name"), ship.get("company"), ship.get("address1"),
                                         ship.get("address2"), ship.get("city"), ship.get("provinceCode"),
                                         ship.get("zip"), ship.get("countryCodeV2"), ship.get("phone")),
            "customer": _customer(ship.get("name"), node.get("email")),
        }

    return build(external_id, state, detail, parse_time(node.get("updatedAt")), node, fields)


def normalize_rest(order: dict[str, Any], channel_id: str) -> ChannelOrder:
    """The REST order JSON (webhook payloads, ``orders/create`` and friends)."""
    external_id = text(order.get("id")) or payload_id(order)
    state, detail = state_of(order.get("financial_status"), order.get("fulfillment_status"), order.get("cancelled_at"))

    def fields() -> dict[str, Any]:
        ship = order.get("shipping_address") or {}
        name = text(ship.get("name")) or " ".join(filter(None, (text(ship.get("first_name")),
                                                              text(ship.get("last_name"))))) or None
        return {
            "channel": channel_id, "external_id": external_id,
            "currency": order.get("currency") or "USD",
            "lines": [{"sku": text(item.get("sku")), "quantity": item.get("quantity"),
                       "unit_price": money(item.get("price"))} for item in order.get("line_items") or []],
            "shipping_address": _address(name, ship.get("company"), ship.get("address1"), ship.get("address2"),
                                         ship.get("city"), ship.get("province_code"), ship.get("zip"),
                                         ship.get("country_code"), ship.get("phone")),
            "customer": _customer(name, order.get("email")),
        }

    return build(external_id, state, detail, parse_time(order.get("updated_at")), order, fields)


def _customer(name: Any, email: Any) -> dict[str, Any] | None:
    out = {k: v for k, v in (("name", text(name)), ("email", text(email))) if v}
    return out or None


class ShopifyClient:
    def __init__(self, config: ShopifyConfig, credentials: ShopifyCredentials, *,
                 retry: RetryPolicy | None = None, deadline: Deadline | None = None, timeout: float = 30.0) -> None:
        self.config = config
        self.channel_id = config.channel_id
        self.path = f"/admin/api/{config.api_version}/graphql.json"
        self.http = ChannelHttp(
            config.base_url, config.channel_id,
            headers={"X-Shopify-Access-Token": credentials.access_token.get_secret_value(),
                     "Content-Type": "application/json", "Accept": "application/json"},
            retry=retry or RetryPolicy(), deadline=deadline or Deadline(), timeout=timeout)
        self._location_id = config.location_id

    def close(self) -> None:
        self.http.close()

    # -- GraphQL ----------------------------------------------------------------------------------

    def graphql(self, query: str, variables: dict[str, Any] | None = None) -> tuple[dict[str, Any], Any]:
        attempt = 0
        while True:
            attempt += 1
            response = self.http.request("POST", self.path, json={"query": query, "variables": variables or {}})
            body = read_json(response)
            errors = body.get("errors") if isinstance(body, dict) else None
            if not errors:
                if not isinstance(body, dict) or not isinstance(body.get("data"), dict):
                    raise ChannelError(f"{self.channel_id}: GraphQL answer without data")
                return body["data"], response
            codes = {str((e.get("extensions") or {}).get("code", "")) for e in errors if isinstance(e, dict)}
            if "THROTTLED" in codes and attempt < self.http.retry.max_attempts:
                self.http.pause(self._refill_wait(body, attempt), "THROTTLED", rate_limited=True)
                continue
            messages = "; ".join(str(e.get("message", e)) if isinstance(e, dict) else str(e) for e in errors)
            if "THROTTLED" in codes:
                raise RateLimited(f"{self.channel_id} kept throttling: {messages}",
                                  retry_after=self.http.retry.max_delay, channel_id=self.channel_id)
            raise ChannelError(f"{self.channel_id}: GraphQL errors: {messages[:300]}", channel_id=self.channel_id,
                               status=400)

    def _refill_wait(self, body: dict[str, Any], attempt: int) -> float:
        """Seconds until the cost bucket holds the query's cost again (else our own backoff)."""
        cost = ((body.get("extensions") or {}).get("cost") or {})
        status = cost.get("throttleStatus") or {}
        try:
            needed = float(cost["requestedQueryCost"]) - float(status["currentlyAvailable"])
            return max(0.0, needed / float(status["restoreRate"]))
        except (KeyError, TypeError, ValueError, ZeroDivisionError):
            return self.http.retry.backoff(attempt)

    # -- orders -----------------------------------------------------------------------------------

    def fetch_page(self, updated_after: datetime, token: str | None) -> Page:
        data, response = self.graphql(ORDERS_QUERY, {
            "first": self.config.page_size, "after": token, "query": f"updated_at:>='{iso(updated_after)}'"})
        connection = data.get("orders") or {}
        info = connection.get("pageInfo") or {}
        orders = []
        for node in connection.get("nodes") or []:
            lines = node.get("lineItems") or {}
            if (lines.get("pageInfo") or {}).get("hasNextPage"):
                node = {**node, "lineItems": {"nodes": self._all_lines(node, lines)}}
            orders.append(normalize_graphql(node, self.channel_id))
        return Page(orders=orders, next_token=info.get("endCursor") if info.get("hasNextPage") else None,
                    server_time=server_time(response))

    def _all_lines(self, node: dict[str, Any], first_page: dict[str, Any]) -> list[dict[str, Any]]:
        lines = list(first_page.get("nodes") or [])
        cursor = (first_page.get("pageInfo") or {}).get("endCursor")
        while cursor:
            data, _ = self.graphql(ORDER_LINES_QUERY, {"id": node.get("id"), "after": cursor})
            page = ((data.get("order") or {}).get("lineItems") or {})
            lines.extend(page.get("nodes") or [])
            info = page.get("pageInfo") or {}
            cursor = info.get("endCursor") if info.get("hasNextPage") else None
        return lines

    # -- inventory --------------------------------------------------------------------------------

    def _location(self) -> str:
        if not self._location_id:
            data, _ = self.graphql(FIRST_LOCATION_QUERY)
            nodes = (data.get("locations") or {}).get("nodes") or []
            if not nodes:
                raise ChannelError(f"{self.channel_id}: the shop has no location to set quantities at")
            self._location_id = nodes[0]["id"]
        return self._location_id

    def inventory_item(self, sku: str) -> str:
        data, _ = self.graphql(VARIANT_BY_SKU_QUERY, {"query": f"sku:'{sku}'"})
        for variant in (data.get("productVariants") or {}).get("nodes") or []:
            if variant.get("sku") == sku and (variant.get("inventoryItem") or {}).get("id"):
                return variant["inventoryItem"]["id"]
        raise ChannelError(f"{self.channel_id}: no product variant with SKU {sku}", sku=sku)

    def push_inventory(self, sku: str, quantity: int, *, idempotency_key: str | None = None,
                       expected_quantity: int | None = None) -> PushResult:
        """Set ``available`` at the configured location. ``expected_quantity`` turns on Shopify's
        compare-and-swap (``CHANGE_FROM_QUANTITY_STALE`` if it moved); None opts out explicitly."""
        item = self.inventory_item(sku)
        quantity_input: dict[str, Any] = {"inventoryItemId": item, "locationId": self._location(),
                                          "quantity": int(quantity)}
        modern = self.config.api_version >= "2026-01"
        payload: dict[str, Any] = {"name": "available", "reason": "correction",
                                   "referenceDocumentUri": f"orderflow://stock/{sku}"}
        if modern:
            quantity_input["changeFromQuantity"] = expected_quantity  # sent even when None: required
            variables = {"input": {**payload, "quantities": [quantity_input]},
                         "idempotencyKey": idempotency_key or str(uuid.uuid4())}
            data, _ = self.graphql(SET_QUANTITIES_MUTATION, variables)
        else:
            if expected_quantity is None:
                payload["ignoreCompareQuantity"] = True
            else:
                quantity_input["compareQuantity"] = expected_quantity
            data, _ = self.graphql(SET_QUANTITIES_MUTATION_LEGACY, {"input": {**payload, "quantities": [quantity_input]}})
        result = data.get("inventorySetQuantities") or {}
        errors = result.get("userErrors") or []
        if errors:
            codes = ", ".join(str(e.get("code") or e.get("message")) for e in errors)
            raise ChannelError(f"{self.channel_id}: inventorySetQuantities refused {sku}: {codes}", sku=sku,
                               user_errors=errors)
        group = (result.get("inventoryAdjustmentGroup") or {}).get("id")
        return PushResult(channel_id=self.channel_id, sku=sku, quantity=int(quantity), reference=group or item)

    # -- tracking ---------------------------------------------------------------------------------

    def push_fulfillment(self, notice: FulfillmentNotice) -> FulfillmentResult:
        """``fulfillmentCreate`` for the shipment's lines still open on the order's fulfillment orders."""
        order_gid = f"gid://shopify/Order/{notice.external_id}"
        data, _ = self.graphql(FULFILLMENT_ORDERS_QUERY, {"id": order_gid})
        order = data.get("order")
        if not order:
            raise ChannelError(f"{self.channel_id}: order {notice.external_id} not found", status=404)
        wanted = dict(notice.lines)
        by_order: list[dict[str, Any]] = []
        for fo in (order.get("fulfillmentOrders") or {}).get("nodes") or []:
            if str(fo.get("status", "")).upper() not in OPEN_FULFILLMENT_ORDER:
                continue
            items = []
            for item in (fo.get("lineItems") or {}).get("nodes") or []:
                sku = ((item.get("lineItem") or {}).get("sku"))
                take = min(int(item.get("remainingQuantity") or 0), wanted.get(sku, 0))
                if take > 0:
                    items.append({"id": item["id"], "quantity": take})
                    wanted[sku] -= take
            if items:
                by_order.append({"fulfillmentOrderId": fo["id"], "fulfillmentOrderLineItems": items})
        if not by_order:
            return FulfillmentResult("on_channel", note="nothing of it is open on Shopify: fulfilled there already")
        fulfillment: dict[str, Any] = {"lineItemsByFulfillmentOrder": by_order, "notifyCustomer": True}
        if notice.tracking_numbers:
            tracking: dict[str, Any] = {"company": shopify_carrier(notice.carrier)}
            if len(notice.tracking_numbers) == 1:
                tracking["number"] = notice.tracking_numbers[0]
            else:
                tracking["numbers"] = notice.tracking_numbers
            fulfillment["trackingInfo"] = tracking
        data, _ = self.graphql(FULFILLMENT_CREATE_MUTATION, {"fulfillment": fulfillment,
                                                             "message": f"orderflow shipment {notice.shipment_id}"})
        result = data.get("fulfillmentCreate") or {}
        errors = result.get("userErrors") or []
        if errors:
            messages = "; ".join(str(e.get("message")) for e in errors)
            raise ChannelError(f"{self.channel_id}: fulfillmentCreate refused order {notice.external_id}: {messages}",
                               user_errors=errors)
        short = {sku: n for sku, n in wanted.items() if n > 0}
        note = f"not open on Shopify: {short}" if short else None
        return FulfillmentResult("pushed", reference=(result.get("fulfillment") or {}).get("id"), note=note)


def shopify_carrier(carrier: str | None) -> str:
    if not carrier:
        return "Other"
    return SHOPIFY_CARRIERS.get(carrier.strip().lower().replace(" ", "_"), carrier.strip())
