"""Amazon Selling Partner API: Orders 2026-01-01 ``searchOrders`` and Listings Items 2021-08-01.

- Auth: a Login with Amazon (LWA) access token from the seller's refresh token, sent as
  ``x-amz-access-token``; cached for its lifetime minus five minutes, refreshed once on a 401/403.
- ``GET /orders/2026-01-01/orders?lastUpdatedAfter=…&marketplaceIds=…&includedData=…``, paged with
  ``paginationToken`` (the previous answer's ``pagination.nextToken``, same other parameters). Its usage
  plan is 0.0056 requests per second with a burst of 20: a token bucket (saved with the channel's
  cursor) spaces our calls, and a wait longer than the run has left ends the run at that page; the
  next scheduled run resumes from the saved token.
- Inventory: ``patchListingsItem`` replacing ``/attributes/fulfillment_availability``.
- Tracking (merchant-fulfilled orders): ``getOrder`` for the items' ``orderItemId``, then the Orders v0
  ``confirmShipment`` (``POST /orders/v0/orders/{id}/shipmentConfirmation``, not deprecated) with one
  package per shipment (``packageReferenceId``: the shipment's number in its order).
- Shapes follow Amazon's OpenAPI models (``orders_2026-01-01.json``, ``listingsItems_2021-08-01.json``).
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import quote

from orderflow.channels.base import (
    ChannelAuthError,
    ChannelError,
    ChannelOrder,
    ChannelState,
    FulfillmentNotice,
    FulfillmentResult,
    Page,
    PushResult,
    build,
    iso,
    money,
    parse_time,
    payload_id,
    text,
)
from orderflow.channels.config import AmazonConfig, AmazonCredentials
from orderflow.channels.http import ChannelHttp, Deadline, RateLimiter, RetryPolicy, read_json, server_time

ORDERS_PATH = "/orders/2026-01-01/orders"
CONFIRM_PATH = "/orders/v0/orders/{order_id}/shipmentConfirmation"
LISTINGS_PATH = "/listings/2021-08-01/items"
INCLUDED_DATA = ("RECIPIENT", "BUYER", "FULFILLMENT")
#: Amazon only answers for changes at least two minutes old (``lastUpdatedBefore`` rule).
SETTLE = timedelta(minutes=2)

STATES = {
    "PENDING_AVAILABILITY": (ChannelState.UNPAID, "fulfillment status PENDING_AVAILABILITY (pre-order)"),
    "PENDING": (ChannelState.UNPAID, "fulfillment status PENDING (payment not authorized yet)"),
    "UNSHIPPED": (ChannelState.READY, "fulfillment status UNSHIPPED"),
    "PARTIALLY_SHIPPED": (ChannelState.CLOSED, "fulfillment status PARTIALLY_SHIPPED"),
    "SHIPPED": (ChannelState.FULFILLED, "fulfillment status SHIPPED"),
    "CANCELLED": (ChannelState.CANCELLED, "cancelled on Amazon"),
    "UNFULFILLABLE": (ChannelState.CLOSED, "fulfillment status UNFULFILLABLE"),
}


def state_of(order: dict[str, Any]) -> tuple[ChannelState, str]:
    fulfillment = order.get("fulfillment") or {}
    status = str(fulfillment.get("fulfillmentStatus") or "")
    if status == "CANCELLED":
        return STATES[status]
    if str(fulfillment.get("fulfilledBy") or "") == "AMAZON":
        return ChannelState.CLOSED, "fulfilled by Amazon (FBA)"
    return STATES.get(status, (ChannelState.UNPAID, f"fulfillment status {status or 'unknown'}"))


def normalize(order: dict[str, Any], channel_id: str) -> ChannelOrder:
    external_id = text(order.get("orderId")) or payload_id(order)
    state, detail = state_of(order)

    def fields() -> dict[str, Any]:
        address = (order.get("recipient") or {}).get("deliveryAddress") or {}
        lines, currency = [], None
        for item in order.get("orderItems") or []:
            product = item.get("product") or {}
            unit = (product.get("price") or {}).get("unitPrice") or {}
            currency = currency or unit.get("currencyCode")
            lines.append({"sku": text(product.get("sellerSku")), "quantity": item.get("quantityOrdered"),
                          "unit_price": money(unit.get("amount"))})
        line2 = ", ".join(filter(None, (text(address.get("addressLine2")), text(address.get("addressLine3")))))
        shipping = {k: v for k, v in {
            "name": text(address.get("name")), "company": text(address.get("companyName")),
            "line1": text(address.get("addressLine1")), "line2": line2 or None, "city": text(address.get("city")),
            "region": text(address.get("stateOrRegion")), "postal_code": text(address.get("postalCode")),
            "country": text(address.get("countryCode")), "phone": text(address.get("phone")),
        }.items() if v is not None} or None
        buyer = order.get("buyer") or {}
        customer = {k: v for k, v in (("name", text(buyer.get("buyerName"))),
                                      ("email", text(buyer.get("buyerEmail")))) if v} or None
        return {"channel": channel_id, "external_id": external_id, "currency": currency or "USD",
                "lines": lines, "shipping_address": shipping, "customer": customer}

    return build(external_id, state, detail, parse_time(order.get("lastUpdatedTime")), order, fields)


class _TokenCache:
    """LWA access tokens per (endpoint, client, refresh token), for their lifetime minus five minutes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._tokens: dict[str, tuple[str, float]] = {}

    def get(self, key: str) -> str | None:
        with self._lock:
            entry = self._tokens.get(key)
        return entry[0] if entry and entry[1] > time.time() else None

    def put(self, key: str, token: str, expires_in: float) -> None:
        with self._lock:
            self._tokens[key] = (token, time.time() + max(0.0, expires_in - 300))

    def drop(self, key: str) -> None:
        with self._lock:
            self._tokens.pop(key, None)


TOKENS = _TokenCache()


class AmazonClient:
    def __init__(self, config: AmazonConfig, credentials: AmazonCredentials, *,
                 retry: RetryPolicy | None = None, deadline: Deadline | None = None, timeout: float = 30.0,
                 rate_state: dict[str, Any] | None = None) -> None:
        self.config = config
        self.credentials = credentials
        self.channel_id = config.channel_id
        retry = retry or RetryPolicy()
        deadline = deadline or Deadline()
        self._key = hashlib.sha256("\0".join((config.lwa_url, credentials.client_id.get_secret_value(),
                                              credentials.refresh_token.get_secret_value())).encode()).hexdigest()
        self.lwa = ChannelHttp(config.lwa_url, config.channel_id, retry=retry, deadline=deadline, timeout=timeout)
        limiter = RateLimiter(config.rate_limit.rate, config.rate_limit.burst, state=rate_state)
        self.http = ChannelHttp(config.base_url, config.channel_id, headers={"Accept": "application/json"},
                                retry=retry, deadline=deadline, timeout=timeout, limiter=limiter,
                                rate_header="x-amzn-RateLimit-Limit", refresh_auth=self._fresh_auth)
        self.listings = ChannelHttp(config.base_url, config.channel_id, headers={"Accept": "application/json"},
                                    retry=retry, deadline=deadline, timeout=timeout, refresh_auth=self._fresh_auth)

    def close(self) -> None:
        for http in (self.lwa, self.http, self.listings):
            http.close()

    # -- Login with Amazon ------------------------------------------------------------------------

    def access_token(self) -> str:
        token = TOKENS.get(self._key)
        if token:
            return token
        try:
            response = self.lwa.request("POST", "/auth/o2/token", data={
                "grant_type": "refresh_token",
                "refresh_token": self.credentials.refresh_token.get_secret_value(),
                "client_id": self.credentials.client_id.get_secret_value(),
                "client_secret": self.credentials.client_secret.get_secret_value(),
            })
        except ChannelError as err:
            if isinstance(err, ChannelAuthError) or err.details.get("status") in (400, 401):
                raise ChannelAuthError(f"{self.channel_id}: Login with Amazon refused the refresh token",
                                       channel_id=self.channel_id) from err
            raise
        body = read_json(response)
        token = body.get("access_token") if isinstance(body, dict) else None
        if not token:
            raise ChannelAuthError(f"{self.channel_id}: Login with Amazon answered without an access token")
        TOKENS.put(self._key, token, float(body.get("expires_in") or 3600))
        return token

    def _auth(self) -> dict[str, str]:
        return {"x-amz-access-token": self.access_token()}

    def _fresh_auth(self) -> dict[str, str]:
        TOKENS.drop(self._key)
        return self._auth()

    # -- orders -----------------------------------------------------------------------------------

    def fetch_page(self, updated_after: datetime, token: str | None) -> Page:
        params: dict[str, Any] = {
            "lastUpdatedAfter": iso(updated_after),
            "marketplaceIds": ",".join(self.config.marketplace_ids),
            "fulfilledBy": ",".join(self.config.fulfilled_by),
            "includedData": ",".join(INCLUDED_DATA),
            "maxResultsPerPage": self.config.page_size,
        }
        if token:
            params["paginationToken"] = token
        self.http.client.headers.update(self._auth())
        response = self.http.request("GET", ORDERS_PATH, params=params)
        body = read_json(response)
        if not isinstance(body, dict) or not isinstance(body.get("orders"), list):
            raise ChannelError(f"{self.channel_id}: searchOrders answered without `orders`")
        bound = parse_time(body.get("lastUpdatedBefore"))
        if bound is None:
            date = server_time(response)
            bound = date - SETTLE if date else None
        return Page(orders=[normalize(o, self.channel_id) for o in body["orders"] if isinstance(o, dict)],
                    next_token=(body.get("pagination") or {}).get("nextToken"), server_time=bound)

    def rate_state(self) -> dict[str, str]:
        assert self.http.limiter is not None
        return self.http.limiter.state()

    # -- inventory --------------------------------------------------------------------------------

    def push_inventory(self, sku: str, quantity: int, *, idempotency_key: str | None = None,
                       expected_quantity: int | None = None) -> PushResult:
        """Replace the listing's ``fulfillment_availability`` (merchant-fulfilled quantity)."""
        body = {"productType": self.config.product_type, "patches": [{
            "op": "replace", "path": "/attributes/fulfillment_availability",
            "value": [{"fulfillment_channel_code": "DEFAULT", "quantity": int(quantity)}]}]}
        self.listings.client.headers.update(self._auth())
        response = self.listings.request(
            "PATCH", f"{LISTINGS_PATH}/{quote(self.config.seller_id, safe='')}/{quote(sku, safe='')}",
            params={"marketplaceIds": ",".join(self.config.marketplace_ids)}, json=body)
        result = read_json(response)
        status = str(result.get("status", "")) if isinstance(result, dict) else ""
        if status not in ("ACCEPTED", "VALID"):
            issues = result.get("issues") if isinstance(result, dict) else None
            raise ChannelError(f"{self.channel_id}: patchListingsItem refused {sku} ({status or 'no status'})",
                               sku=sku, issues=issues)
        return PushResult(channel_id=self.channel_id, sku=sku, quantity=int(quantity),
                          reference=result.get("submissionId"), status=status.lower())

    # -- tracking ---------------------------------------------------------------------------------

    def push_fulfillment(self, notice: FulfillmentNotice) -> FulfillmentResult:
        """``confirmShipment``: one package (this shipment) with its carrier and tracking number."""
        if not notice.tracking_numbers:
            return FulfillmentResult("skipped", note="Amazon confirms a shipment only with a tracking number; "
                                                     "it was completed without one")
        self.listings.client.headers.update(self._auth())
        order_path = f"{ORDERS_PATH}/{quote(notice.external_id, safe='')}"
        body = read_json(self.listings.request("GET", order_path, params={"includedData": "FULFILLMENT"}))
        order = body.get("order") if isinstance(body, dict) else None
        if not isinstance(order, dict):
            raise ChannelError(f"{self.channel_id}: getOrder answered without `order`", status=502)
        status = str((order.get("fulfillment") or {}).get("fulfillmentStatus") or "")
        items: list[dict[str, Any]] = []
        wanted = dict(notice.lines)
        for item in order.get("orderItems") or []:
            sku = (item.get("product") or {}).get("sellerSku")
            take = min(int(item.get("quantityOrdered") or 0), wanted.get(sku, 0))
            if take > 0:
                items.append({"orderItemId": item["orderItemId"], "quantity": take})
                wanted[sku] -= take
        if not items:
            raise ChannelError(f"{self.channel_id}: order {notice.external_id} has none of the shipment's SKUs",
                               status=422)
        package = {"packageReferenceId": str(notice.parcel_no),
                   "carrierCode": amazon_carrier(notice.carrier), "trackingNumber": notice.tracking_numbers[0],
                   "shipDate": iso(parse_time(notice.shipped_at) or datetime.now(UTC)), "orderItems": items}
        if package["carrierCode"] == "Other" and notice.carrier:
            package["carrierName"] = notice.carrier
        self.listings.request("POST", CONFIRM_PATH.format(order_id=quote(notice.external_id, safe="")),
                              json={"marketplaceId": self.config.marketplace_ids[0], "packageDetail": package})
        note = f"Amazon showed it {status} before" if status in ("SHIPPED",) else None
        return FulfillmentResult("pushed", reference=f"package {package['packageReferenceId']}", note=note)


#: Amazon's carrier codes for the carriers our adapters name (anything else goes as Other + carrierName).
AMAZON_CARRIERS = {"ups": "UPS", "usps": "USPS", "fedex": "FedEx", "dhl": "DHL", "ontrac": "OnTrac",
                   "amazon": "Amazon Shipping", "canada_post": "Canada Post", "royal_mail": "Royal Mail"}


def amazon_carrier(carrier: str | None) -> str:
    if not carrier:
        return "Other"
    return AMAZON_CARRIERS.get(carrier.strip().lower().replace(" ", "_"), "Other")
