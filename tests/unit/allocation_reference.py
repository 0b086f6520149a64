"""A frozen copy of the allocation planner as it was before it was made fast (issue 13, commit d83e397).

Not product code: ``tests/unit/test_allocation_pinned_decisions.py`` runs it beside
``orderflow.rules.allocation.allocate`` on many random orders and policies, and any difference in a
decision (warehouses, quantities, backorders) or in its explanation (notes, summary) fails. Leave it as
it is: it is the definition of what "the same decision" means.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orderflow.errors import NoWarehouseCanAllocate, UnknownSku
from orderflow.models import (
    Address,
    AllocatedLine,
    Allocation,
    BackorderedLine,
    CandidateNote,
    OrderLine,
    StockLevel,
    Warehouse,
    brief,
    clip,
)
from orderflow.rules import geo
from orderflow.rules.allocation import RANKERS, SHOWN, AllocationPolicy, Rule


def _lines(numbers: Sequence[int]) -> str:
    return brief([str(n) for n in numbers], first=SHOWN * 2)


def _note(warehouse_id: str, rule: str, kept: bool, reason: str) -> CandidateNote:
    # a note was a model here; it is a plain dict with the same four keys now (CandidateNote is a TypedDict)
    return CandidateNote(warehouse_id=warehouse_id, rule=str(rule), kept=kept, reason=clip(reason))


class _Context:
    def __init__(self, warehouses: Sequence[Warehouse], policy: AllocationPolicy, ship_to: Address | None) -> None:
        self.by_id = {w.warehouse_id: w for w in warehouses}
        self.policy = policy
        where = geo.locate(ship_to.country, ship_to.postal_code) if ship_to else None
        self.distance: dict[str, float | None] = {}
        for w in warehouses:
            here = geo.locate(w.address.country, w.address.postal_code) if w.address else None
            self.distance[w.warehouse_id] = geo.distance_km(where, here)
        self.rankers = [r for r in policy.rules if r in RANKERS]

    def rank_value(self, rule: Rule, warehouse_id: str) -> float:
        w = self.by_id[warehouse_id]
        if rule == Rule.CLOSEST:
            d = self.distance[warehouse_id]
            return float("inf") if d is None else round(d, 1)
        if rule == Rule.PRIORITY:
            return float(w.priority)
        return float("inf") if w.shipping_cost is None else float(w.shipping_cost)

    def key(self, warehouse_id: str) -> tuple:
        return (*(self.rank_value(r, warehouse_id) for r in self.rankers), warehouse_id)

    def describe(self, rule: Rule, warehouse_id: str) -> str:
        value = self.rank_value(rule, warehouse_id)
        if rule == Rule.CLOSEST:
            return "distance unknown" if value == float("inf") else f"{value:.0f} km away"
        if rule == Rule.PRIORITY:
            return f"priority {value:.0f}"
        return "no cost set" if value == float("inf") else f"costs {value:.2f} per shipment"

    def why_better(self, winner: str, other: str) -> tuple[Rule | None, str]:
        """The first ranking rule that tells the two apart, and how."""
        for rule in self.rankers:
            a, b = self.rank_value(rule, winner), self.rank_value(rule, other)
            if a != b:
                return rule, f"{self.describe(rule, other)}; {winner} is {self.describe(rule, winner)}"
        return None, f"tied with {winner} on every rule; {winner} comes first by id"


def allocate(lines: Sequence[OrderLine], warehouses: Sequence[Warehouse], stock: Mapping[str, Sequence[StockLevel]],
             *, policy: AllocationPolicy | None = None, channel: str | None = None,
             ship_to: Address | None = None, plan_no: int = 1) -> Allocation:
    """Plan which warehouse ships which quantity of each line; what cannot be placed is backordered."""
    policy = policy or AllocationPolicy()
    unknown = sorted({line.sku for line in lines if not stock.get(line.sku)})
    if unknown:
        raise UnknownSku(f"unknown SKU(s): {', '.join(unknown)} (no warehouse stocks them)", skus=unknown)
    ctx = _Context(warehouses, policy, ship_to)
    notes: list[CandidateNote] = []
    available = {(lvl.sku, lvl.warehouse_id): lvl.on_hand - lvl.committed for levels in stock.values() for lvl in levels}

    # pinned: which warehouses may take each line
    eligible = {line.line_no: set(ctx.by_id) for line in lines}
    pinned_away: dict[str, list[str]] = {}
    if Rule.PINNED in policy.rules:
        for pin in policy.pins:
            missing = [w for w in pin.warehouse_ids if w not in ctx.by_id]
            if missing:
                raise NoWarehouseCanAllocate(f"pinned warehouse(s) {', '.join(missing)} do not exist",
                                             warehouses=missing)
            hit = [ln for ln in lines if (pin.channel and pin.channel == channel) or (pin.sku and pin.sku == ln.sku)]
            for line in hit:
                eligible[line.line_no] &= set(pin.warehouse_ids)
            if hit:
                target = f"channel {pin.channel}" if pin.channel else f"SKU {pin.sku}"
                for wid in sorted(set(ctx.by_id) - set(pin.warehouse_ids)):
                    pinned_away.setdefault(wid, []).append(f"{target} is pinned to {', '.join(pin.warehouse_ids)}")
    for wid, why in pinned_away.items():  # one note per warehouse, however many pins
        notes.append(_note(wid, Rule.PINNED, False, brief(why, first=SHOWN, sep="; ")))

    def can_take(wid: str, line: OrderLine, qty: int, taken: Mapping[tuple[str, str], int]) -> bool:
        return wid in eligible[line.line_no] and available.get((line.sku, wid), 0) - taken.get((line.sku, wid), 0) >= qty

    plan: list[AllocatedLine] = []
    taken: dict[tuple[str, str], int] = {}
    ordered = sorted(ctx.by_id, key=ctx.key)

    def assign(wid: str, line: OrderLine, qty: int) -> None:
        plan.append(AllocatedLine.model_construct(line_no=line.line_no, sku=line.sku, quantity=qty, warehouse_id=wid))
        taken[(line.sku, wid)] = taken.get((line.sku, wid), 0) + qty

    remaining = list(lines)
    if Rule.FEWEST_SHIPMENTS in policy.rules:
        # one warehouse for everything, if any can
        whole = []
        for wid in ordered:
            used: dict[str, int] = {}  # what this warehouse would already give to earlier lines, by SKU
            short: list[tuple[OrderLine, int | None]] = []  # (line, what it has; None: pinned elsewhere)
            for line in lines:
                sku = line.sku
                if wid not in eligible[line.line_no]:
                    short.append((line, None))
                    continue
                has = available.get((sku, wid), 0) - used.get(sku, 0)
                if has >= line.quantity:
                    used[sku] = used.get(sku, 0) + line.quantity
                else:
                    short.append((line, has))
            if short:
                # only what the note shows is written out (it names SHOWN lines and counts the rest)
                said = [f"may not ship {line.sku} (pinned elsewhere)" if has is None
                        else f"{line.sku} needs {line.quantity}, has {max(has, 0)}" for line, has in short[:SHOWN]]
                reason = ("; ".join(said) if len(short) <= SHOWN
                          else f"short on {len(short)} line(s): {'; '.join(said)} and {len(short) - SHOWN} more")
                notes.append(_note(wid, Rule.STOCK, False, reason))
            else:
                whole.append(wid)
                notes.append(_note(wid, Rule.STOCK, True, "holds every line"))
        if whole:
            best = whole[0]
            for other in whole[1:]:
                rule, why = ctx.why_better(best, other)
                notes.append(_note(other, rule or Rule.PRIORITY, False, why))
            notes.append(_note(best, Rule.FEWEST_SHIPMENTS, True,
                               "ships the whole order in one shipment"
                               + (f"; {', '.join(ctx.describe(r, best) for r in ctx.rankers)}" if ctx.rankers else "")))
            for line in lines:
                assign(best, line, line.quantity)
            remaining = []
        else:
            # the smallest split, greedily: the warehouse covering the most remaining lines first
            repeated_skus = len({line.sku for line in lines}) < len(lines)
            while remaining:
                best_wid, best_cover = None, []
                for wid in ordered:
                    if not repeated_skus:  # the common case, each SKU on one line: no running total needed
                        cover = [line for line in remaining if wid in eligible[line.line_no]
                                 and available.get((line.sku, wid), 0) - taken.get((line.sku, wid), 0) >= line.quantity]
                    else:
                        used: dict[str, int] = {}
                        cover = []
                        for line in remaining:
                            sku = line.sku
                            if wid in eligible[line.line_no] and (available.get((sku, wid), 0) - taken.get((sku, wid), 0)
                                                                  - used.get(sku, 0)) >= line.quantity:
                                used[sku] = used.get(sku, 0) + line.quantity
                                cover.append(line)
                    if len(cover) > len(best_cover):
                        best_wid, best_cover = wid, cover
                        if len(cover) == len(remaining):
                            break  # covers all that is left: a later warehouse could only tie, and ties go first
                if best_wid is None:
                    break
                for line in best_cover:
                    assign(best_wid, line, line.quantity)
                notes.append(_note(
                    best_wid, Rule.FEWEST_SHIPMENTS, True,
                    f"covers line(s) {_lines([ln.line_no for ln in best_cover])}: the most of what "
                    "was left, so the split stays small"))
                placed = {id(ln) for ln in best_cover}
                remaining = [ln for ln in remaining if id(ln) not in placed]
    else:
        still = []
        chosen: dict[str, list[int]] = {}
        for line in remaining:
            wid = next((w for w in ordered if can_take(w, line, line.quantity, taken)), None)
            if wid is None:
                still.append(line)
                continue
            assign(wid, line, line.quantity)
            chosen.setdefault(wid, []).append(line.line_no)
        for wid, numbers in chosen.items():  # one note per warehouse, naming its lines
            notes.append(_note(wid, ctx.rankers[0] if ctx.rankers else Rule.STOCK, True,
                               f"best-ranked warehouse with stock for line{'s' if len(numbers) > 1 else ''} "
                               f"{_lines(numbers)}"))
        remaining = still

    backordered: list[BackorderedLine] = []
    splits: dict[str, list[str]] = {}
    for line in remaining:
        left = line.quantity
        if policy.allow_line_split:
            for wid in ordered:
                if left == 0:
                    break
                if wid not in eligible[line.line_no]:
                    continue
                free = available.get((line.sku, wid), 0) - taken.get((line.sku, wid), 0)
                if free > 0:
                    qty = min(free, left)
                    assign(wid, line, qty)
                    left -= qty
                    splits.setdefault(wid, []).append(f"line {line.line_no} split: {qty} of {line.quantity} "
                                                      f"{line.sku} from here")
        if left:
            backordered.append(BackorderedLine.model_construct(line_no=line.line_no, sku=line.sku, quantity=left))
    for wid, parts in splits.items():  # one note per warehouse, however many lines it takes a part of
        notes.append(_note(wid, Rule.STOCK, True, brief(parts, first=SHOWN, sep="; ")))

    shipments = sorted({p.warehouse_id for p in plan})
    waiting = brief([f"{b.quantity} x {b.sku}" for b in backordered], first=SHOWN)
    if not plan:
        summary = "nothing can ship now: " + waiting
    else:
        summary = f"{len(shipments)} shipment(s) from {brief(shipments, first=SHOWN * 2)}"
        if backordered:
            summary += "; backordered " + waiting
    return Allocation(rule_set=policy.name(), plan_no=plan_no, lines=plan, backordered=backordered,
                      candidates=notes, summary=clip(summary))
