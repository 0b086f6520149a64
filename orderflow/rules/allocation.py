"""Warehouse assignment: a ranked list of rules, configurable per seller, that explains itself.

Rules (``AllocationPolicy.rules``, in the seller's order):

- ``pinned``: a channel or a SKU pinned to warehouses (Amazon orders to the FBA warehouse; a SKU only a
  dropship supplier carries) keeps only those warehouses for the lines it covers;
- ``stock``: a warehouse takes a line only if its available stock covers it (always applied);
- ``fewest_shipments``: one warehouse for the whole order when one can; otherwise the smallest split
  found greedily (the warehouse covering the most remaining lines first); a single line is split
  across warehouses only when ``allow_line_split`` is on;
- ``closest``, ``priority``, ``cost``: rank the warehouses that are left: distance to the ship-to
  address (``orderflow.rules.geo``), the seller's priority (lower first), the shipment cost; their
  order in the list is their weight. The warehouse id breaks the last tie, so a decision is
  deterministic.

What no plan can place is backordered; ``backorder`` says whether the rest ships meanwhile
(``ship_available``) or the whole order waits (``hold``). Every warehouse gets a note per rule that
kept or dropped it, with the reason, so ``GET /orders/{id}`` can explain the decision.

The plan is stored in the order's DynamoDB item (400 KB at most), so what it says stays short however
large the order: a warehouse gets at most one note per rule, a note names the first few lines or SKUs
and counts the rest ("short on 250 line(s): A needs 2, has 0; … and 245 more"), the summary likewise.

How it stays fast (issue 13: thousands of decisions a second on one core for 10 lines over 50
warehouses): each warehouse's ranking values are worked out once per call and the warehouses sorted
once; each line's stock is read once into a dict by warehouse and turned into a column (one entry per
warehouse, best-ranked first: ``None`` where the warehouse can take the line, else the note's short text
for it, each text written once per line and quantity); a warehouse's row of those columns is its note.
The notes, lines and plan are pydantic models built from our own values without validating them again.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from enum import StrEnum
from functools import cached_property, partial
from itertools import repeat
from operator import attrgetter, is_, itemgetter, methodcaller, sub
from typing import Any, Literal

from pydantic import BaseModel, Field, model_validator

from orderflow.errors import NoWarehouseCanAllocate, UnknownSku
from orderflow.models import (
    MAX_DETAIL,
    Address,
    AllocatedLine,
    Allocation,
    BackorderedLine,
    CandidateNote,
    Document,
    Identifier,
    Model,
    OrderLine,
    Sku,
    StockLevel,
    Warehouse,
    brief,
    clip,
    utcnow,
)
from orderflow.rules import geo


class Rule(StrEnum):
    PINNED = "pinned"
    STOCK = "stock"
    FEWEST_SHIPMENTS = "fewest_shipments"
    CLOSEST = "closest"
    PRIORITY = "priority"
    COST = "cost"


RANKERS = (Rule.CLOSEST, Rule.PRIORITY, Rule.COST)
#: How many lines, SKUs or pins a note or summary names before it counts the rest.
SHOWN = 5

_INF = float("inf")
# the rules as the notes record them (plain strings)
_PINNED, _STOCK, _FEWEST, _PRIORITY = (str(r) for r in (Rule.PINNED, Rule.STOCK, Rule.FEWEST_SHIPMENTS,
                                                         Rule.PRIORITY))
_HOLDS_ALL = "holds every line"


def _lines(numbers: Sequence[int]) -> str:
    return brief([str(n) for n in numbers], first=SHOWN * 2)


# -- models from our own values -------------------------------------------------------------------------
# A plan of 10 lines over 50 warehouses has some 55 notes: pydantic's model_construct (a loop over the
# fields, their aliases and defaults) was a good part of a decision. These builders set the same four
# slots model_construct sets (__dict__ in field order, the fields set, no extra, no private values), so
# the models are the same; a model they cannot build so (a post-init hook, extra fields kept, other
# fields) goes through model_construct.

_new = object.__new__
_setattr = object.__setattr__


def _plain(cls: type[BaseModel], fields: tuple[str, ...]) -> bool:
    return (tuple(cls.model_fields) == fields and not cls.__pydantic_post_init__
            and not cls.__pydantic_root_model__ and cls.model_config.get("extra") != "allow")


def _builder(cls: type[BaseModel], fields: tuple[str, ...]) -> Callable[..., Any]:
    if not _plain(cls, fields):  # pragma: no cover - the models are plain today
        return lambda *values: cls.model_construct(**dict(zip(fields, values, strict=True)))

    def build(*values: Any) -> Any:
        model = _new(cls)
        _setattr(model, "__dict__", dict(zip(fields, values)))  # noqa: B905 - as many values as fields
        _setattr(model, "__pydantic_fields_set__", set(fields))
        _setattr(model, "__pydantic_extra__", None)
        _setattr(model, "__pydantic_private__", None)
        return model
    return build


_allocated_line = _builder(AllocatedLine, ("line_no", "sku", "quantity", "warehouse_id"))


def _allocated_lines(plan: list[tuple[int, str, int, str]]) -> list[AllocatedLine]:
    """``_allocated_line`` for each (line_no, sku, quantity, warehouse_id) of a plan, in one loop."""
    if not _plain(AllocatedLine, ("line_no", "sku", "quantity", "warehouse_id")):  # pragma: no cover
        return [_allocated_line(*p) for p in plan]
    out = []
    for line_no, sku, quantity, warehouse_id in plan:
        line = _new(AllocatedLine)
        _setattr(line, "__dict__", {"line_no": line_no, "sku": sku, "quantity": quantity, "warehouse_id": warehouse_id})
        _setattr(line, "__pydantic_fields_set__", {"line_no", "sku", "quantity", "warehouse_id"})
        _setattr(line, "__pydantic_extra__", None)
        _setattr(line, "__pydantic_private__", None)
        out.append(line)
    return out
_backordered_line = _builder(BackorderedLine, ("line_no", "sku", "quantity"))

def _note(warehouse_id: str, rule: str, kept: bool, reason: str) -> CandidateNote:
    """A note (a plain dict) with its reason clipped to what the order item keeps."""
    return {"warehouse_id": warehouse_id, "rule": rule, "kept": kept,
            "reason": reason if len(reason) <= MAX_DETAIL else clip(reason)}


#: Allocation's fields the planner gives; the others (decided_at, status, reserved_at) take their defaults
_GIVEN = ("rule_set", "plan_no", "lines", "backordered", "candidates", "summary")
_PLAN_FIELDS = Allocation.model_fields
_FAST_PLAN = (_plain(Allocation, (*_GIVEN, "decided_at", "status", "reserved_at"))
              and _PLAN_FIELDS["decided_at"].default_factory is utcnow
              and _PLAN_FIELDS["status"].default == "planned" and _PLAN_FIELDS["reserved_at"].default is None)


def _allocation(rule_set: str, plan_no: int, lines: list[AllocatedLine], backordered: list[BackorderedLine],
                candidates: list[CandidateNote], summary: str) -> Allocation:
    """``Allocation(rule_set=..., ...)`` without validating our own values again: the same model (the same
    fields set, defaults, the same notes and lines); validated when a value may not be as validation leaves
    it (a plan number that is not an int, text with whitespace to strip)."""
    if not _FAST_PLAN or type(plan_no) is not int or rule_set != rule_set.strip() or summary != summary.strip():
        return Allocation(rule_set=rule_set, plan_no=plan_no, lines=lines, backordered=backordered,
                          candidates=candidates, summary=summary)
    plan = _new(Allocation)
    _setattr(plan, "__dict__", {"rule_set": rule_set, "plan_no": plan_no, "lines": lines, "backordered": backordered,
                                "candidates": candidates, "summary": summary, "decided_at": utcnow(),
                                "status": "planned", "reserved_at": None})
    _setattr(plan, "__pydantic_fields_set__", set(_GIVEN))
    _setattr(plan, "__pydantic_extra__", None)
    _setattr(plan, "__pydantic_private__", None)
    return plan


class Pin(Model):
    """Route a channel's orders, or a SKU, to one of these warehouses only."""

    warehouse_ids: list[Identifier] = Field(min_length=1)
    channel: Identifier | None = None
    sku: Sku | None = None

    @model_validator(mode="after")
    def _one_target(self) -> Pin:
        if (self.channel is None) == (self.sku is None):
            raise ValueError("a pin names either a channel or a sku")
        return self


class AllocationPolicy(Document):
    version: int = Field(1, ge=1)
    rules: list[Rule] = [Rule.PINNED, Rule.STOCK, Rule.FEWEST_SHIPMENTS, Rule.CLOSEST, Rule.PRIORITY]
    allow_line_split: bool = False
    backorder: Literal["hold", "ship_available"] = "hold"
    pins: list[Pin] = []

    @model_validator(mode="after")
    def _sane(self) -> AllocationPolicy:
        if Rule.STOCK not in self.rules:
            raise ValueError("the stock rule cannot be turned off: it is what stops overselling")
        if len(set(self.rules)) != len(self.rules):
            raise ValueError("each rule may appear once")
        return self

    def name(self) -> str:
        return f"policy/{self.version}: " + " > ".join(r.value for r in self.rules)


# -- ranking ----------------------------------------------------------------------------------------------

#: ``geo.locate``'s points as the great-circle distance uses them, by country and postal code: (latitude in
#: radians, its cosine, longitude in degrees), or None. Like ``geo.locate``'s own cache, one entry per
#: address seen; two plain dicts, not functools.cache (no key tuple built per warehouse).
_LOCATED: dict[str | None, dict[str | None, tuple[float, float, float] | None]] = {}
#: ``math.radians``'s factor (``x * (pi / 180)`` in C, so the same double)
_DEGREE = math.pi / 180.0


def _located(country: str | None, postal_code: str | None) -> tuple[float, float, float] | None:
    by_code = _LOCATED.get(country)
    if by_code is None:
        by_code = _LOCATED[country] = {}
    if postal_code in by_code:
        return by_code[postal_code]
    point = geo.locate(country, postal_code)
    if point is None:
        by_code[postal_code] = None
        return None
    lat = math.radians(point.lat)
    by_code[postal_code] = located = (lat, math.cos(lat), point.lon)
    return located


def _distances(ship_to: Address | None, warehouses: Sequence[Warehouse]) -> list[float]:
    """Each warehouse's distance to ``ship_to`` in km, to 0.1 km (infinite when either end is unknown):
    ``geo.distance_km``'s arithmetic, operation for operation (the same doubles), so the ranks and the km a
    note gives are its own."""
    where = _located(ship_to.country, ship_to.postal_code) if ship_to else None
    if where is None:
        return [_INF] * len(warehouses)
    p1, cos1, lon1 = where
    sin, sqrt, asin, diameter = math.sin, math.sqrt, math.asin, 2 * geo.EARTH_RADIUS_KM
    located, degree = _LOCATED, _DEGREE
    out = []
    for w in warehouses:
        address = w.address
        if address:
            by_code = located.get(address.country)
            code = address.postal_code
            here = by_code[code] if by_code is not None and code in by_code else _located(address.country, code)
            if here is not None:
                p2, cos2, lon2 = here
                root = sqrt(sin((p2 - p1) / 2) ** 2 + cos1 * cos2 * sin((lon2 - lon1) * degree / 2) ** 2)
                out.append(round(diameter * asin(root if root < 1.0 else 1.0), 1))  # min(1.0, root)
                continue
        out.append(_INF)
    return out


def _describe(rule: Rule, value: float) -> str:
    if rule == Rule.CLOSEST:
        return "distance unknown" if value == _INF else f"{value:.0f} km away"
    if rule == Rule.PRIORITY:
        return f"priority {value:.0f}"
    return "no cost set" if value == _INF else f"costs {value:.2f} per shipment"


class _Ranking:
    """The warehouses' values on each ranking rule, read once, and the warehouses best first."""

    def __init__(self, warehouses: Sequence[Warehouse], rankers: list[Rule], ship_to: Address | None) -> None:
        self.rankers = rankers
        ids = [w.warehouse_id for w in warehouses]
        ws: Sequence[Warehouse] = warehouses
        if len(set(ids)) < len(ids):  # a repeated id: the last one listed counts (in the place of the first)
            by_id = {w.warehouse_id: w for w in warehouses}
            ws, ids = list(by_id.values()), list(by_id)
        columns: list[list[float]] = []
        for rule in rankers:
            if rule == Rule.CLOSEST:
                columns.append(_distances(ship_to, ws))
            elif rule == Rule.PRIORITY:
                columns.append([float(w.priority) for w in ws])
            else:
                columns.append([_INF if w.shipping_cost is None else float(w.shipping_cost) for w in ws])
        # (value on each rule..., warehouse id): the id breaks the last tie
        keys = sorted(zip(*columns, ids, strict=False))
        self.keys = keys
        self.ordered: list[str] = list(map(itemgetter(-1), keys))

    @cached_property
    def values(self) -> dict[str, tuple]:
        """Each warehouse's (value on each rule..., id); only a plan with a choice of whole warehouses asks."""
        return {key[-1]: key for key in self.keys}

    def describe(self, rule_index: int, warehouse_id: str) -> str:
        return _describe(self.rankers[rule_index], self.values[warehouse_id][rule_index])

    def why_better(self, winner: str, other: str) -> tuple[str, str]:
        """The first ranking rule that tells the two apart (priority when none does), and how."""
        a, b = self.values[winner], self.values[other]
        for i, rule in enumerate(self.rankers):
            if a[i] != b[i]:
                return str(rule), f"{_describe(rule, b[i])}; {winner} is {_describe(rule, a[i])}"
        return _PRIORITY, f"tied with {winner} on every rule; {winner} comes first by id"


# -- stock --------------------------------------------------------------------------------------------------

#: What the planner reads: the units available (on hand less committed) of each SKU by warehouse, as
#: ``Inventory.available_for`` answers it. ``allocate`` also takes the stock levels by SKU and reads them so.
Availability = Mapping[str, Mapping[str, int]]
Stock = Availability | Mapping[str, Sequence[StockLevel]]


def _availability(stock: Stock, skus: set[str]) -> Availability:
    """``stock`` as units by warehouse: as given when it is (a mapping per SKU), else read from the levels."""
    if isinstance(next(iter(stock.values()), None), Mapping):
        return stock  # type: ignore[return-value]
    return _available(stock, skus)  # type: ignore[arg-type]


def _available(stock: Mapping[str, Sequence[StockLevel]], skus: set[str]) -> dict[str, dict[str, int]]:
    """Units available (on hand less committed) of each of ``skus`` by warehouse; where one SKU and
    warehouse has several levels, the last one listed counts (whatever key it is listed under)."""
    out: dict[str, dict[str, int]] = {}
    misfiled: list[Any] = []
    if len(stock) == len(skus):  # every SKU is a key (no SKU is unknown): nothing else is listed
        # each level filed under its own SKU, as the inventory reads them; else the general reading below.
        # The fields are read from the model's own dict (where pydantic keeps them): a quarter of the cost of
        # going through pydantic's attribute hook four times per level, for 500 levels a decision.
        try:
            for sku in skus:
                out[sku] = {f["warehouse_id"]: f["on_hand"] - f["committed"] for f in map(_fields, stock[sku])
                            if f["sku"] == sku or misfiled.append(f)}
        except (AttributeError, KeyError, TypeError):  # levels that are not models: read through their attributes
            misfiled.append(None)
        if not misfiled:
            return out
    everything = {(lvl.sku, lvl.warehouse_id): lvl.on_hand - lvl.committed
                  for levels in stock.values() for lvl in levels}
    out = {sku: {} for sku in skus}
    for (sku, wid), units in everything.items():
        if sku in out:
            out[sku][wid] = units
    return out


_fields = attrgetter("__dict__")
_count_none = methodcaller("count", None)
_is_none = partial(is_, None)


class _Shortfall(dict):
    """A line's note text by what a warehouse has of it: ``None`` when that covers the line, else
    "A needs 2, has 0" (written once per amount)."""

    __slots__ = ("sku", "quantity")

    def __init__(self, sku: str, quantity: int) -> None:  # starts empty (dict.__new__), no dict.__init__ needed
        self.sku, self.quantity = sku, quantity

    def __missing__(self, has: int) -> str | None:
        text = None if has >= self.quantity else f"{self.sku} needs {self.quantity}, has {max(has, 0)}"
        self[has] = text
        return text


def allocate(lines: Sequence[OrderLine], warehouses: Sequence[Warehouse], stock: Stock,
             *, policy: AllocationPolicy | None = None, channel: str | None = None,
             ship_to: Address | None = None, plan_no: int = 1) -> Allocation:
    """Plan which warehouse ships which quantity of each line; what cannot be placed is backordered.
    ``stock``: the units available of each SKU by warehouse (:data:`Availability`), or its stock levels."""
    policy = policy or AllocationPolicy()
    skus = [line.sku for line in lines]
    if not all(map(stock.get, skus)):
        unknown = sorted({sku for sku in skus if not stock.get(sku)})
        raise UnknownSku(f"unknown SKU(s): {', '.join(unknown)} (no warehouse stocks them)", skus=unknown)
    rules = policy.rules
    rank = _Ranking(warehouses, [r for r in rules if r in RANKERS], ship_to)
    ordered = rank.ordered
    notes: list[CandidateNote] = []
    n = len(lines)
    quantities = [line.quantity for line in lines]
    numbers = [line.line_no for line in lines]

    # pinned: which warehouses may take each line (None: any)
    eligible: list[set[str] | None] = [None] * n
    if Rule.PINNED in rules and policy.pins:
        known = set(ordered)
        by_number = {no: set(known) for no in numbers}
        pinned_away: dict[str, list[str]] = {}
        hit_any = False
        for pin in policy.pins:
            missing = [w for w in pin.warehouse_ids if w not in known]
            if missing:
                raise NoWarehouseCanAllocate(f"pinned warehouse(s) {', '.join(missing)} do not exist",
                                             warehouses=missing)
            hit = [ln for ln in lines if (pin.channel and pin.channel == channel) or (pin.sku and pin.sku == ln.sku)]
            for line in hit:
                by_number[line.line_no] &= set(pin.warehouse_ids)
            if hit:
                hit_any = True
                target = f"channel {pin.channel}" if pin.channel else f"SKU {pin.sku}"
                for wid in sorted(known - set(pin.warehouse_ids)):
                    pinned_away.setdefault(wid, []).append(f"{target} is pinned to {', '.join(pin.warehouse_ids)}")
        for wid, why in pinned_away.items():  # one note per warehouse, however many pins
            notes.append(_note(wid, _PINNED, False, brief(why, first=SHOWN, sep="; ")))
        if hit_any:
            eligible = [by_number[no] for no in numbers]

    sku_set = set(skus)
    available = _availability(stock, sku_set)
    have = [available[sku] for sku in skus]  # line i's available units by warehouse
    repeated_skus = len(sku_set) < n
    plan: list[tuple[int, str, int, str]] = []  # (line_no, sku, quantity, warehouse)
    taken: dict[tuple[str, str], int] = {}

    def assign(wid: str, i: int, qty: int) -> None:
        plan.append((numbers[i], skus[i], qty, wid))
        taken[(skus[i], wid)] = taken.get((skus[i], wid), 0) + qty

    def can_take(wid: str, i: int, qty: int) -> bool:
        allowed = eligible[i]
        return ((allowed is None or wid in allowed)
                and have[i].get(wid, 0) - taken.get((skus[i], wid), 0) >= qty)

    remaining = list(range(n))  # the lines not placed yet, by index
    if Rule.FEWEST_SHIPMENTS in rules:
        # one warehouse for everything, if any can: each warehouse's row says what it is short of
        pinned_text = [f"may not ship {sku} (pinned elsewhere)" for sku in skus]
        rows: list[Sequence[str | None]]  # by warehouse (best first), by line: None where it can take the line
        if not repeated_skus:
            columns: list[Sequence[str | None]] = []
            every = itemgetter(*ordered) if len(ordered) > 1 else None  # each warehouse's value, in one call
            for i in range(n):
                # the note's text for each amount a warehouse has (None: it covers the line), then each
                # warehouse's text in rank order (a warehouse with no level has none of it)
                sku, quantity, units = skus[i], quantities[i], have[i]
                texts = {has: None if has >= quantity else f"{sku} needs {quantity}, has {has if has > 0 else 0}"
                         for has in set(units.values())}
                try:
                    column = itemgetter(*every(units))(texts)  # type: ignore[misc]
                except (KeyError, TypeError):  # a warehouse with no level of it (or a single warehouse)
                    column = list(map(texts.get, map(units.get, ordered),
                                      repeat(None if quantity <= 0 else f"{sku} needs {quantity}, has 0")))
                allowed = eligible[i]
                if allowed is not None:
                    column = [text if wid in allowed else pinned_text[i] for wid, text in zip(ordered, column,
                                                                                             strict=True)]
                columns.append(column)
            rows = list(zip(*columns, strict=True)) if n else [()] * len(ordered)
        else:  # a SKU on several lines: a warehouse gives the earlier lines first
            shortfalls = [_Shortfall(skus[i], quantities[i]) for i in range(n)]
            rows = []
            for wid in ordered:
                used: dict[str, int] = {}
                row: list[str | None] = []
                for i in range(n):
                    allowed = eligible[i]
                    if allowed is not None and wid not in allowed:
                        row.append(pinned_text[i])
                        continue
                    has = have[i].get(wid, 0) - used.get(skus[i], 0)
                    text = shortfalls[i][has]
                    if text is None:
                        used[skus[i]] = used.get(skus[i], 0) + quantities[i]
                    row.append(text)
                rows.append(row)
        # each warehouse's note: what it is short of (the texts are never empty), or that it holds every line
        shorts = list(map(list, map(filter, repeat(None), rows)))
        counts = list(map(len, shorts))  # by warehouse: how many lines it cannot take
        join = "; ".join
        notes += [_note(wid, _STOCK, False, join(short) if count <= SHOWN else
                        f"short on {count} line(s): {join(short[:SHOWN])} and {count - SHOWN} more")
                  if count else _note(wid, _STOCK, True, _HOLDS_ALL)
                  for wid, short, count in zip(ordered, shorts, counts, strict=True)]
        whole = [wid for wid, count in zip(ordered, counts, strict=True) if not count] if 0 in counts else []
        if whole:
            best = whole[0]
            for other in whole[1:]:
                rule, why = rank.why_better(best, other)
                notes.append(_note(other, rule, False, why))
            described = ", ".join(rank.describe(j, best) for j in range(len(rank.rankers)))
            notes.append(_note(best, _FEWEST, True,
                               "ships the whole order in one shipment" + (f"; {described}" if rank.rankers else "")))
            plan += zip(numbers, skus, quantities, repeat(best))  # nothing is left to place: no need to count it taken
            remaining = []
        else:
            # the smallest split, greedily: the warehouse covering the most remaining lines first
            while remaining:
                best_wid, best_cover = None, []
                if not repeated_skus:  # the common case, each SKU on one line: a row says it all
                    # how many of the lines left each warehouse covers; the first of the most wins (ties go first)
                    if len(remaining) == n:
                        can = list(map(sub, repeat(n), counts))
                    elif len(remaining) > 1:
                        can = list(map(_count_none, map(itemgetter(*remaining), rows)))
                    else:
                        can = list(map(_is_none, map(itemgetter(remaining[0]), rows)))
                    best_count = max(can, default=0)
                    if best_count:
                        best = can.index(best_count)
                        best_wid, best_row = ordered[best], rows[best]
                        best_cover = [i for i in remaining if best_row[i] is None]
                else:
                    for wid in ordered:
                        used = {}
                        cover = []
                        for i in remaining:
                            sku = skus[i]
                            allowed = eligible[i]
                            if (allowed is None or wid in allowed) and (
                                    have[i].get(wid, 0) - taken.get((sku, wid), 0) - used.get(sku, 0)) >= quantities[i]:
                                used[sku] = used.get(sku, 0) + quantities[i]
                                cover.append(i)
                        if len(cover) > len(best_cover):
                            best_wid, best_cover = wid, cover
                            if len(cover) == len(remaining):
                                break
                if best_wid is None:
                    break
                for i in best_cover:
                    assign(best_wid, i, quantities[i])
                notes.append(_note(
                    best_wid, _FEWEST, True,
                    f"covers line(s) {_lines([numbers[i] for i in best_cover])}: the most of what "
                    "was left, so the split stays small"))
                placed = set(best_cover)
                remaining = [i for i in remaining if i not in placed]
    else:
        still = []
        chosen: dict[str, list[int]] = {}
        for i in remaining:
            wid = next((w for w in ordered if can_take(w, i, quantities[i])), None)
            if wid is None:
                still.append(i)
                continue
            assign(wid, i, quantities[i])
            chosen.setdefault(wid, []).append(numbers[i])
        for wid, placed_numbers in chosen.items():  # one note per warehouse, naming its lines
            notes.append(_note(wid, str(rank.rankers[0]) if rank.rankers else _STOCK, True,
                               f"best-ranked warehouse with stock for line{'s' if len(placed_numbers) > 1 else ''} "
                               f"{_lines(placed_numbers)}"))
        remaining = still

    backordered: list[tuple[int, str, int]] = []  # (line_no, sku, quantity)
    splits: dict[str, list[str]] = {}
    for i in remaining:
        left = quantities[i]
        sku = skus[i]
        if policy.allow_line_split:
            allowed = eligible[i]
            for wid in ordered:
                if left == 0:
                    break
                if allowed is not None and wid not in allowed:
                    continue
                free = have[i].get(wid, 0) - taken.get((sku, wid), 0)
                if free > 0:
                    qty = min(free, left)
                    assign(wid, i, qty)
                    left -= qty
                    splits.setdefault(wid, []).append(f"line {numbers[i]} split: {qty} of {quantities[i]} "
                                                      f"{sku} from here")
        if left:
            backordered.append((numbers[i], sku, left))
    for wid, parts in splits.items():  # one note per warehouse, however many lines it takes a part of
        notes.append(_note(wid, _STOCK, True, brief(parts, first=SHOWN, sep="; ")))

    shipments = sorted({p[3] for p in plan})
    waiting = brief([f"{qty} x {sku}" for _, sku, qty in backordered], first=SHOWN)
    if not plan:
        summary = "nothing can ship now: " + waiting
    else:
        summary = f"{len(shipments)} shipment(s) from {brief(shipments, first=SHOWN * 2)}"
        if backordered:
            summary += "; backordered " + waiting
    return _allocation(policy.name(), plan_no, _allocated_lines(plan),
                       [_backordered_line(*b) for b in backordered], notes, clip(summary))


def first_with_stock(lines: Sequence[OrderLine], warehouses: Sequence[Warehouse], stock: Stock) -> str | None:
    """The simplest rule (the benchmark's baseline): the first warehouse, by id, holding every line."""
    need: dict[str, int] = {}
    for line in lines:
        need[line.sku] = need.get(line.sku, 0) + line.quantity
    available = _availability(stock, set(need))
    none: Mapping[str, int] = {}
    by_sku = [(available.get(sku, none), qty) for sku, qty in need.items()]
    for w in sorted(warehouses, key=lambda w: w.warehouse_id):
        wid = w.warehouse_id
        if all(units.get(wid, 0) >= qty for units, qty in by_sku):
            return wid
    return None
