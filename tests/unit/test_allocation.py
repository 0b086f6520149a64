"""The allocation rule engine, with no AWS: every rule, its explanation and its tie-breaks."""

import pytest
from pydantic import ValidationError

from orderflow.errors import NoWarehouseCanAllocate, UnknownSku
from orderflow.models import Address, OrderLine, StockLevel, Warehouse
from orderflow.rules.allocation import AllocationPolicy, Pin, Rule, allocate, first_with_stock

NYC = Address(name="Customer", line1="1 Main St", city="New York", postal_code="10001", country="US")


def line(n, sku, qty):
    return OrderLine(line_no=n, sku=sku, quantity=qty, unit_price="1.00")


def wh(wid, priority=10, zip_code=None, cost=None, kind="own"):
    address = Address(name=wid, line1="x", city="x", postal_code=zip_code, country="US") if zip_code else None
    return Warehouse(warehouse_id=wid, name=wid, priority=priority, address=address, shipping_cost=cost, kind=kind)


def stock(*levels):
    out = {}
    for sku, wid, on_hand in levels:
        out.setdefault(sku, []).append(StockLevel(sku=sku, warehouse_id=wid, on_hand=on_hand))
    return out


def where(plan):
    return sorted({(al.line_no, al.warehouse_id, al.quantity) for al in plan.lines})


def test_equal_priority_warehouses_the_closest_ships():
    warehouses = [wh("reno", zip_code="89502"), wh("newark", zip_code="07114")]
    plan = allocate([line(1, "A", 1)], warehouses, stock(("A", "reno", 5), ("A", "newark", 5)), ship_to=NYC)
    assert where(plan) == [(1, "newark", 1)]
    dropped = next(n for n in plan.candidates if n["warehouse_id"] == "reno" and not n["kept"])
    assert dropped["rule"] == Rule.CLOSEST and "km away" in dropped["reason"]


def test_one_warehouse_holding_every_line_beats_a_split_even_when_farther():
    warehouses = [wh("near", zip_code="07114"), wh("far", zip_code="89502")]
    levels = stock(("A", "near", 5), ("B", "far", 5), ("A", "far", 5))
    plan = allocate([line(1, "A", 1), line(2, "B", 1)], warehouses, levels, ship_to=NYC)
    assert where(plan) == [(1, "far", 1), (2, "far", 1)]
    assert plan.summary == "1 shipment(s) from far"


def test_no_single_warehouse_gives_the_smallest_split():
    warehouses = [wh("a", 1), wh("b", 2), wh("c", 3)]
    levels = stock(("X", "a", 1), ("Y", "a", 1), ("Z", "b", 1), ("X", "c", 1), ("Z", "c", 0))
    plan = allocate([line(1, "X", 1), line(2, "Y", 1), line(3, "Z", 1)], warehouses, levels)
    assert where(plan) == [(1, "a", 1), (2, "a", 1), (3, "b", 1)]


def test_a_line_larger_than_any_warehouse_is_split_only_when_allowed():
    warehouses = [wh("a", 1), wh("b", 2)]
    levels = stock(("X", "a", 3), ("X", "b", 4))
    held = allocate([line(1, "X", 6)], warehouses, levels)
    assert held.lines == [] and [(b.sku, b.quantity) for b in held.backordered] == [("X", 6)]
    split = allocate([line(1, "X", 6)], warehouses, levels, policy=AllocationPolicy(allow_line_split=True))
    assert where(split) == [(1, "a", 3), (1, "b", 3)]
    assert split.backordered == []
    short = allocate([line(1, "X", 9)], warehouses, levels, policy=AllocationPolicy(allow_line_split=True))
    assert where(short) == [(1, "a", 3), (1, "b", 4)]
    assert [(b.sku, b.quantity) for b in short.backordered] == [("X", 2)]


def test_a_channel_pinned_to_a_warehouse_goes_there_only():
    warehouses = [wh("own", 1), wh("fba", 50, kind="fba")]
    levels = stock(("A", "own", 5), ("A", "fba", 5))
    policy = AllocationPolicy(pins=[Pin(channel="amazon", warehouse_ids=["fba"])])
    assert where(allocate([line(1, "A", 1)], warehouses, levels, policy=policy, channel="amazon")) == [(1, "fba", 1)]
    assert where(allocate([line(1, "A", 1)], warehouses, levels, policy=policy, channel="shop")) == [(1, "own", 1)]
    plan = allocate([line(1, "A", 1)], warehouses, levels, policy=policy, channel="amazon")
    assert any(n["rule"] == Rule.PINNED and n["warehouse_id"] == "own" and "channel amazon" in n["reason"]
               for n in plan.candidates)


def test_a_sku_pinned_to_its_dropship_supplier_splits_off():
    warehouses = [wh("own", 1), wh("supplier", 9, kind="dropship")]
    levels = stock(("A", "own", 5), ("DROP", "supplier", 99), ("DROP", "own", 99))
    policy = AllocationPolicy(pins=[Pin(sku="DROP", warehouse_ids=["supplier"])])
    plan = allocate([line(1, "A", 1), line(2, "DROP", 1)], warehouses, levels, policy=policy)
    assert where(plan) == [(1, "own", 1), (2, "supplier", 1)]


def test_the_order_of_rules_is_their_weight():
    warehouses = [wh("near-low", 50, "07114"), wh("far-high", 1, "89502")]
    levels = stock(("A", "near-low", 5), ("A", "far-high", 5))
    by_distance = allocate([line(1, "A", 1)], warehouses, levels, ship_to=NYC)
    by_priority = allocate([line(1, "A", 1)], warehouses, levels, ship_to=NYC, policy=AllocationPolicy(
        rules=[Rule.STOCK, Rule.FEWEST_SHIPMENTS, Rule.PRIORITY, Rule.CLOSEST]))
    assert where(by_distance) == [(1, "near-low", 1)]
    assert where(by_priority) == [(1, "far-high", 1)]


def test_cost_rule_picks_the_cheapest():
    warehouses = [wh("dear", 1, cost="9.50"), wh("cheap", 1, cost="4.10")]
    levels = stock(("A", "dear", 5), ("A", "cheap", 5))
    plan = allocate([line(1, "A", 1)], warehouses, levels,
                    policy=AllocationPolicy(rules=[Rule.STOCK, Rule.FEWEST_SHIPMENTS, Rule.COST]))
    assert where(plan) == [(1, "cheap", 1)]


def test_full_ties_break_by_warehouse_id_so_decisions_repeat():
    warehouses = [wh("b"), wh("a"), wh("c")]
    levels = stock(("A", "a", 1), ("A", "b", 1), ("A", "c", 1))
    plans = {tuple(where(allocate([line(1, "A", 1)], list(order), levels)))
             for order in (warehouses, warehouses[::-1])}
    assert plans == {((1, "a", 1),)}


def test_committed_stock_is_not_available_and_repeated_skus_add_up():
    levels = {"X": [StockLevel(sku="X", warehouse_id="a", on_hand=5, committed=4),
                    StockLevel(sku="X", warehouse_id="b", on_hand=4)]}
    plan = allocate([line(1, "X", 2), line(2, "X", 2)], [wh("a", 1), wh("b", 2)], levels)
    assert {al.warehouse_id for al in plan.lines} == {"b"}


def test_every_candidate_is_explained():
    warehouses = [wh("a", 1), wh("b", 2)]
    plan = allocate([line(1, "X", 3)], warehouses, stock(("X", "a", 1), ("X", "b", 5)))
    notes = {(n["warehouse_id"], n["rule"], n["kept"]): n["reason"] for n in plan.candidates}
    assert notes[("a", Rule.STOCK, False)] == "X needs 3, has 1"
    assert notes[("b", Rule.STOCK, True)] == "holds every line"
    assert plan.rule_set.startswith("policy/1: pinned > stock > fewest_shipments")


def test_unknown_sku_and_a_pin_to_nowhere_are_errors_not_backorders():
    with pytest.raises(UnknownSku, match="NOPE"):
        allocate([line(1, "NOPE", 1)], [wh("a")], stock(("X", "a", 1)))
    with pytest.raises(NoWarehouseCanAllocate, match="ghost"):
        allocate([line(1, "X", 1)], [wh("a")], stock(("X", "a", 1)),
                 policy=AllocationPolicy(pins=[Pin(sku="X", warehouse_ids=["ghost"])]))


def test_policy_refuses_nonsense():
    with pytest.raises(ValidationError, match="stock rule"):
        AllocationPolicy(rules=[Rule.CLOSEST])
    with pytest.raises(ValidationError, match="either a channel or a sku"):
        Pin(warehouse_ids=["a"], channel="x", sku="y")


def test_baseline_rule_is_the_first_warehouse_with_everything():
    assert first_with_stock([line(1, "X", 2)], [wh("b"), wh("a")], stock(("X", "a", 1), ("X", "b", 2))) == "b"
