"""A sandbox Amazon Selling Partner API: Login with Amazon, Orders 2026-01-01, Listings Items 2021-08-01.

- ``POST /auth/o2/token`` (LWA, ``grant_type=refresh_token``) issues access tokens that expire
  (``token_lifetime``); SP-API calls without a live ``x-amz-access-token`` get a 403 ``Unauthorized``.
- ``GET /orders/2026-01-01/orders`` (searchOrders): exactly one of ``createdAfter``/``lastUpdatedAfter``;
  only changes at least ``settle_seconds`` old are visible (Amazon: two minutes), and the answer says so in
  ``lastUpdatedBefore``; ``paginationToken`` pages through a snapshot taken at the first page, reusable for
  24 hours and only with the same other parameters; ``includedData`` decides which parts come back; a
  token bucket (``rate``, ``burst``) answers 429 ``QuotaExceeded``; every answer has
  ``x-amzn-RateLimit-Limit``.
- ``PATCH /listings/2021-08-01/items/{sellerId}/{sku}`` (patchListingsItem) records the
  ``fulfillment_availability`` quantity it is sent.
- ``POST /orders/v0/orders/{orderId}/shipmentConfirmation`` (confirmShipment) checks the request's
  required fields (Orders v0 model) and the items' quantities, answers 204, and ships those units; a
  package reference already confirmed for the order is accepted again without shipping anything twice.

Shapes follow Amazon's models (``orders_2026-01-01.json``, ``listingsItems_2021-08-01.json``); the tests
validate the answers against them.
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import uuid
from typing import Any
from urllib.parse import parse_qs, unquote

from orderflow.channels.base import parse_time
from orderflow_local.sandbox.base import Request, Response, SandboxChannel, ShopOrder, iso_z

ORDERS = "/orders/2026-01-01/orders"
LISTING = re.compile(r"^/listings/2021-08-01/items/([^/]+)/([^/]+)$")
ORDER = re.compile(r"^/orders/2026-01-01/orders/([^/]+)$")
CONFIRM = re.compile(r"^/orders/v0/orders/([^/]+)/shipmentConfirmation$")
SNAPSHOT_PARAMS = ("createdAfter", "createdBefore", "lastUpdatedAfter", "lastUpdatedBefore", "fulfillmentStatuses",
                   "marketplaceIds", "fulfilledBy")
PATCH_OPS = {"add", "replace", "merge", "delete"}


def _errors(code: str, message: str, details: str = "") -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "details": details}]}


class AmazonSandbox(SandboxChannel):
    kind = "amazon"

    def __init__(self, *args: Any, client_id: str = "amzn1.application-oa2-client.sandbox",
                 client_secret: str = "sandbox-client-secret", refresh_token: str = "Atzr|sandbox-refresh",
                 seller_id: str = "A2SANDBOXSELLER", marketplace_id: str = "ATVPDKIKX0DER",
                 rate: float = 0.0056, burst: int = 20, settle_seconds: float = 120.0,
                 token_lifetime: int = 3600, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client_id, self.client_secret, self.refresh_token = client_id, client_secret, refresh_token
        self.seller_id, self.marketplace_id = seller_id, marketplace_id
        self.rate, self.burst = rate, burst
        self.settle_seconds = settle_seconds
        self.token_lifetime = token_lifetime
        self.tokens: dict[str, float] = {}
        self.snapshots: dict[str, dict[str, Any]] = {}
        self.token_requests = 0
        self.packages: dict[tuple[str, str], dict[str, Any]] = {}
        self._bucket = float(burst)
        self._bucket_at = self.clock()

    def new_id(self) -> str:
        self._counter += 1
        n = self._counter
        return f"113-{n:07d}-{(n * 7919) % 10_000_000:07d}"

    def expire_tokens(self) -> None:
        """Every access token issued so far expires now (the client must refresh)."""
        with self.lock:
            self.tokens.clear()

    def channel(self, channel_id: str, **config: Any) -> tuple[Any, Any]:
        from orderflow.channels.config import AmazonConfig, AmazonCredentials, RateLimit

        options = {"lwa_url": self.url, "seller_id": self.seller_id, "marketplace_ids": [self.marketplace_id],
                   "rate_limit": RateLimit(rate=self.rate, burst=self.burst), **config}
        return (AmazonConfig(channel_id=channel_id, base_url=self.url, **options),
                AmazonCredentials(client_id=self.client_id, client_secret=self.client_secret,
                                  refresh_token=self.refresh_token))

    # -- rendering ------------------------------------------------------------------------------------

    @staticmethod
    def status(order: ShopOrder) -> str:
        if order.status == "cancelled":
            return "CANCELLED"
        if order.status == "fulfilled":
            return "SHIPPED"
        if order.status == "partially_fulfilled":
            return "PARTIALLY_SHIPPED"
        return "UNSHIPPED" if order.payment == "paid" else "PENDING"

    def render(self, order: ShopOrder, included: set[str]) -> dict[str, Any]:
        items = []
        for i, line in enumerate(order.lines, 1):
            digest = int(hashlib.sha256((line.sku or "").encode()).hexdigest()[:12], 16)
            product: dict[str, Any] = {"asin": f"B0{digest % 10**8:08d}",
                                       "title": line.sku or "Unlabelled item",
                                       "condition": {"conditionType": "NEW", "conditionSubtype": "NEW"},
                                       "price": {"unitPrice": {"amount": line.price, "currencyCode": order.currency}}}
            if line.sku:
                product["sellerSku"] = line.sku
            items.append({"orderItemId": f"{order.number}{i:03d}", "quantityOrdered": line.quantity,
                          "product": product})
        out: dict[str, Any] = {
            "orderId": order.id,
            "orderAliases": [{"aliasId": f"SELLER-{order.number}", "aliasType": "SELLER_ORDER_ID"}],
            "createdTime": iso_z(order.created), "lastUpdatedTime": iso_z(order.updated), "programs": [],
            "salesChannel": {"channelName": "AMAZON", "marketplaceId": self.marketplace_id,
                             "marketplaceName": "Amazon.com"},
            "orderItems": items,
        }
        if "FULFILLMENT" in included:
            out["fulfillment"] = {"fulfillmentStatus": self.status(order), "fulfilledBy": "MERCHANT",
                                  "fulfillmentServiceLevel": "STANDARD"}
        if "RECIPIENT" in included and order.has_address:
            address = {"name": order.name, "addressLine1": order.line1, "city": order.city,
                       "stateOrRegion": order.region, "postalCode": order.postal, "countryCode": order.country,
                       "addressType": "RESIDENTIAL"}
            if order.line2:
                address["addressLine2"] = order.line2
            out["recipient"] = {"deliveryAddress": {k: v for k, v in address.items() if v is not None}}
        if "BUYER" in included:
            out["buyer"] = {"buyerName": order.name,
                            "buyerEmail": f"{order.email.split('@')[0]}@marketplace.amazon.com"}
        return out

    # -- API ------------------------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        if request.path == "/auth/o2/token" and request.method == "POST":
            return self._token(request)
        if not self._authorized(request):
            return Response(403, _errors("Unauthorized", "Access to requested resource is denied.",
                                         "The access token you provided has expired."))
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if request.path == ORDERS and request.method == "GET":
            response = self._search(request)
        elif (match := ORDER.match(request.path)) and request.method == "GET":
            response = self._get_order(unquote(match.group(1)), request)
        elif (match := CONFIRM.match(request.path)) and request.method == "POST":
            response = self._confirm_shipment(unquote(match.group(1)), request)
        elif (match := LISTING.match(request.path)) and request.method == "PATCH":
            response = self._patch_listing(unquote(match.group(1)), unquote(match.group(2)), request)
        else:
            response = Response(404, _errors("NotFound", "The requested resource was not found."))
        response.headers = {**headers, **response.headers}
        return response

    def _token(self, request: Request) -> Response:
        form = {k: v[-1] for k, v in parse_qs(request.body.decode()).items()}
        with self.lock:
            self.token_requests += 1
        if form.get("grant_type") != "refresh_token":
            return Response(400, {"error": "unsupported_grant_type", "error_description": "grant_type must be "
                                  "refresh_token"})
        if form.get("client_id") != self.client_id or form.get("client_secret") != self.client_secret:
            return Response(401, {"error": "invalid_client", "error_description": "Client authentication failed"})
        if form.get("refresh_token") != self.refresh_token:
            return Response(400, {"error": "invalid_grant", "error_description": "The request has an invalid grant "
                                  "parameter : refresh_token"})
        token = f"Atza|{secrets.token_urlsafe(24)}"
        with self.lock:
            self.tokens[token] = self.clock() + self.token_lifetime
        return Response(200, {"access_token": token, "refresh_token": self.refresh_token, "token_type": "bearer",
                              "expires_in": self.token_lifetime})

    def _authorized(self, request: Request) -> bool:
        token = request.header("x-amz-access-token")
        with self.lock:
            return bool(token) and self.tokens.get(token, 0) > self.clock()

    def _take_token(self) -> bool:
        with self.lock:
            now = self.clock()
            self._bucket = min(self.burst, self._bucket + (now - self._bucket_at) * self.rate)
            self._bucket_at = now
            if self._bucket < 1:
                return False
            self._bucket -= 1
            return True

    def _search(self, request: Request) -> Response:
        limit = {"x-amzn-RateLimit-Limit": f"{self.rate:g}"}
        if not self._take_token():
            return Response(429, _errors("QuotaExceeded", "You exceeded your quota for the requested resource."),
                            limit)
        params = {k: v[-1] for k, v in request.query.items()}
        included = set(filter(None, params.get("includedData", "").split(",")))
        try:
            size = int(params.get("maxResultsPerPage", "100"))
            if not 1 <= size <= 100:
                raise ValueError
        except ValueError:
            return Response(400, _errors("InvalidInput", "maxResultsPerPage must be between 1 and 100."), limit)
        now = self.clock()
        token = params.get("paginationToken")
        fingerprint = hashlib.sha256(json.dumps({k: params.get(k) for k in SNAPSHOT_PARAMS},
                                                sort_keys=True).encode()).hexdigest()
        with self.lock:
            if token:
                snapshot = self.snapshots.get(token)
                if snapshot is None or snapshot["expires"] < now:
                    return Response(400, _errors("InvalidInput", "Invalid or expired paginationToken."), limit)
                if snapshot["fingerprint"] != fingerprint:
                    return Response(400, _errors("InvalidInput", "All parameters must match the request that "
                                                 "generated the paginationToken."), limit)
            else:
                problem, snapshot = self._new_snapshot(params, now, fingerprint)
                if problem:
                    return Response(400, _errors("InvalidInput", problem), limit)
            ids = snapshot["ids"]
            page_ids, rest = ids[:size], ids[size:]
            body: dict[str, Any] = {"orders": [self.render(self.orders[i], included) for i in page_ids]}
            if rest:
                next_token = secrets.token_urlsafe(18)
                self.snapshots[next_token] = {**snapshot, "ids": rest}
                body["pagination"] = {"nextToken": next_token}
            body[snapshot["bound_name"]] = snapshot["bound"]
        return Response(200, body, limit)

    def _new_snapshot(self, params: dict[str, str], now: float, fingerprint: str) -> tuple[str | None, dict]:
        created_after, updated_after = params.get("createdAfter"), params.get("lastUpdatedAfter")
        if bool(created_after) == bool(updated_after):
            return "Exactly one of createdAfter and lastUpdatedAfter must be provided.", {}
        field, after_text = ("created", created_after) if created_after else ("updated", updated_after)
        before_name = "createdBefore" if created_after else "lastUpdatedBefore"
        other = "lastUpdatedBefore" if created_after else "createdBefore"
        if params.get(other):
            return f"{other} cannot be combined with {'createdAfter' if created_after else 'lastUpdatedAfter'}.", {}
        after = parse_time(after_text)
        if after is None:
            return f"{'createdAfter' if created_after else 'lastUpdatedAfter'} is not an ISO 8601 date-time.", {}
        latest = now - self.settle_seconds
        before = latest
        if params.get(before_name):
            parsed = parse_time(params[before_name])
            if parsed is None or parsed.timestamp() > latest or parsed < after:
                return (f"{before_name} must be at or after the start and at least two minutes before the time "
                        "of the request."), {}
            before = parsed.timestamp()
        marketplaces = set(filter(None, params.get("marketplaceIds", "").split(",")))
        fulfilled_by = set(filter(None, params.get("fulfilledBy", "").split(",")))
        statuses = set(filter(None, params.get("fulfillmentStatuses", "").split(",")))
        chosen = [o for o in self.orders.values()
                  if after.timestamp() <= getattr(o, field) <= before
                  and (not marketplaces or self.marketplace_id in marketplaces)
                  and (not fulfilled_by or "MERCHANT" in fulfilled_by)
                  and (not statuses or self.status(o) in statuses)]
        chosen.sort(key=lambda o: (getattr(o, field), o.id))
        return None, {"ids": [o.id for o in chosen], "fingerprint": fingerprint, "expires": now + 86400,
                      "bound_name": before_name, "bound": iso_z(before)}

    def _confirm_shipment(self, order_id: str, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            body = None
        package = body.get("packageDetail") if isinstance(body, dict) else None
        if not isinstance(package, dict) or not body.get("marketplaceId"):
            return Response(400, _errors("InvalidInput", "packageDetail and marketplaceId are required."))
        missing = [k for k in ("packageReferenceId", "carrierCode", "trackingNumber", "shipDate", "orderItems")
                   if not package.get(k)]
        if missing:
            return Response(400, _errors("InvalidInput", f"Missing required field(s): {', '.join(missing)}."))
        reference = str(package["packageReferenceId"])
        if not reference.isdigit() or int(reference) < 1:
            return Response(400, _errors("InvalidInput", "packageReferenceId must be a positive number."))
        if parse_time(package["shipDate"]) is None:
            return Response(400, _errors("InvalidInput", "shipDate must be an ISO 8601 date-time."))
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return Response(404, _errors("NotFound", f"Order {order_id} was not found."))
            if order.status == "cancelled":
                return Response(400, _errors("InvalidInput", f"Order {order_id} is cancelled."))
            if (order_id, reference) in self.packages:
                return Response(204, None)
            quantities: dict[int, int] = {}
            for item in package["orderItems"]:
                index = next((i for i in range(len(order.lines))
                              if f"{order.number}{i + 1:03d}" == str(item.get("orderItemId"))), None)
                if index is None:
                    return Response(400, _errors("InvalidInput", f"orderItemId {item.get('orderItemId')} is not "
                                                                 f"in order {order_id}."))
                quantities[index] = quantities.get(index, 0) + int(item.get("quantity") or 0)
            try:
                record = self.record_fulfillment(order_id, quantities, package=package)
            except ValueError as err:
                return Response(400, _errors("InvalidInput", f"Quantity exceeds what is unshipped: {err}."))
            self.packages[(order_id, reference)] = record
        return Response(204, None)

    def _get_order(self, order_id: str, request: Request) -> Response:
        included = set(filter(None, (request.q("includedData") or "").split(",")))
        with self.lock:
            order = self.orders.get(order_id)
            if order is None:
                return Response(404, _errors("NotFound", f"Order {order_id} was not found."))
            return Response(200, {"order": self.render(order, included)}, {"x-amzn-RateLimit-Limit": "0.5"})

    def _patch_listing(self, seller_id: str, sku: str, request: Request) -> Response:
        limit = {"x-amzn-RateLimit-Limit": "5"}
        if seller_id != self.seller_id:
            return Response(403, _errors("Unauthorized", "Access to requested resource is denied."), limit)
        if not request.q("marketplaceIds"):
            return Response(400, _errors("InvalidInput", "marketplaceIds is required."), limit)
        try:
            body = request.json()
            product_type, patches = body["productType"], body["patches"]
            if not isinstance(product_type, str) or not isinstance(patches, list) or not patches:
                raise ValueError
            if any(p.get("op") not in PATCH_OPS or not isinstance(p.get("path"), str) for p in patches):
                raise ValueError
        except (ValueError, KeyError, TypeError, AttributeError):
            return Response(400, _errors("InvalidInput", "The request body must have productType and at least one "
                                         "patch with a valid op and path."), limit)
        submission = str(uuid.uuid4())
        if sku not in self.catalog:
            return Response(200, {"sku": sku, "status": "INVALID", "submissionId": submission, "issues": [{
                "code": "90000900", "message": f"The SKU {sku} has no listing in this marketplace.",
                "severity": "ERROR", "attributeNames": [], "categories": ["INVALID_ATTRIBUTE"]}]}, limit)
        for patch in patches:
            if patch["path"] == "/attributes/fulfillment_availability" and patch["op"] in ("replace", "merge", "add"):
                for value in patch.get("value") or []:
                    quantity = value.get("quantity") if isinstance(value, dict) else None
                    if isinstance(quantity, int) and not isinstance(quantity, bool) and quantity >= 0:
                        self.record_push(sku, quantity, product_type=product_type,
                                         fulfillment_channel_code=value.get("fulfillment_channel_code"),
                                         submission_id=submission)
        return Response(200, {"sku": sku, "status": "ACCEPTED", "submissionId": submission, "issues": []}, limit)
