"""Allocation decisions and their explanations are pinned: a faster planner must decide and explain the same.

Two checks, both failing on any difference in the warehouses, quantities, backorders, notes or summary:

- the planner beside a frozen copy of the planner as it was (``tests/unit/allocation_reference.py``) on
  thousands of random orders: every rule order, pins (channel and SKU, and pins to nowhere), line splits,
  repeated SKUs, committed stock, ties on distance, priority and cost, warehouses with no address or
  outside the US, unknown SKUs;
- the benchmark's own orders (``benchmarks.allocation.make_cases``, both shapes) against digests of the
  plans the old planner made (``tests/unit/data/allocation_golden.json``).

``python -m tests.unit.test_allocation_pinned_decisions`` writes the golden file again (from the frozen copy).
"""

from __future__ import annotations

import hashlib
import json
import random
from decimal import Decimal
from pathlib import Path

import pytest

from benchmarks.allocation import make_cases
from orderflow.models import (
    Address,
    AllocatedLine,
    Allocation,
    BackorderedLine,
    CandidateNote,
    OrderLine,
    StockLevel,
    Warehouse,
)
from orderflow.rules.allocation import AllocationPolicy, Pin, Rule, allocate
from tests.unit import allocation_reference

GOLDEN = Path(__file__).parent / "data" / "allocation_golden.json"
#: (name, cases, shape) of the benchmark's orders pinned by the golden file.
GOLDEN_SETS = (("mixed", 300, {}), ("10x50", 200, {"lines_per_order": 10, "warehouse_count": 50}))

ZIPS = ["10001", "10002", "07114", "89502", "90210", "60601", "33101", "98101", "00501", "99999", "1000"]
COUNTRIES = ["US", "US", "US", "DE", "FR", "CA", "ZZ"]


def _canonical(plan: Allocation) -> dict:
    return plan.model_dump(mode="json", exclude={"decided_at"})


def _digest(plan: Allocation) -> str:
    return hashlib.sha256(json.dumps(_canonical(plan), sort_keys=True).encode()).hexdigest()[:16]


def _outcome(fn, case: dict):
    try:
        return fn(case["lines"], case["warehouses"], case["stock"], **case["kwargs"])
    except Exception as exc:  # the same error, with the same message, counts as the same decision
        return exc


def _address(rng: random.Random) -> Address | None:
    if rng.random() < 0.15:
        return None
    country = rng.choice(COUNTRIES)
    return Address(name="a", line1="x", city="x", postal_code=rng.choice(ZIPS), country=country)


def random_case(rng: random.Random) -> dict:
    """An order, warehouses, stock and a policy, drawn to reach every branch of the planner."""
    count = rng.choice([1, 2, 3, 4, 6, 8, 12, 30])
    ids = rng.sample([f"w{i}" for i in range(40)] + ["A", "b", "W1", "fba"], count)
    warehouses = [Warehouse(warehouse_id=wid, name=wid, priority=rng.choice([1, 1, 2, 3, 100]),
                            address=_address(rng),
                            shipping_cost=rng.choice([None, Decimal("4.5"), Decimal("4.50"), Decimal("7.25"),
                                                      Decimal("0"), Decimal("12.3456")]))
                  for wid in ids]
    if rng.random() < 0.05:  # the same warehouse listed twice: the last one counts
        warehouses.append(warehouses[0].model_copy(update={"priority": 0}))
    skus = ["A", "B", "C", "D", "E", "F", "G", "H", "I", "J", "K", "L"][:rng.choice([1, 2, 3, 6, 12])]
    line_count = rng.choice([1, 1, 2, 3, 5, 7, 10, 12])
    numbers = list(range(1, line_count + 1))
    if line_count > 2 and rng.random() < 0.05:  # two lines with the same number
        numbers[-1] = numbers[0]
    lines = [OrderLine(line_no=n, sku=rng.choice(skus), quantity=rng.choice([1, 1, 2, 3, 5, 8]), unit_price="1.00")
             for n in numbers]
    stock: dict[str, list[StockLevel]] = {}
    for sku in sorted({ln.sku for ln in lines}) + (["Z"] if rng.random() < 0.1 else []):
        levels = []
        for w in warehouses:
            if rng.random() < 0.8:
                on_hand = rng.choice([0, 0, 1, 2, 3, 5, 8, 20])
                committed = rng.choice([0, 0, 0, 1, 3, on_hand, on_hand + 2])
                levels.append(StockLevel(sku=sku, warehouse_id=w.warehouse_id, on_hand=on_hand, committed=committed))
        if rng.random() < 0.1:
            levels.append(StockLevel(sku=sku, warehouse_id="elsewhere", on_hand=50))
        if levels and rng.random() < 0.05:  # the same level listed twice: the last one counts
            levels.append(levels[0].model_copy(update={"on_hand": levels[0].on_hand + 7}))
        stock[sku] = levels
    if rng.random() < 0.03 and len(stock) > 1:  # a level filed under another SKU's key
        first, second = list(stock)[:2]
        stock[first].append(StockLevel(sku=second, warehouse_id=warehouses[-1].warehouse_id, on_hand=9))
    if rng.random() < 0.03:  # a SKU no warehouse stocks
        stock[lines[0].sku] = []
    optional = [Rule.PINNED, Rule.FEWEST_SHIPMENTS, Rule.CLOSEST, Rule.PRIORITY, Rule.COST]
    if rng.random() < 0.3:
        rules = None
    else:
        rules = [Rule.STOCK] + rng.sample(optional, rng.randint(0, len(optional)))
        rng.shuffle(rules)
    pins = []
    for _ in range(rng.choice([0, 0, 0, 1, 2, 3])):
        targets = rng.sample([w.warehouse_id for w in warehouses], rng.randint(1, min(3, len(warehouses))))
        if rng.random() < 0.03:
            targets.append("ghost")
        if rng.random() < 0.5:
            pins.append(Pin(channel=rng.choice(["amazon", "shop"]), warehouse_ids=targets))
        else:
            pins.append(Pin(sku=rng.choice(skus), warehouse_ids=targets))
    policy = AllocationPolicy(**({"rules": rules} if rules is not None else {}),
                              allow_line_split=rng.random() < 0.4,
                              backorder=rng.choice(["hold", "ship_available"]), pins=pins,
                              version=rng.choice([1, 2]))
    kwargs = {"policy": rng.choice([policy, policy, None]) if not pins and rules is None else policy,
              "channel": rng.choice([None, "amazon", "shop"]), "ship_to": _address(rng),
              "plan_no": rng.choice([1, 2, 7])}
    return {"lines": lines, "warehouses": warehouses, "stock": stock, "kwargs": kwargs}


def as_levels(available: dict[str, dict[str, int]]) -> dict[str, list[StockLevel]]:
    """The units available by SKU and warehouse (the planning read's answer) as the stock levels the frozen
    planner reads."""
    return {sku: [StockLevel(sku=sku, warehouse_id=wid, on_hand=units) for wid, units in by_warehouse.items()]
            for sku, by_warehouse in available.items()}


def as_available(stock: dict[str, list[StockLevel]]) -> dict[str, dict[str, int]] | None:
    """Stock levels as the planning read answers them, or None when a level is filed under another SKU
    (which only the levels' reading covers)."""
    if any(lvl.sku != sku for sku, levels in stock.items() for lvl in levels):
        return None
    return {sku: {lvl.warehouse_id: lvl.available for lvl in levels} for sku, levels in stock.items()}


def _assert_same(case: dict, where: str) -> None:
    """The planner decides and explains as the frozen copy did, on the stock levels and on the units
    available read from them (what the workflow passes)."""
    stock = case["stock"]
    if stock and isinstance(next(iter(stock.values())), dict):  # the benchmark's orders: units available
        levels = {**case, "stock": as_levels(stock)}
        _assert_same_as_frozen(case, levels, where + " (units available)")
        _assert_same_as_frozen(levels, levels, where)
        return
    available = as_available(stock)
    if available:
        _assert_same_as_frozen({**case, "stock": available}, case, where + " (units available)")
    _assert_same_as_frozen(case, case, where)


def _assert_same_as_frozen(case: dict, frozen_case: dict, where: str) -> None:
    new = _outcome(allocate, case)
    old = _outcome(allocation_reference.allocate, frozen_case)
    if isinstance(old, Exception):
        assert type(new) is type(old) and str(new) == str(old), f"{where}: {new!r} != {old!r}"
        return
    assert isinstance(new, Allocation), f"{where}: {new!r}"
    assert _canonical(new) == _canonical(old), where
    assert new.model_fields_set == old.model_fields_set, where
    assert new.status == "planned" and isinstance(new.decided_at, str)
    assert all(type(x) is AllocatedLine for x in new.lines) and all(type(x) is BackorderedLine for x in new.backordered)
    assert all(type(x) is dict and list(x) == list(CandidateNote.__annotations__) and type(x["kept"]) is bool
               and all(type(x[k]) is str for k in ("warehouse_id", "rule", "reason")) for x in new.candidates), where


@pytest.mark.parametrize("block", range(8))
def test_random_orders_and_policies_decide_and_explain_as_before(block):
    rng = random.Random(1000 + block)
    for i in range(400):
        _assert_same(random_case(rng), f"block {block} case {i}")


@pytest.mark.parametrize("shape", [{}, {"lines_per_order": 10, "warehouse_count": 50}],
                         ids=["mixed", "10x50"])
def test_benchmark_orders_decide_and_explain_as_before(shape):
    for i, (lines, warehouses, stock, ship_to) in enumerate(make_cases(150, seed=11, **shape)):
        for policy in (AllocationPolicy(), AllocationPolicy(allow_line_split=True, rules=[
                Rule.STOCK, Rule.FEWEST_SHIPMENTS, Rule.PRIORITY, Rule.CLOSEST])):
            _assert_same({"lines": lines, "warehouses": warehouses, "stock": stock,
                          "kwargs": {"policy": policy, "ship_to": ship_to}}, f"case {i}")


def golden_digests(fn, *, levels: bool = False) -> dict[str, list[str]]:
    out = {}
    for name, count, shape in GOLDEN_SETS:
        out[name] = [_digest(fn(lines, warehouses, as_levels(stock) if levels else stock, policy=AllocationPolicy(),
                                ship_to=ship_to))
                     for lines, warehouses, stock, ship_to in make_cases(count, **shape)]
    return out


def test_benchmark_orders_match_the_golden_digests():
    expected = json.loads(GOLDEN.read_text())["digests"]
    actual = golden_digests(allocate)
    for name in expected:
        wrong = [i for i, (a, b) in enumerate(zip(actual[name], expected[name], strict=True)) if a != b]
        assert not wrong, f"{name}: cases {wrong[:10]} decide or explain differently ({len(wrong)} in all)"


if __name__ == "__main__":
    GOLDEN.parent.mkdir(parents=True, exist_ok=True)
    GOLDEN.write_text(json.dumps({
        "about": "sha256 (first 16 hex) of each plan (model_dump, mode json, without decided_at, keys sorted) the "
                 "planner made for benchmarks.allocation.make_cases(count, seed 7, shape) with the default policy; "
                 "written by python -m tests.unit.test_allocation_pinned_decisions from the frozen planner",
        "sets": {name: {"count": count, "shape": shape} for name, count, shape in GOLDEN_SETS},
        "digests": golden_digests(allocation_reference.allocate, levels=True)}, indent=1) + "\n")
    print(f"written {GOLDEN}")
