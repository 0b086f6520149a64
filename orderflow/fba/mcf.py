"""Amazon's Fulfillment Outbound API v2020-07-01 (Multi-Channel Fulfillment), the three operations we use,
in the field names of Amazon's own model (``fulfillmentOutbound_2020-07-01.json``):

- ``POST /fba/outbound/2020-07-01/fulfillmentOrders`` (createFulfillmentOrder): a
  ``CreateFulfillmentOrderRequest``; success is a 200 with an empty ``CreateFulfillmentOrderResponse``;
- ``GET /fba/outbound/2020-07-01/fulfillmentOrders/{sellerFulfillmentOrderId}`` (getFulfillmentOrder):
  ``{"payload": GetFulfillmentOrderResult}`` with the order, its items, and its shipments and packages;
- ``PUT /fba/outbound/2020-07-01/fulfillmentOrders/{sellerFulfillmentOrderId}/cancel``
  (cancelFulfillmentOrder): Amazon cancels an order that is still ``Received`` or ``Planning``.

Requests are strict (``extra="forbid"``: a misspelt field fails here, not at Amazon); answers ignore
fields they do not know. Money is a decimal *string* (``Money.value``), never a float.

Order statuses: the model's enum is ``Received``, ``Processing``, ``CompletePartialled`` ...; Amazon's
own example (and some live answers) spell them ``PROCESSING``; :func:`order_status` reads both.
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

BASE_PATH = "/fba/outbound/2020-07-01/fulfillmentOrders"

ShippingSpeed = Literal["Standard", "Expedited", "Priority", "ScheduledDelivery"]
FulfillmentPolicy = Literal["FillOrKill", "FillAll", "FillAllAvailable"]
FulfillmentAction = Literal["Ship", "Hold"]

#: The order statuses, normalized (see :func:`order_status`).
NEW, RECEIVED, PLANNING, PROCESSING = "NEW", "RECEIVED", "PLANNING", "PROCESSING"
COMPLETE, COMPLETE_PARTIALLED = "COMPLETE", "COMPLETE_PARTIALLED"
CANCELLED, UNFULFILLABLE, INVALID = "CANCELLED", "UNFULFILLABLE", "INVALID"
ORDER_STATUSES = (NEW, RECEIVED, PLANNING, PROCESSING, CANCELLED, COMPLETE, COMPLETE_PARTIALLED, UNFULFILLABLE,
                  INVALID)
#: Amazon will not ship these: the order needs another way (or a fix and a new fulfillment order).
DEAD = frozenset({CANCELLED, UNFULFILLABLE, INVALID})
#: Everything that will ship has shipped.
DONE = frozenset({COMPLETE, COMPLETE_PARTIALLED})
#: The seller may still cancel (Amazon's model: "can cancel ... Received ... Planning").
CANCELLABLE = frozenset({NEW, RECEIVED, PLANNING})

_BY_LETTERS = {s.replace("_", ""): s for s in ORDER_STATUSES}


def order_status(value: str | None) -> str:
    """``CompletePartialled``, ``COMPLETE_PARTIALLED``, ``completePartialled`` -> ``COMPLETE_PARTIALLED``."""
    letters = re.sub(r"[^A-Za-z]", "", value or "").upper()
    return _BY_LETTERS.get(letters, letters or "UNKNOWN")


def money_value(amount: Decimal) -> str:
    """``Decimal("12.5")`` -> ``"12.50"``: a plain decimal string, at least cents."""
    if amount.as_tuple().exponent > -2:  # type: ignore[operator]
        amount = amount.quantize(Decimal("0.01"))
    return format(amount, "f")


# ``defer_build=True`` (here and below): pydantic builds a model's validator when it is first used, not at
# import, so a function's cold start pays only for the models it validates (issue 13).
class _Request(BaseModel, defer_build=True):
    model_config = ConfigDict(extra="forbid")


class _Answer(BaseModel, defer_build=True):
    model_config = ConfigDict(extra="ignore")


# -- createFulfillmentOrder -------------------------------------------------------------------------------


class Money(_Request):
    currencyCode: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    value: Annotated[str, StringConstraints(pattern=r"^-?\d+(\.\d+)?$")] = Field(
        description="Decimal as a string (the model's `Decimal`), never a float")


class Address(_Request):
    name: Annotated[str, StringConstraints(min_length=1)]
    addressLine1: Annotated[str, StringConstraints(min_length=1)]
    addressLine2: str | None = None
    addressLine3: str | None = None
    city: str | None = None
    districtOrCounty: str | None = None
    stateOrRegion: str | None = None
    postalCode: Annotated[str, StringConstraints(min_length=1)]
    countryCode: Annotated[str, StringConstraints(pattern=r"^[A-Z]{2}$")]
    phone: str | None = None


class CreateFulfillmentOrderItem(_Request):
    sellerSku: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    sellerFulfillmentOrderItemId: Annotated[str, StringConstraints(min_length=1, max_length=50)]
    quantity: Annotated[int, Field(gt=0)]
    giftMessage: Annotated[str, StringConstraints(max_length=512)] | None = None
    displayableComment: Annotated[str, StringConstraints(max_length=250)] | None = None
    perUnitDeclaredValue: Money | None = None


class CreateFulfillmentOrderRequest(_Request):
    marketplaceId: str | None = None
    sellerFulfillmentOrderId: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    displayableOrderId: Annotated[str, StringConstraints(min_length=1, max_length=40)]
    displayableOrderDate: str = Field(description="ISO 8601 date-time")
    displayableOrderComment: Annotated[str, StringConstraints(min_length=1, max_length=750)]
    shippingSpeedCategory: ShippingSpeed
    destinationAddress: Address
    fulfillmentAction: FulfillmentAction | None = None
    fulfillmentPolicy: FulfillmentPolicy | None = None
    notificationEmails: list[Annotated[str, StringConstraints(max_length=64)]] | None = None
    items: Annotated[list[CreateFulfillmentOrderItem], Field(min_length=1)]

    def body(self) -> dict:
        """The JSON body: optional fields Amazon was not given are left out, not sent as null."""
        return self.model_dump(mode="json", exclude_none=True)


# -- answers --------------------------------------------------------------------------------------------


class ApiError(_Answer):
    code: str
    message: str
    details: str | None = None


class FulfillmentOrder(_Answer):
    sellerFulfillmentOrderId: str
    marketplaceId: str | None = None
    displayableOrderId: str | None = None
    displayableOrderDate: str | None = None
    shippingSpeedCategory: str | None = None
    fulfillmentOrderStatus: str
    statusUpdatedDate: str | None = None
    receivedDate: str | None = None

    @property
    def status(self) -> str:
        return order_status(self.fulfillmentOrderStatus)


class FulfillmentOrderItem(_Answer):
    sellerSku: str
    sellerFulfillmentOrderItemId: str
    quantity: int
    cancelledQuantity: int = 0
    unfulfillableQuantity: int = 0


class FulfillmentShipmentItem(_Answer):
    sellerSku: str
    sellerFulfillmentOrderItemId: str
    quantity: int
    packageNumber: int | None = None


class FulfillmentShipmentPackage(_Answer):
    packageNumber: int
    carrierCode: str
    trackingNumber: str | None = None
    amazonFulfillmentTrackingNumber: str | None = None
    estimatedArrivalDate: str | None = None


class FulfillmentShipment(_Answer):
    amazonShipmentId: str
    fulfillmentCenterId: str | None = None
    fulfillmentShipmentStatus: str
    shippingDate: str | None = None
    estimatedArrivalDate: str | None = None
    fulfillmentShipmentItem: list[FulfillmentShipmentItem] = []
    fulfillmentShipmentPackage: list[FulfillmentShipmentPackage] | None = None

    @property
    def status(self) -> str:
        return (self.fulfillmentShipmentStatus or "").upper()


class FulfillmentOrderDetails(_Answer):
    """``GetFulfillmentOrderResult``: the payload of getFulfillmentOrder."""

    fulfillmentOrder: FulfillmentOrder
    fulfillmentOrderItems: list[FulfillmentOrderItem] = []
    fulfillmentShipments: list[FulfillmentShipment] | None = None

    @property
    def status(self) -> str:
        return self.fulfillmentOrder.status

    def shipments(self) -> list[FulfillmentShipment]:
        return list(self.fulfillmentShipments or [])

    def packages(self) -> list[FulfillmentShipmentPackage]:
        """The packages of the shipments that left Amazon, in package-number order."""
        out = [p for s in self.shipments() if s.status == "SHIPPED" for p in (s.fulfillmentShipmentPackage or [])]
        return sorted(out, key=lambda p: p.packageNumber)

    def all_shipped(self) -> bool:
        """Every shipment Amazon planned has left (cancelled ones aside), and there is at least one."""
        live = [s for s in self.shipments() if not s.status.startswith("CANCELLED")]
        return bool(live) and all(s.status == "SHIPPED" for s in live)

    def nothing_shipped(self) -> bool:
        """Every unit was cancelled or found unfulfillable, and no shipment left."""
        if any(s.status == "SHIPPED" for s in self.shipments()):
            return False
        return all(i.cancelledQuantity + i.unfulfillableQuantity >= i.quantity for i in self.fulfillmentOrderItems)

    def shortfall(self) -> str:
        """What Amazon will not ship, per SKU (``2 x MUG unfulfillable``), or ``""``."""
        parts = []
        for item in self.fulfillmentOrderItems:
            if item.unfulfillableQuantity:
                parts.append(f"{item.unfulfillableQuantity} x {item.sellerSku} unfulfillable")
            if item.cancelledQuantity:
                parts.append(f"{item.cancelledQuantity} x {item.sellerSku} cancelled")
        return ", ".join(parts)
