"""What every carrier adapter shares: the request, the purchased label, the provider protocol, errors."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator

from orderflow.errors import Conflict, TransientError, ValidationFailed
from orderflow.models import Address, Model

#: A 4x6 inch thermal label in PDF points (72 per inch).
LABEL_WIDTH_PT, LABEL_HEIGHT_PT = 288, 432


class LabelFormat(StrEnum):
    PDF = "pdf"
    ZPL = "zpl"

    @property
    def content_type(self) -> str:
        return "application/pdf" if self is LabelFormat.PDF else "application/zpl"

    def looks_like(self, data: bytes) -> bool:
        """A cheap check that a downloaded file is what was asked for (not an HTML error page)."""
        if self is LabelFormat.PDF:
            return data.startswith(b"%PDF-")
        head = data.lstrip()[:64]
        return head.startswith(b"^XA") or head.startswith(b"${^XA") or b"^XA" in head


Inches = Annotated[Decimal, Field(gt=0, le=120, max_digits=6, decimal_places=2)]


class Parcel(Model):
    """The box: weight in ounces (required), dimensions in inches (all three or none)."""

    weight_oz: Annotated[Decimal, Field(gt=0, le=2400, max_digits=7, decimal_places=2,
                                        description="Weight in ounces (16 oz = 1 lb), at most 150 lb")]
    length_in: Inches | None = None
    width_in: Inches | None = None
    height_in: Inches | None = None

    @model_validator(mode="after")
    def _all_dimensions_or_none(self) -> Parcel:
        given = [d is not None for d in (self.length_in, self.width_in, self.height_in)]
        if any(given) and not all(given):
            raise ValueError("give length_in, width_in and height_in together, or none of them")
        return self

    @property
    def has_dimensions(self) -> bool:
        return self.length_in is not None


ServiceName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


class LabelRequest(BaseModel):
    """One label to buy. ``reference`` (our shipment id) goes to the carrier with the shipment."""

    model_config = ConfigDict(frozen=True)

    reference: str
    from_address: Address
    to_address: Address
    parcel: Parcel
    service: ServiceName | None = None
    format: LabelFormat = LabelFormat.PDF
    #: The carrier's shipment of an earlier, unfinished attempt: finish that one before creating another.
    resume_shipment_id: str | None = None


class PurchasedLabel(BaseModel):
    """What a provider hands back once the label is paid for."""

    carrier: str
    service: str
    tracking_number: str
    label: bytes = Field(repr=False)
    format: LabelFormat
    cost: Decimal
    currency: str = "USD"
    provider_shipment_id: str
    provider_label_id: str | None = None


class LabelProvider(Protocol):
    """A carrier account we can buy labels through (EasyPost, Shippo, the local sandbox)."""

    name: str

    def buy_label(self, request: LabelRequest, *,
                  on_created: Callable[[str], None] | None = None) -> PurchasedLabel:
        """Buy one label. ``on_created`` is told the carrier's shipment id before the purchase, so a
        caller can remember it and finish the same shipment if this attempt dies half-way."""
        ...


# -- errors -------------------------------------------------------------------------------------


class CarrierRejected(ValidationFailed):
    """The carrier refused the request (a 4xx): its message says why. Retrying the same request will not help."""

    code = "carrier_rejected"


class CarrierAuthFailed(CarrierRejected):
    """The carrier refused the account's API key (401/403): fix the carrier account."""

    code = "carrier_auth_failed"


class CarrierUnavailable(TransientError):
    """The carrier did not answer, or answered 429/5xx through every retry: try again later."""

    code = "carrier_unavailable"


class LabelInProgress(Conflict):
    """Another request is buying this shipment's label right now."""

    code = "label_in_progress"


def carrier_message(body: Any, limit: int = 500) -> str:
    """The human part of a carrier's error body, whatever its shape (EasyPost, Shippo, plain text)."""
    parts: list[str] = []
    if isinstance(body, dict):
        err = body.get("error")
        if isinstance(err, dict):  # EasyPost: {"error": {"code", "message", "errors": [{"field", "message"}]}}
            if err.get("message"):
                parts.append(str(err["message"]))
            for item in err.get("errors") or []:
                if isinstance(item, dict) and item.get("message"):
                    parts.append(f"{item.get('field') or 'request'}: {item['message']}")
                elif isinstance(item, str):
                    parts.append(item)
        elif isinstance(err, str):
            parts.append(err)
        if body.get("detail"):  # Shippo / DRF: {"detail": "Invalid token."}
            parts.append(str(body["detail"]))
        for msg in body.get("messages") or []:  # Shippo: messages[{source, code, text}]
            if isinstance(msg, dict) and msg.get("text"):
                parts.append(f"{msg.get('source') or 'carrier'}: {msg['text']}")
        if not parts:  # Shippo field errors: {"address_to": ["This field is required."]}
            for key, value in body.items():
                if isinstance(value, list) and value and all(isinstance(v, str) for v in value):
                    parts.append(f"{key}: {' '.join(value)}")
    elif isinstance(body, str):
        parts.append(body.strip())
    text = "; ".join(dict.fromkeys(p for p in parts if p)) or "no reason given"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def carrier_code(body: Any) -> str | None:
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        code = body["error"].get("code")
        return str(code) if code else None
    return None


def pick_rate(rates: list[dict[str, Any]], wanted: str | None, *, carrier_of: Callable[[dict], str],
              service_of: Callable[[dict], list[str]], price_of: Callable[[dict], Decimal],
              carrier_name: str) -> dict[str, Any]:
    """The requested service's rate (``"Priority"`` or ``"USPS:Priority"``, any case), else the cheapest."""
    if not rates:
        raise CarrierRejected(f"{carrier_name} offered no rate for this parcel and address", field="parcel")
    if wanted is None:
        return min(rates, key=price_of)
    want_carrier, _, want_service = wanted.rpartition(":")
    matches = [r for r in rates
               if want_service.lower() in (s.lower() for s in service_of(r) if s)
               and (not want_carrier or carrier_of(r).lower() == want_carrier.lower())]
    if not matches:
        offered = sorted(f"{carrier_of(r)}:{service_of(r)[0]} ({price_of(r)})" for r in rates)
        raise CarrierRejected(f"{carrier_name} has no rate for service {wanted!r} here; offered: {', '.join(offered)}",
                              field="service", offered=offered)
    return min(matches, key=price_of)
