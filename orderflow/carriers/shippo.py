"""Shippo over plain httpx (``Authorization: ShippoToken <key>``, ``SHIPPO-API-VERSION: 2018-02-08``).

    POST /shipments     {address_from, address_to, parcels[...], async: false}   -> object_id, rates[]
    POST /transactions  {rate, label_file_type: PDF_4x6 | ZPLII, async: false}   -> status, tracking_number,
                                                                                     label_url, messages[]
    GET  /transactions/{id}   (while a transaction is QUEUED / WAITING)
    GET  /shipments/{id}      (to finish an attempt whose answer was lost: its rates again)

Shippo needs the parcel's three dimensions; weights go in ounces (``mass_unit: oz``).
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

import httpx

from orderflow.carriers.base import (
    CarrierRejected,
    CarrierUnavailable,
    LabelFormat,
    LabelRequest,
    PurchasedLabel,
    carrier_message,
    pick_rate,
)
from orderflow.carriers.http import CarrierHttp, RetryPolicy
from orderflow.errors import ValidationFailed
from orderflow.models import Address

DEFAULT_BASE_URL = "https://api.goshippo.com"
API_VERSION = "2018-02-08"
SHIPPO_FORMAT = {LabelFormat.PDF: "PDF_4x6", LabelFormat.ZPL: "ZPLII"}
PENDING = {"QUEUED", "WAITING"}


def shippo_address(address: Address) -> dict[str, Any]:
    out = {"name": address.name, "company": address.company, "street1": address.line1, "street2": address.line2,
           "city": address.city, "state": address.region, "zip": address.postal_code, "country": address.country,
           "phone": address.phone}
    return {k: v for k, v in out.items() if v is not None}


def shippo_parcel(request: LabelRequest) -> dict[str, Any]:
    parcel = request.parcel
    if not parcel.has_dimensions:
        raise ValidationFailed("Shippo needs the parcel's length_in, width_in and height_in",
                               field="parcel.length_in")
    return {"length": str(parcel.length_in), "width": str(parcel.width_in), "height": str(parcel.height_in),
            "distance_unit": "in", "weight": str(parcel.weight_oz), "mass_unit": "oz"}


def _price(rate: dict[str, Any]) -> Decimal:
    try:
        return Decimal(str(rate.get("amount")))
    except (InvalidOperation, TypeError):
        return Decimal("Infinity")


def _services(rate: dict[str, Any]) -> list[str]:
    level = rate.get("servicelevel") or {}
    return [str(level.get("token") or ""), str(level.get("name") or "")]


class ShippoClient:
    name = "shippo"

    def __init__(self, api_key: str, base_url: str = DEFAULT_BASE_URL, *, timeout: float = 15.0,
                 retry: RetryPolicy | None = None, display_name: str = "Shippo",
                 transport: httpx.BaseTransport | None = None, poll_attempts: int = 5) -> None:
        self.display_name = display_name
        self.poll_attempts = poll_attempts
        self.http = CarrierHttp(display_name, base_url, timeout=timeout, retry=retry, transport=transport,
                                label_hosts="shippo",
                                headers={"Authorization": f"ShippoToken {api_key}",
                                         "SHIPPO-API-VERSION": API_VERSION, "Accept": "application/json",
                                         "User-Agent": "orderflow"})

    def close(self) -> None:
        self.http.close()

    def buy_label(self, request: LabelRequest, *,
                  on_created: Callable[[str], None] | None = None) -> PurchasedLabel:
        parcel = shippo_parcel(request)  # before any call: a missing dimension is the caller's to fix
        shipment = self._find_shipment(request.resume_shipment_id) if request.resume_shipment_id else None
        resumed = shipment is not None
        if shipment is None:
            shipment = self.http.request("POST", "/shipments", json={
                "address_from": shippo_address(request.from_address),
                "address_to": shippo_address(request.to_address),
                "parcels": [parcel], "async": False, "metadata": request.reference[:100],
            })
            if not isinstance(shipment, dict) or not shipment.get("object_id"):
                raise CarrierRejected(f"{self.display_name} answered without a shipment object_id")
            if on_created:
                on_created(shipment["object_id"])
        rates = shipment.get("rates") or []
        earlier = self._bought_before(request.reference, rates) if resumed else None
        if earlier is not None:  # the attempt that created this shipment did buy its label
            rate, transaction = earlier
            return self._purchased(shipment, rate, transaction, request)
        if not rates and shipment.get("messages"):
            raise CarrierRejected(f"{self.display_name} offered no rate: {carrier_message(shipment)}", field="parcel")
        rate = pick_rate(rates, request.service, carrier_of=lambda r: str(r.get("provider")), service_of=_services,
                         price_of=_price, carrier_name=self.display_name)
        transaction = self.http.request("POST", "/transactions", json={
            "rate": rate["object_id"], "label_file_type": SHIPPO_FORMAT[request.format], "async": False,
            "metadata": request.reference[:100],
        })
        transaction = self._wait(transaction)
        if transaction.get("status") != "SUCCESS":
            raise CarrierRejected(f"{self.display_name} could not buy the label: {carrier_message(transaction)}",
                                  carrier=self.display_name, carrier_status=transaction.get("status"))
        return self._purchased(shipment, rate, transaction, request)

    def _purchased(self, shipment: dict[str, Any], rate: dict[str, Any], transaction: dict[str, Any],
                   request: LabelRequest) -> PurchasedLabel:
        if not transaction.get("label_url") or not transaction.get("tracking_number"):
            raise CarrierRejected(f"{self.display_name}'s transaction has no label_url or tracking_number")
        data = self.http.download(transaction["label_url"])
        if not request.format.looks_like(data):
            raise CarrierRejected(f"{self.display_name}'s label file is not a {request.format.value.upper()} file")
        level = rate.get("servicelevel") or {}
        return PurchasedLabel(
            carrier=str(rate.get("provider") or self.display_name),
            service=str(level.get("token") or level.get("name") or "unknown"),
            tracking_number=str(transaction["tracking_number"]), label=data, format=request.format,
            cost=_price(rate), currency=str(rate.get("currency") or "USD"),
            provider_shipment_id=str(shipment["object_id"]), provider_label_id=transaction.get("object_id"),
        )

    def _bought_before(self, reference: str, rates: list[dict[str, Any]]) -> tuple[dict, dict] | None:
        """A successful transaction of one of these rates (tagged with our reference), if any."""
        by_id = {r.get("object_id"): r for r in rates}
        page = self.http.request("GET", "/transactions", params={"results": 25})
        for tx in (page.get("results") if isinstance(page, dict) else None) or []:
            rate = tx.get("rate")
            rate_id = rate.get("object_id") if isinstance(rate, dict) else rate
            if tx.get("status") == "SUCCESS" and rate_id in by_id and tx.get("metadata") in (None, "", reference[:100]):
                return by_id[rate_id], tx
        return None

    def _find_shipment(self, object_id: str) -> dict[str, Any] | None:
        try:
            shipment = self.http.request("GET", f"/shipments/{object_id}")
        except CarrierRejected as err:
            if err.details.get("carrier_status") == 404:
                return None
            raise
        return shipment if isinstance(shipment, dict) and shipment.get("rates") else None

    def _wait(self, transaction: Any) -> dict[str, Any]:
        """``async: false`` usually answers SUCCESS or ERROR at once; a QUEUED one is polled a little."""
        if not isinstance(transaction, dict):
            raise CarrierRejected(f"{self.display_name} answered the label purchase with no transaction")
        attempt = 0
        while transaction.get("status") in PENDING:
            attempt += 1
            if attempt > self.poll_attempts or not transaction.get("object_id"):
                raise CarrierUnavailable(f"{self.display_name} is still making the label; try again shortly",
                                         carrier=self.display_name)
            self.http.retry.sleep(self.http.retry.backoff(attempt))
            transaction = self.http.request("GET", f"/transactions/{transaction['object_id']}")
        return transaction
