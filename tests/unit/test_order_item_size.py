"""Security review (issue 11, item 5): an order is one DynamoDB item (400 KB at most) and must stay so.

The worst case is built through the real workflow steps and service functions over in-memory ports
whose order store is the real repository serialization (``OrderRepository._to_item``, i.e. ``to_item``)
and refuses an item DynamoDB would refuse: MAX_ORDER_LINES lines of the longest SKUs, 20 warehouses
with the longest ids each short on every line, many rounds of waiting for stock and of stock moving
away, 20 shipments and hundreds of events. The order must stay well under the limit and still cancel.
"""

from __future__ import annotations

import json
import typing
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError
from pydantic import ValidationError

from orderflow.adapters.dynamodb import ConcurrentUpdate, OrderRepository, from_item
from orderflow.errors import InsufficientStock, NotFound, StockMoved
from orderflow.models import (
    MAX_EVENTS,
    MAX_ORDER_LINES,
    MAX_PAST_PLANS,
    AllocatedLine,
    NewOrder,
    Order,
    OrderStatus,
    StockLevel,
    Warehouse,
)
from orderflow.orders import take_stock_wait_token
from orderflow.rules.allocation import AllocationPolicy
from orderflow.service import cancel_order
from orderflow.workflow.steps import (
    AwaitInput,
    allocate_order,
    await_fulfilment,
    reduce_inventory,
    route_fulfillment,
)

DYNAMODB_ITEM_LIMIT = 400 * 1024
BUDGET = 350 * 1024
#: Rounds of waiting for stock, then of stock moving away before the plan is reserved (each adds a plan).
ROUNDS = 12


def dynamodb_size(value: dict[str, Any]) -> int:
    """DynamoDB's own item-size rule (names + values; 3 bytes per list/map, 1 per element)."""

    def size(v: dict[str, Any]) -> int:
        (kind, inner), = v.items()
        if kind == "S":
            return len(inner.encode())
        if kind == "N":
            return (len(inner.lstrip("-").replace(".", "")) + 1) // 2 + 1
        if kind in ("BOOL", "NULL"):
            return 1
        if kind == "M":
            return 3 + sum(len(k.encode()) + size(x) + 1 for k, x in inner.items())
        if kind == "L":
            return 3 + sum(size(x) + 1 for x in inner)
        raise AssertionError(kind)

    return sum(len(k.encode()) + size(v) for k, v in value.items())


def serialized_size(item: dict[str, Any]) -> int:
    """The repository's item as JSON text: an upper bound of what DynamoDB counts."""
    return len(json.dumps(item, separators=(",", ":")).encode())


class MemoryOrders(OrderRepository):
    """The order repository with a dict for a table: same serialization, same 400 KB refusal."""

    def __init__(self) -> None:
        self.items: dict[str, dict[str, Any]] = {}

    def _put(self, order: Order) -> None:
        item = self._to_item(order)
        if dynamodb_size(item) > DYNAMODB_ITEM_LIMIT:
            raise ClientError({"Error": {"Code": "ValidationException",
                                         "Message": "Item size has exceeded the maximum allowed size"}}, "PutItem")
        self.items[order.order_id] = item

    def get(self, order_id: str) -> Order:
        if order_id not in self.items:
            raise NotFound(f"order {order_id} not found", order_id=order_id)
        return Order.model_validate(from_item(self.items[order_id]))

    def create(self, order: Order) -> tuple[Order, bool]:
        self._put(order)
        self._saved(order)
        return order, True

    def save(self, order: Order) -> Order:
        stored = self.items.get(order.order_id)
        if stored is not None and int(stored["version"]["N"]) != order.version:
            raise ConcurrentUpdate(f"order {order.order_id} changed")
        order.version += 1
        try:
            self._put(order)
        except ClientError:
            order.version -= 1
            raise
        self._saved(order)
        return order


class MemoryInventory:
    """Stock levels with an idempotent ledger; ``moves`` makes the next reservations find stock gone."""

    def __init__(self, levels: dict[str, list[StockLevel]]) -> None:
        self.stock = levels
        self.ledger: set[tuple[str, int, str, str]] = set()
        self.listeners: list = []
        self.moves = 0

    def available_for(self, skus):
        return {sku: {lvl.warehouse_id: lvl.available for lvl in self.stock.get(sku, [])} for sku in set(skus)}

    def known_skus(self, skus):
        return {s for s in skus if s in self.stock}

    def _level(self, line: AllocatedLine) -> StockLevel:
        return next(lvl for lvl in self.stock[line.sku] if lvl.warehouse_id == line.warehouse_id)

    def reserve(self, key: str, lines: list[AllocatedLine]) -> bool:
        if self.moves:
            self.moves -= 1
            raise InsufficientStock(f"{lines[0].sku} at {lines[0].warehouse_id}: someone else took it")
        if all((key, ln.line_no, ln.warehouse_id, "reserve") in self.ledger for ln in lines):
            return False
        for ln in lines:
            self._level(ln).committed += ln.quantity
            self.ledger.add((key, ln.line_no, ln.warehouse_id, "reserve"))
        return True

    def release(self, key: str, lines: list[AllocatedLine]) -> bool:
        released = False
        for ln in lines:
            mark = (key, ln.line_no, ln.warehouse_id, "release")
            if (key, ln.line_no, ln.warehouse_id, "reserve") in self.ledger and mark not in self.ledger:
                self._level(ln).committed -= ln.quantity
                self.ledger.add(mark)
                released = True
        return released

    def ship(self, key: str, lines: list[AllocatedLine]) -> bool:
        raise AssertionError("nothing ships in this test")


class MemorySettings:
    def __init__(self, warehouses: list[Warehouse], policy: AllocationPolicy) -> None:
        self._warehouses, self._policy = warehouses, policy

    def warehouses(self) -> list[Warehouse]:
        return list(self._warehouses)

    def allocation_policy(self) -> AllocationPolicy:
        return self._policy


class MemoryWorkflow:
    def __init__(self) -> None:
        self.resumed: list[str] = []
        self.abandoned: list[str] = []

    def start(self, order_id: str, attempt: int = 1) -> None:
        pass

    def resume(self, token: str, output: dict) -> bool:
        self.resumed.append(token)
        return True

    def abandon(self, token: str, error: str, cause: str) -> bool:
        self.abandoned.append(token)
        return True


def long_id(prefix: str, n: int) -> str:
    """The longest SKU / warehouse id there may be (64 characters)."""
    return f"{prefix}{n:04d}".ljust(64, "X")


def worst_case() -> tuple[SimpleNamespace, Order]:
    warehouses = [Warehouse(warehouse_id=long_id("W", w), name=f"Warehouse {w}", priority=w) for w in range(20)]
    skus = [long_id("SKU", n) for n in range(MAX_ORDER_LINES)]
    levels = {sku: [StockLevel(sku=sku, warehouse_id=w.warehouse_id, on_hand=0) for w in warehouses] for sku in skus}
    ports = SimpleNamespace(
        orders=MemoryOrders(), inventory=MemoryInventory(levels), workflow=MemoryWorkflow(),
        settings=MemorySettings(warehouses, AllocationPolicy(backorder="hold", allow_line_split=True)),
        purchasing=SimpleNamespace(draft_for_backorders=lambda order: []),
        channels=SimpleNamespace(find=lambda channel_id: None), routes=())
    new = NewOrder.model_validate({
        "lines": [{"sku": sku, "quantity": 99_999, "unit_price": "12345.6789"} for sku in skus],
        "shipping_address": {"name": "N" * 200, "company": "C" * 200, "line1": "L" * 200, "line2": "M" * 200,
                             "city": "Y" * 200, "region": "R" * 200, "postal_code": "P" * 20, "country": "US",
                             "phone": "1" * 40},
        "customer": {"name": "N" * 200, "email": "e" * 200 + "@example.com"},
        "channel": "c" * 64, "external_id": "x" * 128})
    order, _ = ports.orders.create(Order.from_new(new))
    return ports, order


def test_the_worst_case_order_stays_well_under_the_item_limit_and_can_still_be_cancelled():
    ports, order = worst_case()
    oid = order.order_id
    skus = [line.sku for line in order.lines]
    warehouses = ports.settings.warehouses()

    # 1. no stock anywhere, round after round: every warehouse is short on every line
    for _round in range(ROUNDS):
        assert allocate_order(oid, ports)["wait_for_stock"] is True
        await_fulfilment(AwaitInput(order_id=oid, task_token="token"), ports)
        assert take_stock_wait_token(oid, ports, resume=True)
    assert ports.orders.get(oid).status == OrderStatus.AWAITING_STOCK

    # 2. stock arrives spread over the 20 warehouses, but moves away before every plan is reserved
    for i, sku in enumerate(skus):
        for level in ports.inventory.stock[sku]:
            level.on_hand = 99_999 if level.warehouse_id == warehouses[i % 20].warehouse_id else 5
    ports.inventory.moves = ROUNDS
    for _ in range(ROUNDS):
        assert allocate_order(oid, ports)["wait_for_stock"] is False
        with pytest.raises(StockMoved):
            reduce_inventory(oid, ports)

    # 3. the last plan holds: 20 shipments, all waiting for their tracking (one wait for the order)
    allocate_order(oid, ports)
    assert reduce_inventory(oid, ports)["reserved"] is True
    routed = route_fulfillment(oid, ports)
    assert len(routed["shipments"]) == 20
    assert await_fulfilment(AwaitInput(order_id=oid, task_token="token"), ports)["waits_for"] \
        == "shipments"

    # 4. a long life of notes (failed channel updates and the like), each with a long detail
    for n in range(MAX_EVENTS + 20):
        ports.orders.update(oid, lambda o, n=n: o.record("channel_update_failed", f"attempt {n}: " + "e" * 5000))

    order = ports.orders.get(oid)
    assert order.status == OrderStatus.PAID
    item = ports.orders.items[oid]
    size = serialized_size(item)
    assert size < BUDGET, f"the order item is {size} bytes serialized"
    assert dynamodb_size(item) < BUDGET
    # what was capped says so, and what matters is all there
    assert len(order.events) == MAX_EVENTS and order.events[0].type == "created" and order.events_dropped > 0
    assert order.plans_dropped == 2 * ROUNDS - MAX_PAST_PLANS
    assert len(order.allocations) == MAX_PAST_PLANS + 1
    assert order.allocation.plan_no == 2 * ROUNDS + 1  # plan numbers go on: stock keys use them
    assert order.allocation.status == "reserved" and len(order.allocation.lines) == MAX_ORDER_LINES
    assert order.allocation.candidates and all(len(n["reason"]) <= 500 for n in order.allocation.candidates)
    short = [n["reason"] for p in order.allocations for n in p.candidates if n["reason"].startswith("short on")]
    assert all(" more" in r for r in short)
    assert order.outstanding() == []

    # 5. and it can still be cancelled: the stock goes back, the waiting execution is ended
    ports.workflow.abandoned.clear()
    cancelled = cancel_order(oid, ports, reason="customer changed their mind")
    assert cancelled.status == OrderStatus.CANCELLED
    assert {e.type for e in cancelled.events[-2:]} == {"cancelled", "stock_released"}
    assert ports.workflow.abandoned == ["token"]
    assert all(lvl.committed == 0 for levels in ports.inventory.stock.values() for lvl in levels)
    assert serialized_size(ports.orders.items[oid]) < BUDGET


def test_the_first_plan_of_the_worst_case_is_small():
    """The review's case: 250 lines, 20 warehouses each short on every line (~507 KB before)."""
    ports, order = worst_case()
    allocate_order(order.order_id, ports)
    plan = ports.orders.get(order.order_id).allocation
    assert plan.status == "waiting" and len(plan.backordered) == MAX_ORDER_LINES
    notes = serialized_size({"c": list(plan.candidates)})
    assert notes < 20 * 1024
    assert plan.summary.endswith(f"and {MAX_ORDER_LINES - 5} more")


def test_the_api_line_limit_is_the_one_the_size_budget_assumes():
    line = {"sku": "A", "quantity": 1, "unit_price": "1.00"}
    address = {"name": "A", "line1": "1 Main St", "city": "X", "postal_code": "1", "country": "US"}
    assert len(NewOrder.model_validate({"lines": [line] * MAX_ORDER_LINES, "shipping_address": address}).lines) \
        == MAX_ORDER_LINES
    with pytest.raises(ValidationError, match="at most 250"):
        NewOrder.model_validate({"lines": [line] * (MAX_ORDER_LINES + 1), "shipping_address": address})
    from orderflow.api import app  # POST /orders takes exactly this model

    assert typing.get_type_hints(app.create_order)["order"] is NewOrder


def test_capped_events_keep_the_first_and_the_newest_and_log_only_new_ones():
    ports, order = worst_case()
    oid = order.order_id
    for n in range(MAX_EVENTS + 30):
        ports.orders.update(oid, lambda o, n=n: o.record("note", str(n)))
    order = ports.orders.get(oid)
    assert len(order.events) == MAX_EVENTS and order.events_dropped == 31
    assert order.events[0].type == "created" and order.events[-1].detail == str(MAX_EVENTS + 29)
    assert [e.detail for e in order.events[1:3]] == ["31", "32"]
    order.record("one_more", "x")
    assert [e.type for e in order.unsaved_events()] == ["one_more"]
