"""EasyPost over plain httpx (REST ``/v2``, HTTP Basic with the API key as user name, empty password).

    POST /v2/shipments            {"shipment": {to_address, from_address, parcel, options, reference}} -> rates[]
    POST /v2/shipments/{id}/buy   {"rate": {"id": ...}}   -> tracking_code, selected_rate, postage_label
    GET  /v2/shipments/{id}       (to finish an attempt whose answer was lost)
    GET  /v2/shipments/{id}/label?file_format=ZPL|PDF    (a label in another format)

then the label file is downloaded from ``postage_label.label_pdf_url`` / ``label_zpl_url`` /
``label_url``. The local sandbox carrier (:mod:`orderflow_local.sandbox.carrier`) speaks the same shape.
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
    pick_rate,
)
from orderflow.carriers.http import CarrierHttp, RetryPolicy
from orderflow.models import Address

DEFAULT_BASE_URL = "https://api.easypost.com"
EASYPOST_FORMAT = {LabelFormat.PDF: "PDF", LabelFormat.ZPL: "ZPL"}


def easypost_address(address: Address) -> dict[str, Any]:
    out = {"name": address.name, "company": address.company, "street1": address.line1, "street2": address.line2,
           "city": address.city, "state": address.region, "zip": address.postal_code, "country": address.country,
           "phone": address.phone}
    return {k: v for k, v in out.items() if v is not None}


def easypost_parcel(request: LabelRequest) -> dict[str, Any]:
    parcel = request.parcel
    out: dict[str, Any] = {"weight": float(parcel.weight_oz)}
    if parcel.has_dimensions:
        out.update(length=float(parcel.length_in), width=float(parcel.width_in),  # type: ignore[arg-type]
                   height=float(parcel.height_in))  # type: ignore[arg-type]
    return out


def _price(rate: dict[str, Any]) -> Decimal:
    try:
        return Decimal(str(rate.get("rate")))
    except (InvalidOperation, TypeError):
        return Decimal("Infinity")


class EasyPostClient:
    name = "easypost"

    def __init__(self, api_key: str, base_url: str = DEFAULT_BASE_URL, *, timeout: float = 15.0,
                 retry: RetryPolicy | None = None, display_name: str = "EasyPost",
                 transport: httpx.BaseTransport | None = None) -> None:
        self.display_name = display_name
        self.http = CarrierHttp(display_name, base_url, auth=httpx.BasicAuth(api_key, ""),
                                headers={"Accept": "application/json", "User-Agent": "orderflow"},
                                timeout=timeout, retry=retry, transport=transport, label_hosts="easypost")

    def close(self) -> None:
        self.http.close()

    # -- the protocol -------------------------------------------------------------------------------

    def buy_label(self, request: LabelRequest, *,
                  on_created: Callable[[str], None] | None = None) -> PurchasedLabel:
        shipment = self.find(request.resume_shipment_id) if request.resume_shipment_id else None
        if shipment is not None and self._bought(shipment):
            return self._purchased(shipment, request)  # the earlier attempt did buy it
        if shipment is None:
            shipment = self.create_shipment(request)
            if on_created:
                on_created(shipment["id"])
        rate = pick_rate(shipment.get("rates") or [], request.service, carrier_of=lambda r: str(r.get("carrier")),
                         service_of=lambda r: [str(r.get("service"))], price_of=_price,
                         carrier_name=self.display_name)
        return self._purchased(self.buy(shipment["id"], rate["id"]), request)

    # -- the calls ----------------------------------------------------------------------------------

    def create_shipment(self, request: LabelRequest) -> dict[str, Any]:
        body = {"shipment": {
            "to_address": easypost_address(request.to_address),
            "from_address": easypost_address(request.from_address),
            "parcel": easypost_parcel(request),
            "options": {"label_format": EASYPOST_FORMAT[request.format], "label_size": "4x6"},
            "reference": request.reference,
        }}
        shipment = self.http.request("POST", "/v2/shipments", json=body)
        self._check(shipment, "id")
        for message in shipment.get("messages") or []:  # rate errors of single carriers; kept out of logs
            if isinstance(message, dict) and not shipment.get("rates"):
                raise CarrierRejected(f"{self.display_name}: {message.get('carrier', 'carrier')}: "
                                      f"{message.get('message', 'no rates')}", field="parcel")
        return shipment

    def buy(self, shipment_id: str, rate_id: str) -> dict[str, Any]:
        try:
            bought = self.http.request("POST", f"/v2/shipments/{shipment_id}/buy", json={"rate": {"id": rate_id}})
        except (CarrierRejected, CarrierUnavailable) as err:
            # A buy whose answer was lost (timeout, 5xx after it went through, "already purchased" on a
            # retry) may have succeeded: the shipment itself tells.
            try:
                shipment = self.find(shipment_id)
            except Exception:  # noqa: BLE001 - the original error is the one to report
                shipment = None
            if shipment is not None and self._bought(shipment):
                return shipment
            raise err
        self._check(bought, "id")
        return bought

    def find(self, shipment_id: str) -> dict[str, Any] | None:
        try:
            shipment = self.http.request("GET", f"/v2/shipments/{shipment_id}")
        except CarrierRejected as err:
            if err.details.get("carrier_status") == 404:
                return None
            raise
        return shipment if isinstance(shipment, dict) else None

    def convert(self, shipment_id: str, fmt: LabelFormat) -> dict[str, Any]:
        return self.http.request("GET", f"/v2/shipments/{shipment_id}/label",
                                 params={"file_format": EASYPOST_FORMAT[fmt]})

    # -- mapping ------------------------------------------------------------------------------------

    @staticmethod
    def _bought(shipment: dict[str, Any]) -> bool:
        return bool(shipment.get("tracking_code") and shipment.get("postage_label"))

    def _check(self, body: Any, key: str) -> None:
        if not isinstance(body, dict) or not body.get(key):
            raise CarrierRejected(f"{self.display_name} answered without a {key}: not the EasyPost API?")

    @staticmethod
    def _label_url(label: dict[str, Any], fmt: LabelFormat) -> str | None:
        if fmt is LabelFormat.ZPL:
            if label.get("label_zpl_url"):
                return label["label_zpl_url"]
            return label.get("label_url") if "zpl" in str(label.get("label_file_type", "")).lower() else None
        if label.get("label_pdf_url"):
            return label["label_pdf_url"]
        return label.get("label_url") if "pdf" in str(label.get("label_file_type", "")).lower() else None

    def _purchased(self, shipment: dict[str, Any], request: LabelRequest) -> PurchasedLabel:
        label = shipment.get("postage_label") or {}
        url = self._label_url(label, request.format)
        if not url:  # bought in another format (or PNG): ask for this one
            shipment = self.convert(shipment["id"], request.format)
            label = shipment.get("postage_label") or {}
            url = self._label_url(label, request.format)
        if not url:
            raise CarrierRejected(f"{self.display_name} has no {request.format.value.upper()} label for shipment "
                                  f"{shipment.get('id')}")
        data = self.http.download(url)
        if not request.format.looks_like(data):
            raise CarrierRejected(f"{self.display_name}'s label file is not a {request.format.value.upper()} file")
        rate = shipment.get("selected_rate") or {}
        return PurchasedLabel(
            carrier=str(rate.get("carrier") or self.display_name), service=str(rate.get("service") or "unknown"),
            tracking_number=str(shipment["tracking_code"]), label=data, format=request.format,
            cost=_price(rate) if rate.get("rate") is not None else Decimal("0"),
            currency=str(rate.get("currency") or "USD"), provider_shipment_id=str(shipment["id"]),
            provider_label_id=label.get("id"),
        )
