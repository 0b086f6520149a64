"""A sandbox Amazon FBA: Multi-Channel Fulfillment (Fulfillment Outbound API v2020-07-01) on a local HTTP server.

It is a sandbox Selling Partner API (:class:`orderflow_local.sandbox.amazon.AmazonSandbox`: Login with Amazon at
``POST /auth/o2/token``, access tokens that expire, 403 ``Unauthorized`` without a live
``x-amz-access-token``) that also serves, in the shapes of Amazon's model
(``fulfillmentOutbound_2020-07-01.json``; the tests validate every answer against it):

- ``POST /fba/outbound/2020-07-01/fulfillmentOrders`` (createFulfillmentOrder): checks the request like
  Amazon (required fields, lengths, enums, a known ``sellerSku`` when ``skus`` is set, the marketplace); a
  ``sellerFulfillmentOrderId`` it has already answers 400 ``InvalidInput`` ("already exists");
- ``GET /fba/outbound/2020-07-01/fulfillmentOrders/{id}`` (getFulfillmentOrder): the order moves
  ``Received`` -> ``Planning`` -> ``Processing`` -> ``Complete`` every ``step_seconds`` after it was
  created (``step_seconds=0``: complete at once; ``hold()``: it stays where it is); from ``Processing`` it
  has a ``PENDING`` shipment, once ``Complete`` a ``SHIPPED`` one with ``packages`` packages and their
  tracking numbers (``AMZN_US`` ``TBA…``, ``UPS`` ``1Z…``, ``USPS`` ``9400…``, in turn);
- ``PUT /fba/outbound/2020-07-01/fulfillmentOrders/{id}/cancel`` (cancelFulfillmentOrder): ``Received``
  and ``Planning`` orders become ``Cancelled``; a cancelled one answers 200 again; later it is a 400.

For tests and people (methods in-process; the same under ``/_sandbox/`` over HTTP):

- ``unfulfillable_skus`` / ``invalid_skus``: an order with such a SKU turns ``Unfulfillable`` at
  ``Planning`` (``unfulfillableQuantity`` set) / ``Invalid`` at once; ``partial_skus``: Amazon ships the
  other items and reports ``CompletePartialled``; ``set_status(id, "Cancelled")``: Amazon changes an order
  by itself (``POST /_sandbox/fulfillment-orders/{id}/status {"status": ...}``); ``hold()``: orders stay
  where they are; ``reset()``: forget everything;
- ``inject(status=429, retry_after=0.05, count=2)`` / ``POST /_sandbox/faults``: the next requests fail
  (SP-API error bodies; 429 with ``Retry-After`` and ``x-amzn-RateLimit-Limit``);
- ``requests`` / ``GET /_sandbox/requests``: every API call with its JSON body;
  ``fulfillment_orders`` / ``GET /_sandbox/fulfillment-orders``: what Amazon has.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote

from orderflow_local.sandbox.amazon import AmazonSandbox
from orderflow_local.sandbox.base import Fault, Request, Response, iso_z

PREFIX = "/fba/outbound/2020-07-01/fulfillmentOrders"
ORDER = re.compile(r"^/fba/outbound/2020-07-01/fulfillmentOrders/([^/]+)$")
CANCEL = re.compile(r"^/fba/outbound/2020-07-01/fulfillmentOrders/([^/]+)/cancel$")
ADMIN_STATUS = re.compile(r"^/fulfillment-orders/([^/]+)/status$")
#: The progression, in the model's spelling.
STEPS = ("Received", "Planning", "Processing", "Complete")
STATUSES = ("New", "Received", "Planning", "Processing", "Cancelled", "Complete", "CompletePartialled",
            "Unfulfillable", "Invalid")
SPEEDS = {"Standard", "Expedited", "Priority", "ScheduledDelivery"}
POLICIES = {"FillOrKill", "FillAll", "FillAllAvailable"}
ACTIONS = {"Ship", "Hold"}
MONEY = re.compile(r"^-?\d+(\.\d+)?$")
LIMIT = {"x-amzn-RateLimit-Limit": "2.0"}
CARRIERS = ("AMZN_US", "UPS", "USPS")


def _errors(code: str, message: str, details: str = "") -> dict[str, Any]:
    return {"errors": [{"code": code, "message": message, "details": details}]}


@dataclass
class FulfillmentOrder:
    request: dict[str, Any]
    created: float
    #: A status set from outside (cancelled, or Amazon's own doing); wins over the progression.
    forced: str | None = None
    #: The progression stopped at this status (``hold``).
    held: str | None = None
    updated: float = 0.0
    packages: list[dict[str, Any]] = field(default_factory=list)
    shipment_id: str = ""

    @property
    def id(self) -> str:
        return self.request["sellerFulfillmentOrderId"]

    def skus(self) -> list[str]:
        return [item["sellerSku"] for item in self.request["items"]]


class FbaSandbox(AmazonSandbox):
    kind = "fba"

    def __init__(self, *args: Any, step_seconds: float = 2.0, packages: int = 1, skus: set[str] | None = None,
                 upper_case_statuses: bool = False, **kwargs: Any) -> None:
        kwargs.setdefault("rate", 50.0)
        kwargs.setdefault("burst", 50)
        super().__init__(*args, **kwargs)
        self.step_seconds = step_seconds
        self.packages = max(1, packages)
        #: SKUs Amazon has inventory for; None: any SKU.
        self.skus = set(skus) if skus is not None else None
        #: Spell statuses like Amazon's example (``PROCESSING``) instead of the model's enum (``Processing``).
        self.upper_case_statuses = upper_case_statuses
        self.unfulfillable_skus: set[str] = set()
        self.invalid_skus: set[str] = set()
        #: Amazon ships the rest of an order with these SKUs and reports it ``CompletePartialled``.
        self.partial_skus: set[str] = set()
        self.fulfillment_orders: dict[str, FulfillmentOrder] = {}
        self._tracking = 0
        self._held = False

    # -- in-process controls ------------------------------------------------------------------------------

    def reset(self, *, step_seconds: float | None = None) -> None:
        """Forget every fulfillment order, request, fault and setting made since it started."""
        with self.lock:
            self.fulfillment_orders.clear()
            self.requests.clear()
            self.faults.clear()
            self.unfulfillable_skus.clear()
            self.invalid_skus.clear()
            self.partial_skus.clear()
            self.skus = None
            self.upper_case_statuses = False
            self._held = False
            if step_seconds is not None:
                self.step_seconds = step_seconds

    def hold(self, held: bool = True) -> None:
        """Stop (or resume) the progression: every order stays at the status it has now."""
        with self.lock:
            self._held = held
            for order in self.fulfillment_orders.values():
                order.held = self._progress(order) if held else None

    def set_status(self, seller_fulfillment_order_id: str, status: str) -> None:
        """Amazon changes an order by itself (``Cancelled``, ``Unfulfillable``, ``Complete``...)."""
        if status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}")
        with self.lock:
            order = self.fulfillment_orders[seller_fulfillment_order_id]
            order.forced, order.updated = status, self.clock()

    def status_of(self, seller_fulfillment_order_id: str) -> str:
        with self.lock:
            return self._status(self.fulfillment_orders[seller_fulfillment_order_id])

    def calls(self, operation: str) -> list[dict[str, Any]]:
        """The API calls of one operation: ``create``, ``get`` or ``cancel``."""
        def match(r: dict[str, Any]) -> bool:
            if operation == "create":
                return r["method"] == "POST" and r["path"] == PREFIX
            if operation == "cancel":
                return r["method"] == "PUT" and r["path"].endswith("/cancel")
            return r["method"] == "GET" and r["path"].startswith(PREFIX + "/")
        return [r for r in self.api_requests("/fba/") if match(r)]

    # -- status ---------------------------------------------------------------------------------------------

    def _progress(self, order: FulfillmentOrder) -> str:
        if order.held:
            return order.held
        if self.step_seconds <= 0:
            step = len(STEPS) - 1
        else:
            step = min(len(STEPS) - 1, int((self.clock() - order.created) / self.step_seconds))
        status = STEPS[step]
        if set(order.skus()) & self.invalid_skus:
            return "Invalid"
        if step >= 1 and set(order.skus()) & self.unfulfillable_skus:
            return "Unfulfillable"
        if status == "Complete" and set(order.skus()) & self.partial_skus:
            return "Unfulfillable" if set(order.skus()) <= self.partial_skus else "CompletePartialled"
        return status

    def _status(self, order: FulfillmentOrder) -> str:
        if order.forced:
            return order.forced
        status = self._progress(order)
        if status in ("Unfulfillable", "Invalid"):  # Amazon's verdict stays, whatever arrives later
            order.forced, order.updated = status, self.clock()
        return status

    def _spell(self, status: str) -> str:
        if not self.upper_case_statuses:
            return status
        return re.sub(r"(?<=[a-z])(?=[A-Z])", "_", status).upper()

    # -- API ------------------------------------------------------------------------------------------------

    def route(self, request: Request) -> Response:
        if not request.path.startswith("/fba/"):
            return super().route(request)  # Login with Amazon, Orders, Listings
        if not self._authorized(request):
            return Response(403, _errors("Unauthorized", "Access to requested resource is denied.",
                                         "The access token you provided has expired."),
                            {"x-amzn-RequestId": str(uuid.uuid4())})
        if request.path == PREFIX and request.method == "POST":
            response = self._create(request)
        elif (match := ORDER.match(request.path)) and request.method == "GET":
            response = self._get(unquote(match.group(1)))
        elif (match := CANCEL.match(request.path)) and request.method == "PUT":
            response = self._cancel(unquote(match.group(1)))
        else:
            response = Response(404, _errors("NotFound", "The requested resource was not found."))
        response.headers = {"x-amzn-RequestId": str(uuid.uuid4()), **LIMIT, **response.headers}
        return response

    def fault_response(self, fault: Fault, request: Request) -> Response:
        headers = {"x-amzn-RequestId": str(uuid.uuid4())}
        if fault.retry_after is not None:
            headers["Retry-After"] = f"{fault.retry_after:g}"
        if fault.status == 429:
            return Response(429, _errors("QuotaExceeded", "You exceeded your quota for the requested resource."),
                            {**headers, **LIMIT})
        if fault.status == 503:
            return Response(503, _errors("ServiceUnavailable", "Service temporarily unavailable. Please try "
                                                               "again."), headers)
        return Response(fault.status, _errors("InternalFailure", "We encountered an internal error. Please try "
                                                                 "again."), headers)

    def _create(self, request: Request) -> Response:
        try:
            body = request.json()
        except ValueError:
            return Response(400, _errors("InvalidInput", "The request body is not valid JSON."))
        problem = self._invalid(body)
        if problem:
            return Response(400, _errors("InvalidInput", problem))
        with self.lock:
            order_id = body["sellerFulfillmentOrderId"]
            if order_id in self.fulfillment_orders:
                return Response(400, _errors("InvalidInput", f"Fulfillment order with SellerFulfillmentOrderId "
                                                             f"{order_id} already exists."))
            now = self.clock()
            self.fulfillment_orders[order_id] = FulfillmentOrder(request=_plain(body), created=now, updated=now,
                                                                 shipment_id=uuid.uuid4().hex[:9])
            if self._held:
                self.fulfillment_orders[order_id].held = STEPS[0]
        return Response(200, {})

    def _invalid(self, body: Any) -> str | None:
        """Amazon's validation of a CreateFulfillmentOrderRequest (the first problem found)."""
        if not isinstance(body, dict):
            return "The request body must be a JSON object."
        for name, limit in (("sellerFulfillmentOrderId", 40), ("displayableOrderId", 40),
                            ("displayableOrderComment", 750)):
            value = body.get(name)
            if not isinstance(value, str) or not value.strip() or len(value) > limit:
                return f"{name} is required and must be 1 to {limit} characters."
        if "  " in body["displayableOrderId"]:
            return "displayableOrderId cannot contain two spaces in a row."
        date = body.get("displayableOrderDate")
        if not isinstance(date, str) or not re.match(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}", date):
            return "displayableOrderDate is required and must be an ISO 8601 date-time."
        if body.get("shippingSpeedCategory") not in SPEEDS:
            return f"shippingSpeedCategory must be one of {sorted(SPEEDS)}."
        if body.get("fulfillmentPolicy", "FillOrKill") not in POLICIES:
            return f"fulfillmentPolicy must be one of {sorted(POLICIES)}."
        if body.get("fulfillmentAction", "Ship") not in ACTIONS:
            return f"fulfillmentAction must be one of {sorted(ACTIONS)}."
        if body.get("marketplaceId", self.marketplace_id) != self.marketplace_id:
            return f"Value {body.get('marketplaceId')} for parameter marketplaceId is invalid."
        address = body.get("destinationAddress")
        if not isinstance(address, dict):
            return "destinationAddress is required."
        for name in ("name", "addressLine1", "postalCode", "countryCode"):
            if not isinstance(address.get(name), str) or not address[name].strip():
                return f"destinationAddress.{name} is required."
        if not re.match(r"^[A-Z]{2}$", address["countryCode"]):
            return "destinationAddress.countryCode must be an ISO 3166-1 alpha-2 code."
        items = body.get("items")
        if not isinstance(items, list) or not items:
            return "items must have at least one item."
        seen = set()
        for item in items:
            if not isinstance(item, dict):
                return "Each item must be an object."
            item_id, sku, quantity = item.get("sellerFulfillmentOrderItemId"), item.get("sellerSku"), item.get("quantity")
            if not isinstance(item_id, str) or not item_id or len(item_id) > 50 or item_id in seen:
                return "Each item needs a unique sellerFulfillmentOrderItemId of 1 to 50 characters."
            seen.add(item_id)
            if not isinstance(sku, str) or not sku or len(sku) > 50:
                return f"The SellerSKU for Item Id: {item_id} is invalid."
            if self.skus is not None and sku not in self.skus:
                return f"The SellerSKU for Item Id: {item_id} is invalid."
            if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
                return f"The quantity for Item Id: {item_id} must be a positive integer."
            value = item.get("perUnitDeclaredValue")
            if value is not None and (not isinstance(value, dict) or not isinstance(value.get("value"), str)
                                      or not MONEY.match(value["value"])
                                      or not re.match(r"^[A-Z]{3}$", str(value.get("currencyCode", "")))):
                return f"perUnitDeclaredValue of Item Id: {item_id} must be {{currencyCode, value}} with a " \
                       "decimal string value."
        return None

    def _get(self, order_id: str) -> Response:
        with self.lock:
            order = self.fulfillment_orders.get(order_id)
            if order is None:
                return Response(404, _errors("NotFound", f"Requested order {order_id} not found."))
            return Response(200, {"payload": self.render_order(order)})

    def _cancel(self, order_id: str) -> Response:
        with self.lock:
            order = self.fulfillment_orders.get(order_id)
            if order is None:
                return Response(404, _errors("NotFound", f"Requested order {order_id} not found."))
            status = self._status(order)
            if status == "Cancelled":
                return Response(200, {})
            if status not in ("New", "Received", "Planning"):
                return Response(400, _errors("InvalidInput", f"The fulfillment order cannot be cancelled in its "
                                                             f"current status ({self._spell(status)})."))
            order.forced, order.updated = "Cancelled", self.clock()
        return Response(200, {})

    # -- rendering ------------------------------------------------------------------------------------------

    def _tracking_number(self, carrier: str) -> str:
        self._tracking += 1
        n = self._tracking
        if carrier == "UPS":
            return f"1Z999AA1{n:010d}"
        if carrier == "USPS":
            return f"9400{n:018d}"
        return f"TBA{n:012d}"

    def render_order(self, order: FulfillmentOrder) -> dict[str, Any]:
        """``GetFulfillmentOrderResult`` for an order as it is now."""
        status = self._status(order)
        request = order.request
        now = self.clock()
        step_at = order.created + (STEPS.index(status) * self.step_seconds if status in STEPS else 0)
        updated = max(order.updated, min(now, step_at))
        items = []
        for item in request["items"]:
            unfulfillable = status in ("Unfulfillable", "Invalid") or (
                status == "CompletePartialled" and item["sellerSku"] in self.partial_skus)
            out: dict[str, Any] = {
                "sellerSku": item["sellerSku"], "sellerFulfillmentOrderItemId": item["sellerFulfillmentOrderItemId"],
                "quantity": item["quantity"], "fulfillmentNetworkSku": _fnsku(item["sellerSku"]),
                "orderItemDisposition": "Sellable",
                "cancelledQuantity": item["quantity"] if status == "Cancelled" else 0,
                "unfulfillableQuantity": item["quantity"] if unfulfillable else 0,
            }
            if "perUnitDeclaredValue" in item:
                out["perUnitDeclaredValue"] = item["perUnitDeclaredValue"]
            if status in STEPS and status != "Complete":
                out["estimatedShipDate"] = iso_z(order.created + 86400)
                out["estimatedArrivalDate"] = iso_z(order.created + 4 * 86400)
            items.append(out)
        fulfillment_order = {
            "sellerFulfillmentOrderId": order.id,
            "marketplaceId": request.get("marketplaceId", self.marketplace_id),
            "displayableOrderId": request["displayableOrderId"],
            "displayableOrderDate": request["displayableOrderDate"],
            "displayableOrderComment": request["displayableOrderComment"],
            "shippingSpeedCategory": request["shippingSpeedCategory"],
            "destinationAddress": request["destinationAddress"],
            "fulfillmentAction": request.get("fulfillmentAction", "Ship"),
            "fulfillmentPolicy": request.get("fulfillmentPolicy", "FillOrKill"),
            "receivedDate": iso_z(order.created),
            "fulfillmentOrderStatus": self._spell(status),
            "statusUpdatedDate": iso_z(updated),
        }
        if request.get("notificationEmails"):
            fulfillment_order["notificationEmails"] = request["notificationEmails"]
        result: dict[str, Any] = {"fulfillmentOrder": fulfillment_order, "fulfillmentOrderItems": items,
                                  "returnItems": [], "returnAuthorizations": []}
        shipments = self._shipments(order, status)
        if shipments:
            result["fulfillmentShipments"] = shipments
        return result

    def _shipments(self, order: FulfillmentOrder, status: str) -> list[dict[str, Any]]:
        if status not in ("Processing", "Complete", "CompletePartialled"):
            return []
        shipped = status != "Processing"
        leaving = [item for item in order.request["items"]
                   if not (status == "CompletePartialled" and item["sellerSku"] in self.partial_skus)]
        if shipped and not order.packages:
            for n in range(1, self.packages + 1):
                carrier = CARRIERS[(self._tracking) % len(CARRIERS)]
                order.packages.append({"packageNumber": n, "carrierCode": carrier,
                                       "trackingNumber": self._tracking_number(carrier),
                                       "estimatedArrivalDate": iso_z(order.created + 3 * 86400)})
        items = [{"sellerSku": item["sellerSku"], "sellerFulfillmentOrderItemId": item["sellerFulfillmentOrderItemId"],
                  "quantity": item["quantity"], "packageNumber": 1 + i % self.packages}
                 for i, item in enumerate(leaving)]
        shipment: dict[str, Any] = {
            "amazonShipmentId": f"D{order.shipment_id}", "fulfillmentCenterId": "RNO1",
            "fulfillmentShipmentStatus": "SHIPPED" if shipped else "PENDING",
            "shippingDate": iso_z(order.created + 2 * self.step_seconds),
            "estimatedArrivalDate": iso_z(order.created + 3 * 86400),
            "fulfillmentShipmentItem": items,
        }
        if shipped:
            shipment["fulfillmentShipmentPackage"] = list(order.packages)
        return [shipment]

    # -- /_sandbox/ -------------------------------------------------------------------------------------------

    def summary_of(self, order: FulfillmentOrder) -> dict[str, Any]:
        return {"sellerFulfillmentOrderId": order.id, "status": self._spell(self._status(order)),
                "items": [{"sellerSku": i["sellerSku"], "quantity": i["quantity"]} for i in order.request["items"]],
                "tracking": [f"{p['carrierCode']} {p['trackingNumber']}" for p in order.packages]}

    def _admin(self, request: Request) -> Response:
        path = request.path.removeprefix("/_sandbox")
        if path == "/fulfillment-orders" and request.method == "GET":
            with self.lock:
                return Response(200, {"fulfillmentOrders": [self.summary_of(o)
                                                            for o in self.fulfillment_orders.values()]})
        if (match := ADMIN_STATUS.match(path)) and request.method == "POST":
            order_id = unquote(match.group(1))
            status = (request.json() or {}).get("status")
            if order_id not in self.fulfillment_orders or status not in STATUSES:
                return Response(404, {"error": f"no such fulfillment order, or status not one of {STATUSES}"})
            self.set_status(order_id, status)
            with self.lock:
                return Response(200, self.summary_of(self.fulfillment_orders[order_id]))
        return super()._admin(request)


def _fnsku(sku: str) -> str:
    """Amazon's fulfillment network SKU for a seller SKU (stable)."""
    return "X00" + hashlib.sha256(sku.encode()).hexdigest()[:7].upper()


def _plain(value: Any) -> Any:
    """The request as JSON would show it again (Decimal values back to strings)."""
    from decimal import Decimal

    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value
