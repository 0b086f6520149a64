"""The order model: one definition used by the API, the workflow steps, the tables and the tests.

Money is ``Decimal`` everywhere and is written out as a decimal string, never a float.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import time
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from functools import cache
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StringConstraints,
    computed_field,
    model_validator,
    with_config,
)
from typing_extensions import TypedDict  # pydantic needs typing_extensions' TypedDict before Python 3.12

Sku = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                       pattern=r"^[A-Za-z0-9][A-Za-z0-9._\-/]*$")]
Identifier = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64,
                                              pattern=r"^[A-Za-z0-9][A-Za-z0-9_\-]*$")]


def _integral(value: Any) -> Any:
    """JSON Schema counts ``3.0`` as an integer: so does the API. ``3.5``, ``"3"`` and ``true`` stay refused."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def Count(**bounds: int) -> Any:  # noqa: N802 - used like a type: ``quantity: Count(gt=0, le=100)``
    """A count of units within ``bounds``: an integer (``3`` or ``3.0``), never a string or a boolean."""
    return Annotated[int, Field(strict=True, **bounds), BeforeValidator(_integral)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=4)]

# -- what one order item may hold --------------------------------------------------------------------
# An order is one DynamoDB item, and an item holds at most 400 KB: a save that does not fit fails and
# leaves the order stuck (even for cancel). So whatever grows with the order is capped here, sized so
# that the worst case (MAX_ORDER_LINES lines of the longest SKUs, split over many warehouses, through
# many allocation rounds and events) stays well under the limit (tests/unit/test_order_item_size.py).

#: Lines one order may have (``POST /orders`` and every importer): the size budget assumes it.
MAX_ORDER_LINES = 250
#: Events kept on the order: the first (``created``) and the newest; older ones are counted in
#: ``Order.events_dropped`` (the full history is in the logs: every event is logged when saved).
MAX_EVENTS = 100
#: Characters of an event's detail (and of an allocation summary or note) beyond which it is cut.
MAX_DETAIL = 500
#: Past allocation plans that placed nothing (superseded, waiting) kept besides the reserved ones and
#: the latest; older ones are counted in ``Order.plans_dropped``.
MAX_PAST_PLANS = 10


def clip(text: str, limit: int = MAX_DETAIL) -> str:
    """``text`` cut to ``limit`` characters, saying so."""
    if len(text) <= limit:
        return text
    return text[:limit - 1] + "\u2026"


def brief(items: list[str], *, first: int = 5, sep: str = ", ") -> str:
    """``"A, B, C, D, E and 245 more"``: a list that may be long, as a short text."""
    shown = sep.join(items[:first])
    return f"{shown} and {len(items) - first} more" if len(items) > first else shown


def utcnow() -> str:
    """Timestamps are ISO 8601 strings in UTC, with milliseconds, so they sort as text."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def iso_at(epoch: float) -> str:
    """A moment (seconds since the epoch) as :func:`utcnow` writes timestamps."""
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def epoch_of(timestamp: str) -> float:
    """Seconds since the epoch of a timestamp :func:`utcnow` or :func:`iso_at` wrote."""
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp()


def _plain_kinds(annotation: Any) -> set[type]:
    """The plain types a field annotation allows (``int | None`` -> {int}); empty for anything richer."""
    if annotation is None or annotation is type(None):
        return set()
    if get_origin(annotation) is Annotated:
        return _plain_kinds(get_args(annotation)[0])
    if get_origin(annotation) in (Union, UnionType):
        kinds: set[type] = set()
        for arg in get_args(annotation):
            if arg is type(None):
                continue
            inner = _plain_kinds(arg)
            if not inner:
                return set()
            kinds |= inner
        return kinds
    return {annotation} if annotation in (bool, int, float, Decimal) else set()


@cache
def _number_and_boolean_fields(model: type[BaseModel]) -> tuple[tuple[str, str, frozenset[type]], ...]:
    """(name, key in the input, plain kinds) of a model's fields that take a boolean or a number: read once
    per model, not at every validation (the typing introspection was most of a small model's validation)."""
    fields = ((name, field.alias or name, frozenset(_plain_kinds(field.annotation)))
              for name, field in model.model_fields.items())
    return tuple(entry for entry in fields if entry[2])


def new_id(prefix: str) -> str:
    """A time-sortable id that is also a valid Step Functions execution name."""
    return f"{prefix}_{int(time.time() * 1000):012x}{secrets.token_hex(5)}"


def channel_order_id(channel: str, external_id: str) -> str:
    """The id of the order a sales channel knows as ``external_id``: derived from the two, so that every
    writer of that channel order (an import, a webhook, ``POST /orders``) writes the same item and the
    item's own conditional put stores it once (no separate guard item). Shaped like :func:`new_id`'s ids
    (``ord_`` and 22 hex digits, a valid execution name), not time-sortable. Orders stored before
    2026-11-29 have a random id and a guard item ``ref#<channel>#<external id>`` naming it instead."""
    digest = hashlib.sha256(json.dumps([channel, external_id]).encode()).hexdigest()
    return f"ord_{digest[:22]}"


class Model(BaseModel):
    # defer_build: pydantic builds a model's validator and serializer when it is first used, not when the
    # module is imported, so a function's cold start builds only the models its invocation uses.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)

    @model_validator(mode="before")
    @classmethod
    def _booleans_are_not_numbers(cls, data: Any) -> Any:
        """JSON keeps ``true`` and ``1`` apart, and so does the API: a number for a boolean field and a
        boolean for a number field are refused (pydantic alone would take ``0`` as false and ``true`` as 1)."""
        if isinstance(data, dict):
            for name, key, kinds in _number_and_boolean_fields(cls):
                value = data.get(key)
                if value is None:
                    continue
                if kinds == {bool} and not isinstance(value, bool):
                    raise ValueError(f"{name}: Input should be a valid boolean (true or false)")
                if isinstance(value, bool) and kinds and bool not in kinds and kinds <= {int, float, Decimal}:
                    raise ValueError(f"{name}: Input should be a number, not a boolean")
        return data


class Document(Model):
    """A settings-table document; ``_version`` is the stored version it was read at (optimistic lock)."""

    _version: int = PrivateAttr(default=0)


class Stored(BaseModel):
    """Models read back from storage ignore what they do not know (computed fields, newer attributes)."""

    model_config = ConfigDict(extra="ignore", defer_build=True)


class OrderStatus(StrEnum):
    NEW = "new"
    AWAITING_STOCK = "awaiting_stock"
    PAID = "paid"
    IN_FULFILLMENT = "in_fulfillment"
    PARTIALLY_SHIPPED = "partially_shipped"
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    NEEDS_ATTENTION = "needs_attention"


# The sets of statuses (shippable, cancellable, in flight, ...) are orderflow.orders's, with the changes.


class WarehouseKind(StrEnum):
    OWN = "own"
    THREE_PL = "3pl"
    DROPSHIP = "dropship"
    FBA = "fba"


class FulfillmentMethod(StrEnum):
    SELF_SHIP = "self_ship"
    DROPSHIP = "dropship"
    THREE_PL = "3pl"
    FBA = "fba"


#: The route each kind of warehouse takes. Later routes (SFTP, FBA) plug in behind the same names.
METHOD_BY_KIND = {
    WarehouseKind.OWN: FulfillmentMethod.SELF_SHIP,
    WarehouseKind.DROPSHIP: FulfillmentMethod.DROPSHIP,
    WarehouseKind.THREE_PL: FulfillmentMethod.THREE_PL,
    WarehouseKind.FBA: FulfillmentMethod.FBA,
}


class Address(Model):
    name: ShortText
    company: ShortText | None = None
    line1: ShortText
    line2: ShortText | None = None
    city: ShortText
    region: ShortText | None = None
    postal_code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=20)]
    country: Annotated[str, StringConstraints(strip_whitespace=True, to_upper=True, pattern=r"^[A-Za-z]{2}$")] = Field(
        description="ISO 3166-1 alpha-2 country code"
    )
    phone: Annotated[str, StringConstraints(strip_whitespace=True, max_length=40)] | None = None


class Customer(Model):
    name: ShortText | None = None
    email: Annotated[str, StringConstraints(strip_whitespace=True, max_length=254,
                                            pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")] | None = None


class LineIn(Model):
    sku: Sku
    quantity: Count(gt=0, le=100_000)
    unit_price: Money = Field(description="Decimal string, e.g. \"19.99\"")


class OrderLine(LineIn):
    line_no: Annotated[int, Field(ge=1)]


class NewOrder(Model):
    """What `POST /orders` accepts (and what importers produce from a channel's order)."""

    lines: Annotated[list[LineIn], Field(min_length=1, max_length=MAX_ORDER_LINES)]
    shipping_address: Address
    customer: Customer | None = None
    currency: Annotated[str, StringConstraints(to_upper=True, pattern=r"^[A-Za-z]{3}$")] = "USD"
    channel: Identifier | None = None
    external_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)] | None = None

    @model_validator(mode="after")
    def _channel_pair(self) -> NewOrder:
        if (self.channel is None) != (self.external_id is None):
            raise ValueError("channel and external_id go together: give both or neither")
        return self


class Warehouse(Model):
    warehouse_id: Identifier
    name: ShortText
    kind: WarehouseKind = WarehouseKind.OWN
    priority: Annotated[int, Field(ge=0, le=10_000)] = Field(100, description="Lower ships first")
    address: Address | None = Field(None, description="Where it ships from; the closest-warehouse rule needs it")
    shipping_cost: Money | None = Field(None, description="Typical cost of one shipment from here (cost rule)")
    sla_hours: Annotated[Decimal, Field(gt=0, le=24 * 90, decimal_places=6)] = Field(
        Decimal(72), description="For a supplier, 3PL or FBA: how many hours it may take to confirm a shipment before "
                        "the order needs attention")


class StockLevel(Stored):
    sku: Sku
    warehouse_id: Identifier
    on_hand: int = 0
    committed: int = 0

    @computed_field  # type: ignore[prop-decorator]
    @property
    def available(self) -> int:
        return self.on_hand - self.committed


class AllocatedLine(Model):
    line_no: int
    sku: Sku
    quantity: int
    warehouse_id: Identifier


class BackorderedLine(Model):
    line_no: int
    sku: Sku
    quantity: int


@with_config(ConfigDict(extra="forbid", str_strip_whitespace=True))
class CandidateNote(TypedDict):
    """What one rule decided about one warehouse, and why: ``note["reason"]``. A plain dict, validated with
    the order that carries it (the same keys and types as a model, ``kept`` a real boolean): a plan of 10
    lines over 50 warehouses carries some 55 notes, and as models they were a third of the decision's time
    (issue 13)."""

    warehouse_id: str
    rule: str
    kept: StrictBool
    reason: str


class Allocation(Model):
    """The recorded, explainable decision of the `allocate` step."""

    rule_set: str
    #: 1 for the first plan; allocating again (stock moved) makes plan 2, and so on. Part of the
    #: stock ledger's idempotency keys, so a new plan's reservations never collide with an old one's.
    plan_no: int = 1
    lines: list[AllocatedLine]
    #: What no warehouse could take now: it waits for stock (a purchase order) and a later plan.
    backordered: list[BackorderedLine] = []
    candidates: list[CandidateNote] = []
    summary: str = ""
    decided_at: str = Field(default_factory=utcnow)
    #: planned (not reserved yet), reserved (stock committed), waiting (nothing taken: the order waits
    #: for stock), superseded (stock moved before it could be reserved; a newer plan replaced it).
    status: Literal["planned", "reserved", "waiting", "superseded"] = "planned"
    reserved_at: str | None = None

    def warehouses(self) -> list[str]:
        seen: list[str] = []
        for line in self.lines:
            if line.warehouse_id not in seen:
                seen.append(line.warehouse_id)
        return seen


class ShipmentStatus(StrEnum):
    PENDING = "pending"
    AWAITING_TRACKING = "awaiting_tracking"
    FORWARDED = "forwarded"
    SHIPPED = "shipped"
    CANCELLED = "cancelled"


#: Seconds a label purchase claim holds. The API Lambda gives up after 29 s, so an older claim is orphaned.
LABEL_LEASE_SECONDS = 90


class ShipmentLabel(Model):
    """A label bought for a shipment through a carrier account (``POST /orders/{id}/labels``).

    ``purchasing`` is the claim taken before the carrier is called (one purchase per shipment at a
    time); ``failed`` keeps the carrier's shipment id so the next attempt can finish that purchase
    instead of buying a second label.
    """

    status: Literal["purchasing", "purchased", "failed"]
    carrier_id: str
    format: Literal["pdf", "zpl"] = "pdf"
    claim_id: str
    claimed_at: int = Field(description="Epoch seconds; a purchase claim older than its lease may be taken over")
    idempotency_key: str | None = None
    carrier: str | None = None
    service: str | None = None
    tracking_number: str | None = None
    cost: Money | None = None
    currency: str | None = None
    provider_shipment_id: str | None = None
    storage_key: str | None = None
    download_path: str | None = None
    purchased_at: str | None = None
    error: str | None = None

    def in_flight(self, now: float) -> bool:
        """A purchase is running right now (its claim is within its lease)."""
        return self.status == "purchasing" and now - self.claimed_at < LABEL_LEASE_SECONDS


class Shipment(Model):
    shipment_id: str
    warehouse_id: str
    method: FulfillmentMethod
    plan_no: int = 1
    status: ShipmentStatus = ShipmentStatus.PENDING
    lines: list[AllocatedLine]
    carrier: str | None = None
    tracking_number: str | None = None
    #: Every tracking number of the shipment when it left in several parcels (a supplier's tracking file
    #: may list several); ``tracking_number`` is the first.
    tracking_numbers: list[str] = []
    shipped_at: str | None = None
    #: Where the fulfiller has it: the supplier's order file name, the FBA fulfillment order id.
    fulfiller_ref: str | None = None
    #: When the fulfiller's SLA for this shipment runs out (set when it is routed): past it, an unshipped
    #: shipment makes the order need attention (the workflow's ``CheckOverdue``).
    due_at: str | None = None
    #: The label bought through an integrated carrier, if any (orderflow.carriers).
    label: ShipmentLabel | None = None
    #: What the sales channel was told of this shipment (orderflow.channels.shipment_updates): ``pushed`` (we sent
    #: the tracking), ``on_channel`` (the channel had it already: it was fulfilled there first, so we
    #: never echo it back), ``skipped`` (nothing to tell: see ``channel_note``). None: not yet.
    channel_update: Literal["pushed", "on_channel", "skipped"] | None = None
    channel_ref: str | None = None
    channel_note: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _drop_shipment_tokens(cls, data: Any) -> Any:
        """Orders stored before the workflow had one wait per order kept a task token per shipment: read
        them without it (the order's ``fulfilment_token`` is the one that counts now)."""
        if isinstance(data, dict) and "task_token" in data:
            data = {k: v for k, v in data.items() if k != "task_token"}
        return data


class OrderEvent(Model):
    type: str
    at: str = Field(default_factory=utcnow)
    detail: str | None = None


class Order(Stored):
    order_id: str
    status: OrderStatus = OrderStatus.NEW
    created_at: str = Field(default_factory=utcnow)
    updated_at: str = Field(default_factory=utcnow)
    currency: str = "USD"
    channel: str | None = None
    external_id: str | None = None
    customer: Customer | None = None
    shipping_address: Address
    lines: list[OrderLine]
    #: The allocation plans, oldest first; a backorder or a re-allocation adds one (``add_plan``). Every
    #: reserved plan is kept (its lines are what the order holds); a past plan keeps no candidate notes,
    #: and of the past plans that placed nothing only the newest ``MAX_PAST_PLANS`` are kept.
    allocations: list[Allocation] = []
    #: Past plans that placed nothing, no longer kept (see ``allocations``).
    plans_dropped: int = 0
    shipments: list[Shipment] = []
    #: The first event and the newest ones (``MAX_EVENTS`` in all), oldest first.
    events: list[OrderEvent] = []
    #: Events no longer kept on the order (they were logged when saved).
    events_dropped: int = 0
    attention_reason: str | None = None
    #: Why an imported order is stored but not started (unpaid on its channel); cleared when it is paid.
    hold_reason: str | None = None
    #: The channel's own JSON of an imported order that could not be read (kept for the person fixing it).
    channel_payload: str | None = None
    #: Task token of the execution waiting for stock (status awaiting_stock). Never shown by the API.
    stock_wait_token: str | None = None
    #: Task token of the execution waiting for all of the order's shipments (one wait per order, not one
    #: per shipment): the code that records the last shipment completes the order and resumes it. Never
    #: shown by the API.
    fulfilment_token: str | None = None
    #: Which execution runs the order: 1 is the one named after it; a redrive starts ``-r2``, ``-r3``...
    attempt: int = 1
    version: int = 0
    #: How many events the stored copy has; events past it are new and get logged when saved.
    _stored_events: int = PrivateAttr(default=0)

    def model_post_init(self, context: Any, /) -> None:
        self._stored_events = len(self.events)

    def unsaved_events(self) -> list[OrderEvent]:
        return self.events[self._stored_events:]

    def mark_saved(self) -> None:
        self._stored_events = len(self.events)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total(self) -> Decimal:
        return sum((line.unit_price * line.quantity for line in self.lines), Decimal("0"))

    @classmethod
    def from_new(cls, new: NewOrder, order_id: str | None = None) -> Order:
        if order_id is None:
            order_id = (channel_order_id(new.channel, new.external_id) if new.channel and new.external_id
                        else new_id("ord"))
        order = cls(
            order_id=order_id,
            currency=new.currency,
            channel=new.channel,
            external_id=new.external_id,
            customer=new.customer,
            shipping_address=new.shipping_address,
            lines=[OrderLine(line_no=i, **line.model_dump()) for i, line in enumerate(new.lines, start=1)],
        )
        order._stored_events = 0
        order.record("created", f"{len(order.lines)} line(s), total {order.total} {order.currency}")
        return order

    def record(self, event_type: str, detail: str | None = None) -> OrderEvent:
        event = OrderEvent(type=event_type, detail=None if detail is None else clip(detail))
        self.events.append(event)
        self.updated_at = event.at
        self._trim_events()
        return event

    def _trim_events(self) -> None:
        """Keep the first event and the newest: the order item must not outgrow DynamoDB's 400 KB."""
        excess = len(self.events) - MAX_EVENTS
        if excess <= 0:
            return
        del self.events[1:1 + excess]
        self.events_dropped += excess
        # the dropped events were stored ones (unless one change recorded more than MAX_EVENTS)
        self._stored_events = max(1, self._stored_events - excess) if self._stored_events else 0

    def next_plan_no(self) -> int:
        """The number of the next allocation plan (plan numbers are never reused: stock keys use them)."""
        return self.allocations[-1].plan_no + 1 if self.allocations else 1

    def add_plan(self, plan: Allocation) -> None:
        """Add a new plan; the past ones shrink to what is still needed (see ``allocations``)."""
        for past in self.allocations:
            past.candidates = []
            if past.status in ("superseded", "waiting"):
                past.lines = []
                past.backordered = []
        self.allocations.append(plan)
        idle = [p for p in self.allocations[:-1] if p.status in ("superseded", "waiting")]
        if len(idle) > MAX_PAST_PLANS:
            drop = {id(p) for p in idle[:len(idle) - MAX_PAST_PLANS]}
            self.allocations = [p for p in self.allocations if id(p) not in drop]
            self.plans_dropped += len(drop)

    @property
    def allocation(self) -> Allocation | None:
        """The latest plan."""
        return self.allocations[-1] if self.allocations else None

    def outstanding(self) -> list[OrderLine]:
        """Quantities not covered by any plan's allocated lines yet (what a new plan must place)."""
        placed: dict[int, int] = {}
        for plan in self.allocations:
            if plan.status == "reserved":
                for line in plan.lines:
                    placed[line.line_no] = placed.get(line.line_no, 0) + line.quantity
        out = []
        for line in self.lines:
            left = line.quantity - placed.get(line.line_no, 0)
            if left > 0:
                out.append(line.model_copy(update={"quantity": left}))
        return out

    def shipment(self, shipment_id: str) -> Shipment:
        for shipment in self.shipments:
            if shipment.shipment_id == shipment_id:
                return shipment
        from orderflow.errors import NotFound

        raise NotFound(f"order {self.order_id} has no shipment {shipment_id}", shipment_id=shipment_id)

    def public(self) -> dict[str, Any]:
        """The order as the API shows it: no task tokens, no storage version."""
        return self.model_dump(mode="json", exclude={"version": True, "stock_wait_token": True,
                                                     "fulfilment_token": True})
