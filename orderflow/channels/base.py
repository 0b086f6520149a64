"""What every channel client shares: the normalized channel order, a page of them, the errors.

A client turns its channel's JSON into :class:`ChannelOrder`: our :class:`NewOrder` when the order can
be read, else the reason it cannot (the importer keeps it as ``needs_attention``, never drops it), plus
the channel's state of the order (ready to ship, unpaid, cancelled, closed) mapped into
:class:`ChannelState`.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Any, Protocol

from pydantic import ValidationError

from orderflow.errors import OrderflowError
from orderflow.models import Address, LineIn, NewOrder

# -- errors -----------------------------------------------------------------------------------------


class ChannelError(OrderflowError):
    """The channel answered something we cannot use (a 4xx we did not cause by rate, a bad shape)."""

    http_status = 502
    code = "channel_error"


class ChannelAuthError(ChannelError):
    """The channel refused our credentials."""

    code = "channel_auth_failed"


class ChannelUnavailable(ChannelError):
    """The channel kept failing (5xx, timeouts) after our retries."""

    code = "channel_unavailable"


class RateLimited(ChannelError):
    """The channel wants us to wait longer than this run has left; the next run resumes."""

    http_status = 429
    code = "channel_rate_limited"

    def __init__(self, message: str, retry_after: float, **details: Any) -> None:
        super().__init__(message, retry_after=round(retry_after, 3), **details)
        self.retry_after = retry_after


class OutOfTime(ChannelError):
    """This run is close to its deadline (the Lambda timeout); stop cleanly, the next run resumes."""

    http_status = 503
    code = "import_out_of_time"


# -- the normalized order ---------------------------------------------------------------------------


class ChannelState(StrEnum):
    READY = "ready"  # paid (or authorized): ours to fulfil
    UNPAID = "unpaid"  # stored but held: not processed until the channel says it is paid
    CANCELLED = "cancelled"  # cancelled (or refunded in full) on the channel
    #: Every line fulfilled (shipped) on the channel: if it is ours and not shipped yet, it was
    #: fulfilled from the storefront, and we complete it here without telling the channel back.
    FULFILLED = "fulfilled"
    CLOSED = "closed"  # partly fulfilled, or fulfilled by Amazon: not ours to ship, nothing to complete


@dataclass
class ChannelOrder:
    external_id: str
    state: ChannelState
    #: The channel's words for the state, for events and hold reasons (``financial status PENDING``).
    state_detail: str
    updated_at: datetime | None
    raw: dict[str, Any]
    order: NewOrder | None = None
    #: Why the order could not be read into a :class:`NewOrder` (field paths and messages, no values).
    problem: str | None = None
    #: What could be read of a malformed order: ``currency``, ``lines`` (valid ones), ``address``.
    partial: dict[str, Any] = field(default_factory=dict)


@dataclass
class Page:
    orders: list[ChannelOrder]
    #: What to send for the next page (a cursor, a page number, a token); None on the last page.
    next_token: str | None
    #: The channel's clock at this answer (its ``Date`` header, or Amazon's ``lastUpdatedBefore``).
    #: Everything changed before it is visible to a poll started now; the cursor moves up to it.
    server_time: datetime | None = None


@dataclass
class PushResult:
    channel_id: str
    sku: str
    quantity: int
    #: The channel's id of what was changed (inventory item, product, listing submission).
    reference: str | None = None
    status: str = "accepted"


@dataclass
class FulfillmentNotice:
    """One shipment of an order we fulfilled, told to the channel it came from."""

    external_id: str
    shipment_id: str
    #: SKU -> quantity in this shipment.
    lines: dict[str, int]
    carrier: str | None
    tracking_numbers: list[str]
    shipped_at: str | None
    #: True when this is the last shipment: every line of the order has shipped.
    complete: bool = True

    @property
    def parcel_no(self) -> int:
        """The shipment's number within its order (``ord_x-2`` -> 2)."""
        tail = self.shipment_id.rsplit("-", 1)[-1]
        return int(tail) if tail.isdigit() else 1


@dataclass
class FulfillmentResult:
    #: ``pushed``: the channel took it now; ``on_channel``: the channel already had every unit fulfilled.
    status: str
    reference: str | None = None
    note: str | None = None


class ChannelClient(Protocol):
    """One per channel type: ``shopify``, ``woocommerce``, ``amazon``."""

    channel_id: str

    def fetch_page(self, updated_after: datetime, token: str | None) -> Page:
        """One page of orders changed at or after ``updated_after``; ``token`` from the previous page."""

    def push_inventory(self, sku: str, quantity: int, *, idempotency_key: str | None = None,
                       expected_quantity: int | None = None) -> PushResult:
        """Set the available quantity of ``sku`` on the channel (auto-sync)."""

    def push_fulfillment(self, notice: FulfillmentNotice) -> FulfillmentResult:
        """Tell the channel a shipment left, with its tracking. Safe to repeat: what the channel shows
        fulfilled already is not fulfilled twice."""

    def close(self) -> None: ...


# -- helpers for the normalizers --------------------------------------------------------------------


def utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def parse_time(value: Any, *, naive_is_utc: bool = True) -> datetime | None:
    """An ISO 8601 timestamp (``Z``, offsets, or none: UTC) as an aware UTC datetime."""
    if not value or not isinstance(value, str):
        return None
    text = value.strip().replace("Z", "+00:00").replace("z", "+00:00")
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    if parsed.tzinfo is None and not naive_is_utc:
        return None
    return utc(parsed)


def iso(value: datetime) -> str:
    """``2026-01-10T16:00:00Z``: whole seconds, UTC (what the channels' filters accept)."""
    return utc(value).strftime("%Y-%m-%dT%H:%M:%SZ")


def money(value: Any) -> Decimal | None:
    """A channel's money (decimal string, or a JSON number read as Decimal) as Decimal."""
    if value is None or isinstance(value, bool):
        return None
    try:
        amount = Decimal(str(value).strip())
    except (InvalidOperation, ValueError):
        return None
    return amount if amount.is_finite() else None


def text(value: Any) -> str | None:
    """A non-empty string or None (channels send ``""`` for empty fields)."""
    if value is None:
        return None
    out = str(value).strip()
    return out or None


def reason(err: ValidationError | Exception) -> str:
    """A short reason naming the fields at fault, never their values (they may hold personal data)."""
    if isinstance(err, ValidationError):
        parts = []
        for problem in err.errors()[:5]:
            where = ".".join(str(p) for p in problem.get("loc", ())) or "order"
            parts.append(f"{where}: {problem.get('msg', 'invalid')}")
        more = len(err.errors()) - 5
        return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "")
    return str(err) or type(err).__name__


def payload_id(raw: Any) -> str:
    """A stable id for a payload without one (so a re-sent malformed order is still kept once)."""
    digest = hashlib.sha256(json.dumps(raw, sort_keys=True, default=str).encode()).hexdigest()
    return f"unidentified-{digest[:16]}"


def build(external_id: str, state: ChannelState, state_detail: str, updated_at: datetime | None,
          raw: dict[str, Any], fields: Callable[[], dict[str, Any]]) -> ChannelOrder:
    """Make the :class:`ChannelOrder`: ``fields()`` gives NewOrder's fields; anything that goes wrong
    (a missing key, a bad price, a country that is not a code) becomes the order's ``problem``."""
    out = ChannelOrder(external_id=external_id, state=state, state_detail=state_detail, updated_at=updated_at,
                       raw=raw)
    try:
        data = fields()
    except Exception as err:  # noqa: BLE001 - any surprise in the channel's JSON is the order's problem
        out.problem = f"unreadable order: {type(err).__name__}: {err}"
        return out
    try:
        out.order = NewOrder.model_validate(data)
    except ValidationError as err:
        out.problem = reason(err)
        out.partial = _partial(data)
    return out


def _partial(data: dict[str, Any]) -> dict[str, Any]:
    partial: dict[str, Any] = {}
    currency = data.get("currency")
    if isinstance(currency, str) and len(currency) == 3 and currency.isalpha():
        partial["currency"] = currency.upper()
    try:
        partial["address"] = Address.model_validate(data.get("shipping_address"))
    except ValidationError:
        pass
    lines = []
    for line in data.get("lines") or []:
        try:
            lines.append(LineIn.model_validate(line))
        except ValidationError:
            continue
    partial["lines"] = lines
    return partial


def first(items: Iterable[Any]) -> Any:
    return next(iter(items), None)
