"""Warehouse assignment.

This rule set is the simplest correct one: the first warehouse, by priority (then id), whose
available stock covers every line ships the whole order. Each candidate is recorded with the
reason it was kept or dropped, so ``GET /orders/{id}`` can explain the decision.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orderflow.errors import NoWarehouseCanAllocate, UnknownSku
from orderflow.models import AllocatedLine, Allocation, CandidateNote, OrderLine, StockLevel, Warehouse

RULE_SET = "first-warehouse-by-priority/1"


def allocate(lines: Sequence[OrderLine], warehouses: Sequence[Warehouse],
             stock: Mapping[str, Sequence[StockLevel]]) -> Allocation:
    """Pick one warehouse for the whole order, or raise with the reason none can take it."""
    unknown = sorted({line.sku for line in lines if not stock.get(line.sku)})
    if unknown:
        raise UnknownSku(f"unknown SKU(s): {', '.join(unknown)} (no warehouse stocks them)", skus=unknown)

    needed: dict[str, int] = {}
    for line in lines:
        needed[line.sku] = needed.get(line.sku, 0) + line.quantity
    available = {(lvl.sku, lvl.warehouse_id): lvl.available for levels in stock.values() for lvl in levels}

    notes: list[CandidateNote] = []
    for warehouse in sorted(warehouses, key=lambda w: (w.priority, w.warehouse_id)):
        short = [f"{sku} needs {qty}, has {available.get((sku, warehouse.warehouse_id), 0)}"
                 for sku, qty in needed.items() if available.get((sku, warehouse.warehouse_id), 0) < qty]
        if short:
            notes.append(CandidateNote(warehouse_id=warehouse.warehouse_id, rule="stock", kept=False,
                                       reason="; ".join(short)))
            continue
        notes.append(CandidateNote(warehouse_id=warehouse.warehouse_id, rule="stock", kept=True,
                                   reason=f"holds every line; priority {warehouse.priority} is the first that does"))
        plan = [AllocatedLine(line_no=line.line_no, sku=line.sku, quantity=line.quantity,
                              warehouse_id=warehouse.warehouse_id) for line in lines]
        return Allocation(rule_set=RULE_SET, lines=plan, candidates=notes)

    reasons = "; ".join(f"{n.warehouse_id}: {n.reason}" for n in notes) or "no warehouses are set up"
    raise NoWarehouseCanAllocate(f"no single warehouse holds every line ({reasons})", candidates=len(notes))
