import pytest

from orderflow.errors import NoWarehouseCanAllocate, UnknownSku
from orderflow.models import OrderLine, StockLevel, Warehouse
from orderflow.rules.allocation import RULE_SET, allocate


def line(n, sku, qty):
    return OrderLine(line_no=n, sku=sku, quantity=qty, unit_price="1.00")


def stock(*levels):
    out = {}
    for sku, wh, on_hand, committed in levels:
        out.setdefault(sku, []).append(StockLevel(sku=sku, warehouse_id=wh, on_hand=on_hand, committed=committed))
    return out


WAREHOUSES = [Warehouse(warehouse_id="b", name="B", priority=20),
              Warehouse(warehouse_id="a", name="A", priority=10),
              Warehouse(warehouse_id="c", name="C", priority=10)]


def test_first_warehouse_by_priority_that_holds_every_line_ships_it_all():
    levels = stock(("X", "a", 5, 0), ("X", "b", 9, 0), ("Y", "b", 9, 0), ("X", "c", 9, 0), ("Y", "c", 1, 0))
    plan = allocate([line(1, "X", 2), line(2, "Y", 1)], WAREHOUSES, levels)
    assert plan.rule_set == RULE_SET
    assert {al.warehouse_id for al in plan.lines} == {"c"}  # a lacks Y; c (priority 10) beats b (20)
    kept = [n for n in plan.candidates if n.kept]
    assert [n.warehouse_id for n in kept] == ["c"]
    dropped = {n.warehouse_id: n.reason for n in plan.candidates if not n.kept}
    assert dropped == {"a": "Y needs 1, has 0"}


def test_ties_on_priority_break_by_warehouse_id():
    levels = stock(("X", "a", 5, 0), ("X", "c", 5, 0))
    assert allocate([line(1, "X", 1)], WAREHOUSES, levels).lines[0].warehouse_id == "a"


def test_committed_stock_is_not_available():
    levels = stock(("X", "a", 5, 4), ("X", "b", 5, 0))
    assert allocate([line(1, "X", 2)], WAREHOUSES, levels).lines[0].warehouse_id == "b"


def test_quantities_of_repeated_skus_add_up():
    levels = stock(("X", "a", 3, 0), ("X", "b", 4, 0))
    plan = allocate([line(1, "X", 2), line(2, "X", 2)], WAREHOUSES, levels)
    assert {al.warehouse_id for al in plan.lines} == {"b"}


def test_unknown_sku_names_the_sku():
    with pytest.raises(UnknownSku, match="NOPE"):
        allocate([line(1, "NOPE", 1)], WAREHOUSES, stock(("X", "a", 1, 0)))


def test_no_warehouse_explains_every_candidate():
    levels = stock(("X", "a", 1, 0), ("X", "b", 1, 0))
    with pytest.raises(NoWarehouseCanAllocate) as err:
        allocate([line(1, "X", 5)], WAREHOUSES, levels)
    assert "a: X needs 5, has 1" in err.value.message and "c: X needs 5, has 0" in err.value.message
