"""In-memory adapters for every port of orderflow.ports: the domain (orderflow.orders, .service,
.workflow.steps) runs on them with no AWS and no moto, in milliseconds. They keep the contracts the
domain relies on: optimistic concurrency on orders, a ledger applied once per key, tokens a workflow
can be resumed through once."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from typing import Any

from orderflow.errors import ConcurrentUpdate, InsufficientStock, NotFound
from orderflow.models import AllocatedLine, Order, OrderStatus, StockLevel, Warehouse
from orderflow.ports import Ports
from orderflow.rules.allocation import AllocationPolicy


class MemoryOrders:
    def __init__(self) -> None:
        self.items: dict[str, str] = {}  # order id -> the order's JSON (every read is a fresh copy)

    def get(self, order_id: str) -> Order:
        if order_id not in self.items:
            raise NotFound(f"order {order_id} not found", order_id=order_id)
        return Order.model_validate_json(self.items[order_id])

    def find_by_channel_ref(self, channel: str, external_id: str) -> Order | None:
        return next((o for o in map(self.get, self.items)
                     if (o.channel, o.external_id) == (channel, external_id)), None)

    def create(self, order: Order) -> tuple[Order, bool]:
        if order.channel and order.external_id and (known := self.find_by_channel_ref(order.channel,
                                                                                      order.external_id)):
            return known, False
        if order.order_id in self.items:
            return self.get(order.order_id), False
        self.items[order.order_id] = order.model_dump_json()
        return self.get(order.order_id), True

    def create_many(self, orders: list[Order]) -> list[tuple[Order, bool]]:
        return [self.create(order) for order in orders]

    def save(self, order: Order) -> Order:
        stored = self.get(order.order_id)
        if stored.version != order.version:
            raise ConcurrentUpdate(f"order {order.order_id} changed")
        order.version += 1
        self.items[order.order_id] = order.model_dump_json()
        return self.get(order.order_id)

    def update(self, order_id: str, change: Callable[[Order], Any], attempts: int = 8, *,
               current: Order | None = None) -> Order:
        for attempt in range(attempts):
            order = current.model_copy(deep=True) if attempt == 0 and current is not None else self.get(order_id)
            if change(order) is False:
                return order
            try:
                return self.save(order)
            except ConcurrentUpdate:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def list_by_status(self, status: OrderStatus, limit: int = 50, cursor: dict | None = None,
                       oldest_first: bool = False) -> tuple[list[Order], dict | None]:
        found = sorted((o for o in map(self.get, self.items) if o.status == status), key=lambda o: o.updated_at,
                       reverse=not oldest_first)
        return found[:limit], None

    def count_by_status(self, status: OrderStatus) -> int:
        return len(self.list_by_status(status, limit=10**9)[0])


class MemoryLedger:
    def __init__(self) -> None:
        self.stock: dict[tuple[str, str], StockLevel] = {}
        self.applied: set[tuple[str, str, int, str]] = set()  # (key, kind, line, warehouse)
        self.listeners: list[Callable[[list[str]], None]] = []

    def set_on_hand(self, sku: str, warehouse_id: str, on_hand: int) -> None:
        level = self.stock.setdefault((sku, warehouse_id), StockLevel(sku=sku, warehouse_id=warehouse_id))
        level.on_hand = on_hand
        self._changed([sku])

    def _changed(self, skus: list[str]) -> None:
        for listener in self.listeners:
            listener(skus)

    def levels(self, sku: str) -> list[StockLevel]:
        return [lv.model_copy() for (s, _), lv in sorted(self.stock.items()) if s == sku]

    def available_for(self, skus: Iterable[str]) -> dict[str, dict[str, int]]:
        return {sku: {lv.warehouse_id: lv.available for lv in self.levels(sku)} for sku in set(skus)}

    def known_skus(self, skus: Iterable[str]) -> set[str]:
        return {s for s in skus if any(k[0] == s for k in self.stock)}

    def all_levels(self) -> dict[str, list[StockLevel]]:
        return {sku: self.levels(sku) for sku in sorted({s for s, _ in self.stock})}

    def _apply(self, key: str, kind: str, lines: list[AllocatedLine], change: Callable[[StockLevel, int], None],
               requires: str | None = None) -> bool:
        todo = [ln for ln in lines if (key, kind, ln.line_no, ln.warehouse_id) not in self.applied
                and (requires is None or (key, requires, ln.line_no, ln.warehouse_id) in self.applied)]
        for ln in todo:
            change(self.stock[(ln.sku, ln.warehouse_id)], ln.quantity)
            self.applied.add((key, kind, ln.line_no, ln.warehouse_id))
        if todo:
            self._changed(sorted({ln.sku for ln in todo}))
        return bool(todo)

    def reserve(self, key: str, lines: list[AllocatedLine]) -> bool:
        for ln in lines:
            level = self.stock.get((ln.sku, ln.warehouse_id))
            if (key, "reserve", ln.line_no, ln.warehouse_id) not in self.applied and (
                    level is None or level.available < ln.quantity):
                raise InsufficientStock(f"{ln.sku} at {ln.warehouse_id}: not enough available")

        def commit(level: StockLevel, n: int) -> None:
            level.committed += n
        return self._apply(key, "reserve", lines, commit)

    def release(self, key: str, lines: list[AllocatedLine]) -> bool:
        def give_back(level: StockLevel, n: int) -> None:
            level.committed -= n
        return self._apply(key, "release", lines, give_back, requires="reserve")

    def ship(self, key: str, lines: list[AllocatedLine]) -> bool:
        def take_off(level: StockLevel, n: int) -> None:
            level.committed -= n
            level.on_hand -= n
        return self._apply(key, "ship", lines, take_off, requires="reserve")


class MemorySettings:
    table = "memory"

    def __init__(self, warehouses: list[Warehouse] | None = None, policy: AllocationPolicy | None = None) -> None:
        self._warehouses = {w.warehouse_id: w for w in warehouses or []}
        self.policy = policy or AllocationPolicy()
        self.docs: dict[tuple[str, str], Any] = {}

    def put_warehouse(self, warehouse: Warehouse) -> None:
        self._warehouses[warehouse.warehouse_id] = warehouse

    def warehouses(self) -> list[Warehouse]:
        return list(self._warehouses.values())

    def warehouse(self, warehouse_id: str) -> Warehouse:
        if warehouse_id not in self._warehouses:
            raise NotFound(f"warehouse {warehouse_id} not found", warehouse_id=warehouse_id)
        return self._warehouses[warehouse_id]

    def allocation_policy(self) -> AllocationPolicy:
        return self.policy

    def get_doc(self, entity: str, doc_id: str, model: type) -> Any:
        raw = self.docs.get((entity, doc_id))
        return None if raw is None else model.model_validate_json(raw)

    def put_doc(self, entity: str, doc_id: str, doc: Any, *, new: bool = False) -> None:
        self.docs[(entity, doc_id)] = doc.model_dump_json()

    def list_docs(self, entity: str, model: type) -> list[Any]:
        return [model.model_validate_json(raw) for (kind, _), raw in sorted(self.docs.items()) if kind == entity]


class MemoryWorkflow:
    """Executions by name; a token is waiting until it is resumed or abandoned once."""

    def __init__(self) -> None:
        self.started: list[str] = []
        self.running: set[str] = set()
        self.waiting: set[str] = set()
        self.resumed: list[tuple[str, dict]] = []
        self.abandoned: list[tuple[str, str]] = []
        self.stopped: list[tuple[str, str]] = []
        self._tokens = itertools.count(1)

    def token(self) -> str:
        """A task token the engine hands a waiting step."""
        token = f"token-{next(self._tokens)}"
        self.waiting.add(token)
        return token

    def start(self, order_id: str, attempt: int = 1) -> str | None:
        name = order_id if attempt == 1 else f"{order_id}-r{attempt}"
        if name not in self.running:
            self.started.append(name)
            self.running.add(name)
        return name

    def status(self, order_id: str, attempt: int = 1) -> str | None:
        name = order_id if attempt == 1 else f"{order_id}-r{attempt}"
        return "RUNNING" if name in self.running else None

    def execution_status(self, execution_id: str) -> str | None:
        return "RUNNING" if execution_id in self.running else None

    def resume(self, task_token: str, output: dict[str, Any]) -> bool:
        if task_token not in self.waiting:
            return False
        self.waiting.discard(task_token)
        self.resumed.append((task_token, output))
        return True

    def abandon(self, task_token: str, error: str, cause: str) -> bool:
        if task_token not in self.waiting:
            return False
        self.waiting.discard(task_token)
        self.abandoned.append((task_token, error))
        return True

    def stop(self, order_id: str, attempt: int, error: str, cause: str) -> bool:
        self.stopped.append((order_id, error))
        self.running.discard(order_id if attempt == 1 else f"{order_id}-r{attempt}")
        return True


class MemoryQueues:
    """What was sent to each queue (orderflow.queues), in order."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, dict[str, Any]]] = []

    def url(self, queue: Any) -> str | None:
        return f"memory://{queue.key}"

    def send(self, queue: Any, body: dict[str, Any], *, group: str | None = None,
             dedup_id: str | None = None) -> None:
        self.sent.append((queue.key, body))


class NoChannels:
    def list(self, *, fresh: bool = False) -> list[Any]:
        return []

    def find(self, channel_id: str) -> Any | None:
        return None

    def client(self, config: Any, **options: Any) -> Any:
        raise AssertionError("no channel in these tests")


class NoPurchasing:
    def draft_for_backorders(self, *args: Any, **kwargs: Any) -> list:
        return []


def memory_ports(*warehouses: Warehouse, policy: AllocationPolicy | None = None) -> Ports:
    return Ports(orders=MemoryOrders(), inventory=MemoryLedger(), settings=MemorySettings(list(warehouses), policy),
                 workflow=MemoryWorkflow(), purchasing=NoPurchasing(), carriers=None, channels=NoChannels(),
                 queues=MemoryQueues())
