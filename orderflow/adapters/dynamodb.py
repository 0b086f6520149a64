"""DynamoDB repositories for orders, stock, the stock ledger and seller settings.

Storage failures become domain errors here (throttling and transaction conflicts are
:class:`TransientError`, which the workflow retries), so no other module sees a ``ClientError``.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from decimal import Decimal
from typing import Any, TypeVar

from botocore.exceptions import ClientError

from orderflow.adapters import stock_shards
from orderflow.adapters.aws import client
from orderflow.errors import ConcurrentUpdate, Conflict, InsufficientStock, NotFound, TransientError  # noqa: F401 - ConcurrentUpdate is raised here (and imported from here by older code)
from orderflow.models import (
    AllocatedLine,
    Document,
    Order,
    OrderStatus,
    StockLevel,
    Warehouse,
    channel_order_id,
    utcnow,
)
from orderflow.observability import log_order_events
from orderflow.rules.allocation import AllocationPolicy
from orderflow.settings import Settings, get_settings

M = TypeVar("M", bound=Document)

log = logging.getLogger(__name__)

TRANSIENT_CODES = {
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
    "TransactionInProgressException",
}
#: Items per DynamoDB transaction (the service limit is 100).
TRANSACTION_LIMIT = 100
#: Bytes of items per transaction we send at most, counted as the JSON of the orders (a little longer than
#: their DynamoDB size; the service limit is 4 MB).
TRANSACTION_BYTES = 3_500_000


def _typed(value: Any) -> dict[str, Any]:
    """``TypeSerializer.serialize`` for what a JSON dump holds (str, dict, list, bool, None, int): the same
    attribute values, five times faster (each order written goes through here); anything else (Decimal,
    sets, bytes, str subclasses; floats, which it refuses) goes to boto3's serializer."""
    kind = type(value)
    if kind is str:
        return {"S": value}
    if kind is dict:
        return {"M": {k: _typed(v) for k, v in value.items()}}
    if kind is list:
        return {"L": [_typed(v) for v in value]}
    if kind is bool:
        return {"BOOL": value}
    if value is None:
        return {"NULL": True}
    if kind is int and -_INT_LIMIT < value < _INT_LIMIT:
        return {"N": str(value)}
    return _boto3_types().TypeSerializer().serialize(value)


def _boto3_types() -> Any:
    """boto3's DynamoDB type (de)serializers, for what the plain conversions here leave to them (Decimal,
    sets, binary): imported on that first use, since ``boto3.dynamodb`` imports the whole of boto3 (some
    25 ms of every function's cold start, which the clients, on botocore, do not need)."""
    from boto3.dynamodb import types

    return types


#: DynamoDB numbers have 38 digits of precision; larger integers go to boto3's serializer (which refuses them).
_INT_LIMIT = 10**38


def to_item(data: dict[str, Any]) -> dict[str, Any]:
    return {k: _typed(v) for k, v in data.items()}


def _plain(value: Any) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else str(value)
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _units(item: dict[str, Any], attribute: str) -> int:
    """A stock item's count (``on_hand``, ``committed``) as stored, 0 when the item has none."""
    value = item.get(attribute)
    return int(value["N"]) if value is not None else 0


def _untyped(value: dict[str, Any]) -> Any:
    """An attribute value as ``_plain(TypeDeserializer().deserialize(value))`` gives it: str, int (an integral
    number), str (any other number, as written), bool, None, dict, list; binary and sets through boto3's own."""
    try:
        (kind, data), = value.items()
    except ValueError:  # not one type and value: boto3's deserializer says what is wrong
        return _plain(_boto3_types().TypeDeserializer().deserialize(value))
    if kind == "S":
        return data
    if kind == "M":
        return {k: _untyped(v) for k, v in data.items()}
    if kind == "N":
        return _plain(Decimal(data))
    if kind == "L":
        return [_untyped(v) for v in data]
    if kind == "BOOL":
        return data
    if kind == "NULL":
        return None
    return _plain(_boto3_types().TypeDeserializer().deserialize(value))


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _untyped(v) for k, v in item.items()}


@contextmanager
def storage_errors() -> Iterator[None]:
    """Turn a throttle or a transaction conflict into :class:`TransientError`."""
    try:
        yield
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        if code in TRANSIENT_CODES:
            raise TransientError(f"DynamoDB is busy ({code}); retry", code=code) from err
        raise


def query_all(**kwargs: Any) -> list[dict[str, Any]]:
    """Every item a query answers, read page by page (the one query loop: settings documents, channel
    configurations, FBA records...)."""
    items: list[dict[str, Any]] = []
    with storage_errors():
        while True:
            resp = client("dynamodb").query(**kwargs)
            items.extend(resp.get("Items", []))
            if "LastEvaluatedKey" not in resp:
                return items
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def query_entity(table: str, entity: str, *, consistent: bool = False) -> list[dict[str, Any]]:
    """Every item of one kind (``entity``) in the settings table."""
    kwargs: dict[str, Any] = {"TableName": table, "KeyConditionExpression": "entity = :e",
                              "ExpressionAttributeValues": {":e": {"S": entity}}}
    if consistent:
        kwargs["ConsistentRead"] = True
    return query_all(**kwargs)


def _cancellation_codes(err: ClientError) -> list[str]:
    return [r.get("Code", "None") for r in err.response.get("CancellationReasons", [])]


def batch_get_items(table: str, keys: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The items of these (distinct) DynamoDB keys that exist, read consistently, 100 keys per BatchGetItem;
    keys DynamoDB leaves unprocessed are asked again with backoff, then TransientError."""
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        pending: dict[str, Any] = {table: {"Keys": keys[start:start + 100], "ConsistentRead": True}}
        for attempt in range(10):
            with storage_errors():
                resp = client("dynamodb").batch_get_item(RequestItems=pending)
            items.extend(resp.get("Responses", {}).get(table, []))
            pending = resp.get("UnprocessedKeys") or {}
            if not pending:
                break
            time.sleep(min(0.05 * 2 ** attempt, 1.0))
        else:
            raise TransientError(f"DynamoDB left items of {table} unread; retry")
    return items


def batch_get(table: str, keys: list[str], key_name: str = "order_id") -> list[dict[str, Any]]:
    """:func:`batch_get_items` of string keys named ``key_name``."""
    return batch_get_items(table, [{key_name: {"S": k}} for k in keys])


def _order(item: dict[str, Any]) -> Order | None:
    return Order.model_validate(from_item(item)) if "status" in item else None


def find_channel_orders(table: str, channel: str, external_ids: Iterable[str]) -> dict[str, Order]:
    """external id -> stored order, for those of the channel's ``external_ids`` that are stored, in batch
    reads: the order items under their derived ids (:func:`orderflow.models.channel_order_id`), then, for
    the ids not found, the guard items ``ref#<channel>#<external id>`` of orders stored before the ids were
    derived (a random id; ``target`` names it) and the orders they name. For a page of new orders: one
    ``BatchGetItem`` per 50 orders (two per 100 keys), a third only when old orders are among them."""
    wanted = list(dict.fromkeys(external_ids))
    by_id = {channel_order_id(channel, e): e for e in wanted}
    found: dict[str, Order] = {}
    for item in batch_get(table, list(by_id)):
        order = _order(item)
        if order is not None:
            found[by_id[order.order_id]] = order
    prefix = f"ref#{channel}#"
    missing = [prefix + e for e in wanted if e not in found]
    targets = {item["target"]["S"]: item["order_id"]["S"][len(prefix):]
               for item in (batch_get(table, missing) if missing else []) if "target" in item}
    for item in batch_get(table, list(targets)) if targets else []:
        order = _order(item)
        if order is not None:
            found[targets[order.order_id]] = order
    return found


class OrderRepository:
    def __init__(self, settings: Settings | None = None) -> None:
        self.table = (settings or get_settings()).orders_table

    @staticmethod
    def _to_item(order: Order) -> dict[str, Any]:
        data = order.model_dump(mode="json", exclude={"total"})
        if order.channel and order.external_id:
            data["channel_ref"] = f"{order.channel}#{order.external_id}"
        return to_item(data)

    def get(self, order_id: str) -> Order:
        with storage_errors():
            resp = client("dynamodb").get_item(TableName=self.table, Key={"order_id": {"S": order_id}},
                                               ConsistentRead=True)
        if "Item" not in resp or "status" not in resp["Item"]:
            raise NotFound(f"order {order_id} not found", order_id=order_id)
        return Order.model_validate(from_item(resp["Item"]))

    def find_by_channel_ref(self, channel: str, external_id: str) -> Order | None:
        """The order stored for this channel order (derived id, or an older order's guard item), or None."""
        return find_channel_orders(self.table, channel, [external_id]).get(external_id)

    @staticmethod
    def _check_id(order: Order) -> None:
        if order.channel and order.external_id and order.order_id != channel_order_id(order.channel,
                                                                                      order.external_id):
            raise ValueError(f"channel order {order.channel}#{order.external_id} must have the id "
                             "orderflow.models.channel_order_id derives (Order.from_new gives it)")

    def _put_new(self, order: Order, item: dict[str, Any] | None = None) -> dict[str, Any]:
        return {"TableName": self.table, "Item": item or self._to_item(order),
                "ConditionExpression": "attribute_not_exists(order_id)",
                "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}

    def create(self, order: Order) -> tuple[Order, bool]:
        """Store a new order: one conditional ``PutItem``. A channel order's id is derived from its channel
        and external id, so a second create of it returns the order stored first, with False. (Orders
        stored before that scheme are found by :meth:`find_by_channel_ref`, which callers ask first.)"""
        self._check_id(order)
        try:
            with storage_errors():
                client("dynamodb").put_item(**self._put_new(order))
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException" and order.channel:
                item = err.response.get("Item")
                return (_order(item) if item and "status" in item else self.get(order.order_id)), False
            raise
        self._saved(order)
        return order, True

    def create_many(self, orders: list[Order]) -> list[tuple[Order, bool] | None]:
        """Store new orders together: ``TransactWriteItems`` of conditional puts, each order one item, up to
        :data:`TRANSACTION_LIMIT` orders and :data:`TRANSACTION_BYTES` a call. Each order comes back as
        (order, True) when written now, (the stored order, False) when it was stored already (a channel
        order a webhook or another import stored first: the transaction is sent again without it), or
        None when its transaction could not be written otherwise (a conflict with another transaction, an
        item DynamoDB refuses, throttling): nothing of that transaction is written, and the caller writes
        those orders one by one with :meth:`create`, whose condition keeps each one single."""
        for order in orders:
            self._check_id(order)
        items = [self._to_item(order) for order in orders]
        results: list[tuple[Order, bool] | None] = [None] * len(orders)
        chunk: list[int] = []
        size = 0
        for i in range(len(orders)):
            item_size = len(orders[i].model_dump_json())  # about the item's size (a little more)
            if chunk and (len(chunk) == TRANSACTION_LIMIT or size + item_size > TRANSACTION_BYTES):
                self._create_together(orders, items, chunk, results)
                chunk, size = [], 0
            chunk.append(i)
            size += item_size
        if chunk:
            self._create_together(orders, items, chunk, results)
        return results

    def _create_together(self, orders: list[Order], items: list[dict[str, Any]], chunk: list[int],
                         results: list[tuple[Order, bool] | None]) -> None:
        pending = list(chunk)
        while pending:
            try:
                with storage_errors():
                    client("dynamodb").transact_write_items(
                        TransactItems=[{"Put": self._put_new(orders[i], items[i])} for i in pending])
            except (ClientError, TransientError) as err:
                codes = _cancellation_codes(err) if isinstance(err, ClientError) else []
                if (len(codes) == len(pending) and "ConditionalCheckFailed" in codes
                        and set(codes) <= {"None", "ConditionalCheckFailed"}):
                    reasons = err.response["CancellationReasons"]  # type: ignore[union-attr]
                    for i, reason in zip(pending, reasons, strict=True):
                        if reason.get("Code") == "ConditionalCheckFailed":
                            item = reason.get("Item")
                            results[i] = (_order(item) if item and "status" in item else self.get(orders[i].order_id),
                                          False)
                    pending = [i for i in pending if results[i] is None]
                    continue
                log.info("%d orders not written in one transaction (%s); the caller writes them one by one",
                         len(pending), ", ".join(sorted(set(codes) - {"None"})) or type(err).__name__)
                return
            for i in pending:
                self._saved(orders[i])
                results[i] = (orders[i], True)
            return

    @staticmethod
    def _saved(order: Order) -> None:
        log_order_events(order, order.unsaved_events())
        order.mark_saved()

    def save(self, order: Order) -> Order:
        """Write the order if nobody changed it since it was read (optimistic lock on ``version``)."""
        expected = order.version
        order.version = expected + 1
        try:
            with storage_errors():
                client("dynamodb").put_item(
                    TableName=self.table,
                    Item=self._to_item(order),
                    ConditionExpression="#v = :v",
                    ExpressionAttributeNames={"#v": "version"},
                    ExpressionAttributeValues={":v": {"N": str(expected)}},
                )
        except ClientError as err:
            order.version = expected
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise ConcurrentUpdate(f"order {order.order_id} changed while it was being updated") from err
            raise
        self._saved(order)
        return order

    def update(self, order_id: str, change: Callable[[Order], Any], attempts: int = 8, *,
               current: Order | None = None) -> Order:
        """Read, change, save; again on a concurrent update. ``change`` may return False to skip saving.
        ``current`` (the order as the caller last read or saved it) saves the first read: if someone saved it
        since, the conditional write fails and the next attempt reads it."""
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
                       oldest_first: bool = False, created_at_most: str | None = None,
                       ) -> tuple[list[Order], dict | None]:
        """One page of the orders in ``status``, newest first (or oldest first); with ``created_at_most``,
        only orders created at or before that time (how ``orderflow.order_search`` pages by time)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "IndexName": "by_status",
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": status.value}},
            "ScanIndexForward": oldest_first, "Limit": limit,
        }
        if created_at_most is not None:
            kwargs["KeyConditionExpression"] = "#s = :s AND #c <= :c"
            kwargs["ExpressionAttributeNames"]["#c"] = "created_at"
            kwargs["ExpressionAttributeValues"][":c"] = {"S": created_at_most}
        if cursor:
            kwargs["ExclusiveStartKey"] = cursor
        with storage_errors():
            resp = client("dynamodb").query(**kwargs)
        orders = [Order.model_validate(from_item(i)) for i in resp.get("Items", [])]
        return orders, resp.get("LastEvaluatedKey")

    def count_by_status(self, status: OrderStatus) -> int:
        """How many orders have ``status`` now (the by_status index, counted page by page: no items read back)."""
        kwargs: dict[str, Any] = {
            "TableName": self.table, "IndexName": "by_status", "Select": "COUNT",
            "KeyConditionExpression": "#s = :s",
            "ExpressionAttributeNames": {"#s": "status"},
            "ExpressionAttributeValues": {":s": {"S": status.value}},
        }
        total = 0
        while True:
            with storage_errors():
                resp = client("dynamodb").query(**kwargs)
            total += resp.get("Count", 0)
            if "LastEvaluatedKey" not in resp:
                return total
            kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


class InventoryRepository:
    """Stock per (sku, warehouse) with every change written to the ledger under an idempotency key.

    ``available`` is stored beside ``on_hand`` and ``committed`` so that a conditional write
    (``available >= :q``) can refuse to oversell; every write keeps ``available = on_hand - committed``.

    A level may be split over K shard items (:mod:`orderflow.adapters.stock_shards`: a hot SKU in a flash
    sale), each with its own ``on_hand``, ``committed`` and ``available`` and the same guards; reads answer
    the sums, so no caller sees shards. An unsharded level (K = 1, every level unless
    :meth:`set_shards` made it more) is one item, written exactly as before shards existed.
    """

    def __init__(self, settings: Settings | None = None) -> None:
        s = settings or get_settings()
        self.table = s.inventory_table
        self.ledger = s.ledger_table
        #: Called with the SKUs of every stock change that was applied (stock auto-sync listens).
        self.listeners: list[Callable[[list[str]], None]] = []
        #: Shards per (sku, warehouse) as last read (the allocation reads a SKU's levels just before its
        #: reservation). K only grows, so a count read earlier is never too high; a level not read yet
        #: counts as unsharded: its reservation tries shard 0, which every level has.
        self._shards: dict[tuple[str, str], int] = {}
        self._sku_shards: dict[str, int] = {}  # the most shards of any of a SKU's levels (its ledger's partitions)

    def _changed(self, skus: Iterable[str]) -> None:
        changed = list(dict.fromkeys(skus))
        for listener in self.listeners:
            listener(changed)

    # -- reads: every level summed over its shards ----------------------------------------------

    def _learn(self, sku: str, warehouse_id: str, shards: int) -> None:
        if len(self._shards) >= 100_000:
            self._shards.clear()
            self._sku_shards.clear()
        self._shards[(sku, warehouse_id)] = shards
        self._sku_shards[sku] = max(shards, self._sku_shards.get(sku, 1))

    @staticmethod
    def _shard_count(item: dict[str, Any]) -> int:
        return int(item["shards"]["N"]) if "shards" in item else 1

    def _batch_get(self, keys: list[dict[str, Any]]) -> dict[tuple[str, str], dict[str, Any]]:
        """Shard items by their (sku, warehouse_id) key values, read consistently."""
        return {(item["sku"]["S"], item["warehouse_id"]["S"]): item for item in batch_get_items(self.table, keys)}

    def _summed(self, sku: str, item: dict[str, Any], parts: dict[tuple[str, str], dict[str, Any]]) -> StockLevel:
        """The level of a base item (shard 0) with its other shards' units added."""
        data = from_item(item)
        warehouse_id = data["warehouse_id"]
        shards = int(data.get("shards", 1))
        self._learn(sku, warehouse_id, shards)
        if shards > 1:
            on_hand, committed = self._other_shards_units(sku, warehouse_id, shards, parts)
            data["on_hand"] = data.get("on_hand", 0) + on_hand
            data["committed"] = data.get("committed", 0) + committed
        return StockLevel.model_validate(data)

    @staticmethod
    def _other_shards_units(sku: str, warehouse_id: str, shards: int,
                            parts: dict[tuple[str, str], dict[str, Any]]) -> tuple[int, int]:
        """(on hand, committed) of the level's shards 1 to ``shards - 1`` as read into ``parts`` (by their
        key values); a shard not there counts nothing."""
        on_hand = committed = 0
        for n in range(1, shards):
            part = parts.get((stock_shards.suffixed(sku, n), stock_shards.suffixed(warehouse_id, n)))
            if part is not None:
                on_hand += _units(part, "on_hand")
                committed += _units(part, "committed")
        return on_hand, committed

    def _snapshot(self, sku: str, item: dict[str, Any]) -> StockLevel:
        """A sharded level summed from one TransactGetItems of all its shards: a move between shards (a
        reservation falling over, a rebalance) is seen whole or not at all, never counted twice or missed."""
        warehouse_id = item["warehouse_id"]["S"]
        shards = self._shard_count(item)
        for _ in range(stock_shards.ATTEMPTS):
            keys = [stock_shards.shard_key(sku, warehouse_id, n) for n in range(shards)]
            try:
                with storage_errors():
                    resp = client("dynamodb").transact_get_items(
                        TransactItems=[{"Get": {"TableName": self.table, "Key": key}} for key in keys])
            except ClientError as err:
                if err.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                continue  # a write to one of the shards was in flight: read again
            found = [r.get("Item") for r in resp["Responses"]]
            if found[0] is None:
                return self._summed(sku, item, {})
            if self._shard_count(found[0]) != shards:  # shards were added since: read them all
                shards = self._shard_count(found[0])
                continue
            parts = {(i["sku"]["S"], i["warehouse_id"]["S"]): i for i in found[1:] if i is not None}
            return self._summed(sku, found[0], parts)
        raise TransientError(f"the shards of {sku} at {warehouse_id} kept changing while read; retry", sku=sku)

    def all_levels(self) -> dict[str, list[StockLevel]]:
        """Every SKU's levels, SKUs in order (one scan, eventually consistent: for the scheduled sync
        sweep and the stock screen, not a hot path; a scan reads whole items whatever it projects)."""
        bases: list[dict[str, Any]] = []
        parts: dict[tuple[str, str], dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"TableName": self.table}
        with storage_errors():
            while True:
                resp = client("dynamodb").scan(**kwargs)
                for item in resp.get("Items", []):
                    if stock_shards.split_shard(item["sku"]["S"])[1]:
                        parts[(item["sku"]["S"], item["warehouse_id"]["S"])] = item
                    else:
                        bases.append(item)
                if "LastEvaluatedKey" not in resp:
                    break
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        by_sku: dict[str, list[StockLevel]] = {}
        for item in bases:  # a sharded level is read again, whole (the scan may have met a move half done)
            sku = item["sku"]["S"]
            level = self._snapshot(sku, item) if self._shard_count(item) > 1 else self._summed(sku, item, parts)
            by_sku.setdefault(level.sku, []).append(level)
        return {sku: sorted(by_sku[sku], key=lambda level: level.warehouse_id) for sku in sorted(by_sku)}

    def _base_items(self, sku: str) -> list[dict[str, Any]]:
        with storage_errors():
            resp = client("dynamodb").query(
                TableName=self.table, KeyConditionExpression="sku = :s",
                ExpressionAttributeValues={":s": {"S": sku}}, ConsistentRead=True,
            )
        return resp.get("Items", [])

    def levels(self, sku: str) -> list[StockLevel]:
        """The SKU's levels as shown and sent to channels (``GET /inventory/{sku}``, stock sync): a sharded
        level is read whole, in one transactional read of its shards (:meth:`_snapshot`)."""
        return [self._snapshot(sku, item) if self._shard_count(item) > 1 else self._summed(sku, item, {})
                for item in self._base_items(sku)]

    def available_for(self, skus: Iterable[str]) -> dict[str, dict[str, int]]:
        """The planning read (the allocation, stock released to waiting orders): the units available (on
        hand less committed) of each SKU by warehouse, as the planner takes them (an SKU with no level maps
        to an empty dict); plain ints from the items, no model per level (a 10-line order over 50
        warehouses reads 500 levels). One query per SKU and one BatchGetItem of the sharded levels'
        shards, strongly consistent but not one snapshot: a move between shards in flight can be counted
        twice or missed, which costs a plan at most (the reservation's guard, not this read, refuses to
        oversell; a short plan is planned again)."""
        found = {sku: self._base_items(sku) for sku in dict.fromkeys(skus)}
        wanted = [stock_shards.shard_key(sku, item["warehouse_id"]["S"], n)
                  for sku, items in found.items() for item in items for n in range(1, self._shard_count(item))]
        parts = self._batch_get(wanted) if wanted else {}
        out: dict[str, dict[str, int]] = {}
        for sku, items in found.items():
            units = out[sku] = {}
            for item in items:
                warehouse_id = item["warehouse_id"]["S"]
                available = _units(item, "on_hand") - _units(item, "committed")
                shards = self._shard_count(item)
                self._learn(sku, warehouse_id, shards)  # an unsharded level's short reservation needs no re-read
                if shards > 1:
                    on_hand, committed = self._other_shards_units(sku, warehouse_id, shards, parts)
                    available += on_hand - committed
                units[warehouse_id] = available
        return out

    def known_skus(self, skus: Iterable[str]) -> set[str]:
        """The SKUs that have a level (one query each; a level's shards are not read)."""
        return {sku for sku in dict.fromkeys(skus) if self._base_items(sku)}

    def shard_levels(self, sku: str, warehouse_id: str) -> list[dict[str, int]]:
        """The level's shards as they are now (read consistently): ``shard``, ``on_hand``, ``committed``,
        ``available`` each; one entry for an unsharded level, none for a level that does not exist. A level
        read as sharded before is read in one BatchGetItem of its shards (and of any added since)."""

        def key_of(n: int) -> tuple[str, str]:
            return stock_shards.suffixed(sku, n), stock_shards.suffixed(warehouse_id, n)

        known = self._shards.get((sku, warehouse_id), 1)
        if known > 1:
            found = self._batch_get([stock_shards.shard_key(sku, warehouse_id, n) for n in range(known)])
        else:
            with storage_errors():
                resp = client("dynamodb").get_item(TableName=self.table, ConsistentRead=True,
                                                   Key=stock_shards.shard_key(sku, warehouse_id, 0))
            found = {key_of(0): resp["Item"]} if "Item" in resp else {}
        if key_of(0) not in found:
            return []
        shards = self._shard_count(found[key_of(0)])
        self._learn(sku, warehouse_id, shards)
        if shards > known:
            found |= self._batch_get([stock_shards.shard_key(sku, warehouse_id, n) for n in range(known, shards)])
        out = []
        for n in range(shards):
            data = from_item(found.get(key_of(n), {}))
            on_hand, committed = int(data.get("on_hand", 0)), int(data.get("committed", 0))
            out.append({"shard": n, "on_hand": on_hand, "committed": committed, "available": on_hand - committed,
                        "in_debt": bool(data.get("in_debt", False))})
        return out

    # -- counts, receipts and adjustments ------------------------------------------------------

    #: The condition a count, receipt or adjustment of an unsharded level adds to its one item: if the level
    #: has shards, the write is refused and done over its shards instead.
    _UNSHARDED = "(attribute_not_exists(#k) OR #k <= :one)"

    def set_on_hand(self, sku: str, warehouse_id: str, on_hand: int, reason: str = "count") -> StockLevel:
        """Set the counted quantity; ``committed`` stays, ``available`` follows. The level and its
        ledger entry are written in one transaction."""
        now = utcnow()
        entry = {"Put": {"TableName": self.ledger, "Item": to_item({
            "entry_id": f"set#{sku}#{warehouse_id}#{now}#{secrets.token_hex(4)}", "sku": sku,
            "warehouse_id": warehouse_id, "kind": "set_on_hand", "on_hand": on_hand, "reason": reason,
            "at": now,
        })}}
        try:
            with storage_errors():
                client("dynamodb").transact_write_items(TransactItems=[
                    {"Update": {
                        "TableName": self.table,
                        "Key": {"sku": {"S": sku}, "warehouse_id": {"S": warehouse_id}},
                        "UpdateExpression": "SET on_hand = :n, #c = if_not_exists(#c, :zero), "
                                            "available = :n - if_not_exists(#c, :zero), updated_at = :now",
                        "ConditionExpression": self._UNSHARDED,
                        "ExpressionAttributeNames": {"#c": "committed", "#k": "shards"},
                        "ExpressionAttributeValues": {":n": {"N": str(on_hand)}, ":zero": {"N": "0"},
                                                      ":now": {"S": now}, ":one": {"N": "1"}},
                    }},
                    entry,
                ])
                resp = client("dynamodb").get_item(TableName=self.table, ConsistentRead=True,
                                                   Key={"sku": {"S": sku}, "warehouse_id": {"S": warehouse_id}})
        except ClientError as err:
            if err.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            if "TransactionConflict" in _cancellation_codes(err):
                raise TransientError(f"the count of {sku} at {warehouse_id} met another write; retry",
                                     sku=sku) from err
            if _cancellation_codes(err)[:1] != ["ConditionalCheckFailed"]:
                raise
            level = self._set_on_hand_sharded(sku, warehouse_id, on_hand, entry, now)
        else:
            level = StockLevel.model_validate(from_item(resp["Item"]))
        self._changed([sku])
        return level

    def _set_on_hand_sharded(self, sku: str, warehouse_id: str, on_hand: int, entry: dict[str, Any],
                             now: str) -> StockLevel:
        """A count of a sharded level: what is not committed is spread evenly over the shards, each shard's
        ``committed`` checked unchanged since read (a reservation in between: read and write again)."""
        for _ in range(stock_shards.ATTEMPTS):
            shards = self.shard_levels(sku, warehouse_id)
            committed = sum(s["committed"] for s in shards)
            items = [entry, *self._spread(sku, warehouse_id, shards, on_hand - committed, now, guard_available=False)]
            if self._transact(items):
                return StockLevel(sku=sku, warehouse_id=warehouse_id, on_hand=on_hand, committed=committed)
        raise TransientError(f"the shards of {sku} at {warehouse_id} kept changing during the count; retry",
                             sku=sku)

    def change_on_hand(self, entry_id: str, sku: str, warehouse_id: str, delta: int, *, kind: str,
                       reason: str) -> bool:
        """Add (receipt) or remove (adjustment) units, once per ``entry_id``. Units promised to orders
        cannot be removed this way. Returns False if this entry was applied before."""
        now = utcnow()
        update: dict[str, Any] = {
            "TableName": self.table,
            "Key": {"sku": {"S": sku}, "warehouse_id": {"S": warehouse_id}},
            "UpdateExpression": "SET on_hand = if_not_exists(on_hand, :zero) + :d, "
                                "#c = if_not_exists(#c, :zero), "
                                "available = if_not_exists(available, :zero) + :d, updated_at = :now",
            "ConditionExpression": self._UNSHARDED,
            "ExpressionAttributeNames": {"#c": "committed", "#k": "shards"},
            "ExpressionAttributeValues": {":d": {"N": str(delta)}, ":zero": {"N": "0"}, ":now": {"S": now},
                                          ":one": {"N": "1"}},
        }
        if delta < 0:
            update["ConditionExpression"] += " AND available >= :need"
            update["ExpressionAttributeValues"][":need"] = {"N": str(-delta)}
        entry = {"Put": {"TableName": self.ledger, "ConditionExpression": "attribute_not_exists(entry_id)",
                         "Item": to_item({"entry_id": entry_id, "sku": sku, "warehouse_id": warehouse_id,
                                          "kind": kind, "on_hand_change": delta, "committed_change": 0,
                                          "reason": reason, "at": now})}}
        codes = self._transact([{"Update": update}, entry], codes=True)
        if codes is not None:
            if codes[1] == "ConditionalCheckFailed":
                return False
            if "TransactionConflict" in codes:
                raise TransientError(f"the stock change of {sku} at {warehouse_id} met another write; retry",
                                     sku=sku)
            # the level's condition: refused for being sharded, or short
            if len(self.shard_levels(sku, warehouse_id)) > 1:
                return self._change_sharded(entry, sku, warehouse_id, delta, now)
            raise self._cannot_take(sku, warehouse_id, delta)
        self._changed([sku])
        return True

    def _spread(self, sku: str, warehouse_id: str, shards: list[dict[str, Any]], total: int, now: str, *,
                guard_available: bool) -> list[dict[str, Any]]:
        """Updates that leave the level's ``total`` available units spread evenly over ``shards`` (as read),
        each shard guarded by its ``committed`` (and, with ``guard_available``, its ``available``) unchanged
        since the read, shard 0 also by the shard count.

        A negative total (a count below what is promised to orders) marks every shard ``in_debt``, which
        refuses reservations on all of them: each reservation checks only its own shard, so units a receipt
        or a release puts on one shard must not be reserved while another owes more. The first write that
        spreads a total of zero or more (a count; :meth:`_settle`, which a refused reservation calls) clears it.
        """
        items: list[dict[str, Any]] = []
        for s, share in zip(shards, stock_shards.split(total, len(shards)), strict=True):
            update: dict[str, Any] = {
                "TableName": self.table, "Key": stock_shards.shard_key(sku, warehouse_id, s["shard"]),
                "UpdateExpression": "SET on_hand = :h, available = :a, updated_at = :now"
                                    + (", #dbt = :true" if total < 0 else " REMOVE #dbt"),
                "ConditionExpression": "#c = :c",
                "ExpressionAttributeNames": {"#c": "committed", "#dbt": "in_debt"},
                "ExpressionAttributeValues": {":h": {"N": str(s["committed"] + share)}, ":a": {"N": str(share)},
                                              ":c": {"N": str(s["committed"])}, ":now": {"S": now}},
            }
            if total < 0:
                update["ExpressionAttributeValues"][":true"] = {"BOOL": True}
            if guard_available:
                update["ConditionExpression"] += " AND available = :was"
                update["ExpressionAttributeValues"][":was"] = {"N": str(s["available"])}
            if s["shard"] == 0:  # and no shard was added since the read
                update["ConditionExpression"] += " AND #k = :k"
                update["ExpressionAttributeNames"]["#k"] = "shards"
                update["ExpressionAttributeValues"][":k"] = {"N": str(len(shards))}
            items.append({"Update": update})
        return items

    def _settle(self, sku: str, warehouse_id: str) -> list[dict[str, Any]] | None:
        """A sharded level that owes units (a shard below zero, or marked ``in_debt``): spread what it has
        evenly again, which clears the mark once the total is zero or more. Returns the shards as written
        (or as read, when there was nothing to settle); None if they kept changing under it."""
        for _ in range(stock_shards.ATTEMPTS):
            shards = self.shard_levels(sku, warehouse_id)
            if len(shards) <= 1 or not any(s["available"] < 0 or s["in_debt"] for s in shards):
                return shards  # an unsharded level's one guard suffices: it is never marked
            total = sum(s["available"] for s in shards)
            if self._transact(self._spread(sku, warehouse_id, shards, total, utcnow(), guard_available=True)):
                shares = stock_shards.split(total, len(shards))
                return [{**s, "available": a, "on_hand": s["committed"] + a, "in_debt": total < 0}
                        for s, a in zip(shards, shares, strict=True)]
        return None

    @staticmethod
    def _cannot_take(sku: str, warehouse_id: str, delta: int) -> Conflict:
        return Conflict(f"cannot take {-delta} x {sku} out of {warehouse_id}: fewer are available "
                        "(units promised to orders stay); count the shelf with PUT instead", field="delta")

    def _change_sharded(self, entry: dict[str, Any], sku: str, warehouse_id: str, delta: int, now: str) -> bool:
        """A receipt spread evenly over the level's shards; an adjustment out taken from the shards with the
        most available, each guarded. The ledger entry is the transaction's first item."""
        for _ in range(stock_shards.ATTEMPTS):
            if delta > 0:
                moves = dict(enumerate(stock_shards.split(delta, self._known_shards(sku, warehouse_id))))
            else:
                shards = self.shard_levels(sku, warehouse_id)
                found = stock_shards.take([s["available"] for s in shards], -delta)
                if found is None:
                    if self._ledger_item(entry["Put"]["Item"]["entry_id"]["S"]) is not None:
                        return False
                    raise self._cannot_take(sku, warehouse_id, delta)
                moves = found
            codes = self._transact([entry, *self._shard_moves(sku, warehouse_id, moves, now)], codes=True)
            if codes is None:
                self._changed([sku])
                return True
            if codes and codes[0] == "ConditionalCheckFailed":
                return False  # applied before
        raise TransientError(f"the shards of {sku} at {warehouse_id} kept changing; retry", sku=sku)

    # -- shards: how many, and moving units between them ------------------------------------------

    def _known_shards(self, sku: str, warehouse_id: str) -> int:
        """The level's shard count as last read (1 if not read yet)."""
        return self._shards.get((sku, warehouse_id), 1)

    def set_shards(self, sku: str, warehouse_id: str, shards: int) -> dict[str, Any]:
        """Split the level over ``shards`` items (a hot SKU: each shard takes its own ~1,000 writes a second),
        creating the level (empty) if it has none, and spread its available units evenly over them. The count
        only grows (a shard holds the units committed to the orders reserved on it until they ship or are
        released); the same count again just evens the shards out."""
        if not 1 <= shards <= stock_shards.MAX_SHARDS:
            raise ValueError(f"shards must be 1 to {stock_shards.MAX_SHARDS}")
        current = self.shard_levels(sku, warehouse_id)
        have = max(len(current), 1)
        if shards < have:
            raise Conflict(f"{sku} at {warehouse_id} has {have} shards: the count only grows", field="shards")
        now = utcnow()
        if shards > have or not current:
            # a level that owes units (a count below what is promised) gets its new shards marked in debt with
            # it (see _spread); one that does not must still not owe when they are added
            owing = sum(s["available"] for s in current) < 0 or any(s["in_debt"] for s in current)
            update: dict[str, Any] = {
                "TableName": self.table, "Key": stock_shards.shard_key(sku, warehouse_id, 0),
                "UpdateExpression": "SET #k = :k, on_hand = if_not_exists(on_hand, :zero), "
                                    "#c = if_not_exists(#c, :zero), available = if_not_exists(available, :zero), "
                                    "updated_at = :now" + (", #dbt = :true" if owing else ""),
                "ConditionExpression": "(attribute_not_exists(#k) OR #k = :have)" + (
                    "" if owing else " AND (attribute_not_exists(available) OR available >= :zero) "
                                     "AND attribute_not_exists(#dbt)"),
                "ExpressionAttributeNames": {"#k": "shards", "#c": "committed", "#dbt": "in_debt"},
                "ExpressionAttributeValues": {":k": {"N": str(shards)}, ":have": {"N": str(have)},
                                              ":zero": {"N": "0"}, ":now": {"S": now},
                                              **({":true": {"BOOL": True}} if owing else {})},
            }
            items: list[dict[str, Any]] = [{"Update": update}]
            for n in range(have, shards):
                items.append({"Put": {
                    "TableName": self.table, "ConditionExpression": "attribute_not_exists(sku)",
                    "Item": {**stock_shards.shard_key(sku, warehouse_id, n), **to_item({
                        "on_hand": 0, "committed": 0, "available": 0, "updated_at": now,
                        **({"in_debt": True} if owing else {})})},
                }})
            if not self._transact(items):
                raise ConcurrentUpdate(f"the shards of {sku} at {warehouse_id} changed meanwhile; retry", sku=sku)
            self._learn(sku, warehouse_id, shards)
        self.rebalance(sku, warehouse_id)
        parts = self.shard_levels(sku, warehouse_id)
        on_hand, committed = sum(p["on_hand"] for p in parts), sum(p["committed"] for p in parts)
        level = StockLevel(sku=sku, warehouse_id=warehouse_id, on_hand=on_hand, committed=committed)
        return {"sku": sku, "warehouse_id": warehouse_id, "shards": len(parts),
                "level": level.model_dump(mode="json"), "shard_levels": parts}

    def rebalance(self, sku: str, warehouse_id: str) -> bool:
        """Spread the level's available units evenly over its shards (units move between shards, each
        source guarded by ``available >= :take``: none is made, lost or taken from an order). False if the
        shards kept changing under it (reservations in flight): it is only ever an optimisation."""
        for _ in range(3):
            shards = self.shard_levels(sku, warehouse_id)
            if len(shards) > 1 and any(s["available"] < 0 or s["in_debt"] for s in shards):
                return self._settle(sku, warehouse_id) is not None
            moves = stock_shards.even_out([s["available"] for s in shards])
            if not moves or self._transact(self._shard_moves(sku, warehouse_id, moves, utcnow())):
                return True
        return False

    def _shard_moves(self, sku: str, warehouse_id: str, moves: dict[int, int], now: str) -> list[dict[str, Any]]:
        """Updates that change shard n's on_hand and available by ``moves[n]``; a shard that gives units
        must have them available."""
        items = []
        for n, d in sorted(moves.items()):
            if d == 0:
                continue
            update: dict[str, Any] = {
                "TableName": self.table, "Key": stock_shards.shard_key(sku, warehouse_id, n),
                "UpdateExpression": "SET on_hand = on_hand + :d, available = available + :d, updated_at = :now",
                "ConditionExpression": "attribute_exists(sku)",
                "ExpressionAttributeValues": {":d": {"N": str(d)}, ":now": {"S": now}},
            }
            if d < 0:
                update["ConditionExpression"] += " AND available >= :take"
                update["ExpressionAttributeValues"][":take"] = {"N": str(-d)}
            items.append({"Update": update})
        return items

    def _transact(self, items: list[dict[str, Any]], *, codes: bool = False) -> Any:
        """Write ``items`` in one transaction: True if written, False if a condition refused it (with
        ``codes``: None if written, else the cancellation codes)."""
        try:
            with storage_errors():
                client("dynamodb").transact_write_items(TransactItems=items)
        except ClientError as err:
            if err.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            found = _cancellation_codes(err)
            if "ConditionalCheckFailed" not in found and "TransactionConflict" not in found:
                raise
            return found if codes else False  # a guard refused it, or another writer came first: read again
        return None if codes else True

    def ledger_for(self, sku: str, limit: int = 20) -> list[dict[str, Any]]:
        """The SKU's most recent ledger entries, newest first: those of every shard merged (a sharded
        reservation's entry is filed under ``{sku}#s{n}``; it is answered under the SKU, with its ``shard``)."""
        if sku not in self._sku_shards:
            self.levels(sku)
        shards = self._sku_shards.get(sku, 1)
        entries: list[dict[str, Any]] = []
        for n in range(shards):
            with storage_errors():
                resp = client("dynamodb").query(
                    TableName=self.ledger, IndexName="by_sku", KeyConditionExpression="sku = :s",
                    ExpressionAttributeValues={":s": {"S": stock_shards.suffixed(sku, n)}}, ScanIndexForward=False,
                    Limit=limit,
                )
            entries.extend(from_item(i) for i in resp.get("Items", []))
        if shards == 1:
            return entries
        for entry in entries:
            entry["sku"] = sku
        return sorted(entries, key=lambda e: e.get("at", ""), reverse=True)[:limit]

    # -- changes made by the workflow, each exactly once --------------------------------------

    # ``key`` is the idempotency prefix of a change: the order id and the allocation plan number.
    # Each line's change is written with a ledger item ``{key}#{line}#{warehouse}#{step}`` in the same
    # transaction, so a replay finds the ledger item and changes nothing. Shipping and releasing
    # need the line's reservation and exclude each other, so a unit can never be both. On a sharded
    # level the reservation's ledger item records its shard (``shard``); shipping and releasing change
    # that shard, and their check of the reservation's entry includes the shard.

    def reserve(self, key: str, lines: list[AllocatedLine]) -> bool:
        """Commit stock for an order's allocation. Returns False if it was already done."""
        return self._apply(key, lines, "reserve", d_on_hand=0, d_committed=1,
                           guard="available >= :q AND attribute_not_exists(#dbt)")

    def ship(self, key: str, lines: list[AllocatedLine]) -> bool:
        """Stock has left the building: on_hand and committed go down together."""
        return self._apply(key, lines, "ship", d_on_hand=-1, d_committed=-1, guard="#c >= :q",
                           requires="reserve", excludes="release")

    def release(self, key: str, lines: list[AllocatedLine]) -> bool:
        """Give committed stock back (cancel, or undo a reservation). Lines never reserved, or
        already shipped, are skipped."""
        return self._apply(key, lines, "release", d_on_hand=0, d_committed=-1, guard="#c >= :q",
                           requires="reserve", excludes="ship", skip_unmet=True)

    def _ledger_key(self, key: str, line: AllocatedLine, step: str) -> dict[str, Any]:
        return {"entry_id": {"S": f"{key}#{line.line_no}#{line.warehouse_id}#{step}"}}

    def _line_items(self, key: str, line: AllocatedLine, step: str, shard: int, *, order_id: str, now: str,
                    d_on_hand: int, d_committed: int, guard: str, requires: str | None,
                    excludes: str | None) -> list[dict[str, Any]]:
        """One line's items of the transaction: its shard's update, its ledger entry, and the checks of
        the entries it requires (the reservation, on this shard) and excludes."""
        q = line.quantity
        entry: dict[str, Any] = {
            "entry_id": f"{key}#{line.line_no}#{line.warehouse_id}#{step}",
            "sku": stock_shards.suffixed(line.sku, shard), "warehouse_id": line.warehouse_id, "order_id": order_id,
            "kind": step, "on_hand_change": d_on_hand * q, "committed_change": d_committed * q, "at": now,
        }
        if shard:
            entry["shard"] = shard
        items: list[dict[str, Any]] = [
            {"Update": {
                "TableName": self.table,
                "Key": stock_shards.shard_key(line.sku, line.warehouse_id, shard),
                "UpdateExpression": "SET on_hand = on_hand + :dh, #c = #c + :dc, available = available + :da, "
                                    "updated_at = :now",
                "ConditionExpression": f"attribute_exists(sku) AND {guard}",
                "ExpressionAttributeNames": {"#c": "committed", **({"#dbt": "in_debt"} if "#dbt" in guard else {})},
                "ExpressionAttributeValues": {
                    ":dh": {"N": str(d_on_hand * q)}, ":dc": {"N": str(d_committed * q)},
                    ":da": {"N": str((d_on_hand - d_committed) * q)}, ":q": {"N": str(q)},
                    ":now": {"S": now},
                },
            }},
            {"Put": {"TableName": self.ledger, "Item": to_item(entry),
                     "ConditionExpression": "attribute_not_exists(entry_id)"}},
        ]
        if requires:
            check: dict[str, Any] = {
                "TableName": self.ledger, "Key": self._ledger_key(key, line, requires),
                "ConditionExpression": "attribute_exists(entry_id) AND "
                                       + ("#sh = :sh" if shard else "attribute_not_exists(#sh)"),
                "ExpressionAttributeNames": {"#sh": "shard"}}
            if shard:
                check["ExpressionAttributeValues"] = {":sh": {"N": str(shard)}}
            items.append({"ConditionCheck": check})
        if excludes:
            items.append({"ConditionCheck": {
                "TableName": self.ledger, "Key": self._ledger_key(key, line, excludes),
                "ConditionExpression": "attribute_not_exists(entry_id)"}})
        return items

    def _apply(self, key: str, lines: list[AllocatedLine], step: str, *, d_on_hand: int, d_committed: int,
               guard: str, requires: str | None = None, excludes: str | None = None,
               skip_unmet: bool = False) -> bool:
        order_id = key.split("#", 1)[0]
        now = utcnow()
        per_line = 2 + (requires is not None) + (excludes is not None)
        chunk_size = TRANSACTION_LIMIT // per_line
        applied_any = False
        done: list[AllocatedLine] = []
        pending = list(lines)
        # The shard each line changes: a reservation tries one picked by the order among the shards known
        # (shard 0 on a level not read yet); ship and release go to the reservation's shard (shard 0 until
        # its ledger entry says otherwise).
        shard_of: dict[tuple[int, str], int] = {}
        if skip_unmet and requires:
            kept = []
            for ln in pending:
                reserved = self._ledger_item(self._ledger_key(key, ln, requires)["entry_id"]["S"])
                if reserved is None or (excludes and self._ledger_exists(key, ln, excludes)):
                    continue
                shard_of[(ln.line_no, ln.warehouse_id)] = int(reserved.get("shard", 0))
                kept.append(ln)
            pending = kept
        elif step == "reserve":
            for ln in pending:
                shard_of[(ln.line_no, ln.warehouse_id)] = stock_shards.first_shard(
                    key, ln.line_no, ln.warehouse_id, self._shards.get((ln.sku, ln.warehouse_id), 1))
        for start in range(0, len(pending), chunk_size):
            chunk = pending[start:start + chunk_size]
            for _attempt in range(stock_shards.ATTEMPTS):
                items: list[dict[str, Any]] = []
                for line in chunk:
                    items += self._line_items(key, line, step, shard_of.get((line.line_no, line.warehouse_id), 0),
                                              order_id=order_id, now=now, d_on_hand=d_on_hand,
                                              d_committed=d_committed, guard=guard, requires=requires,
                                              excludes=excludes)
                try:
                    with storage_errors():
                        client("dynamodb").transact_write_items(TransactItems=items)
                    applied_any = True
                    done.extend(chunk)
                    if d_on_hand - d_committed:  # available changed (reserve, release); shipping leaves it
                        self._changed(line.sku for line in chunk)
                    break
                except ClientError as err:
                    if err.response["Error"]["Code"] != "TransactionCanceledException":
                        raise
                    codes = _cancellation_codes(err)
                    rows = [codes[i:i + per_line] for i in range(0, len(codes), per_line)]
                    if rows and all(row[1] == "ConditionalCheckFailed" for row in rows):
                        log.info("stock %s for order %s already applied", step, order_id)
                        done.extend(chunk)
                        break
                    unmet = [ln for ln, row in zip(chunk, rows, strict=False)
                             if "ConditionalCheckFailed" in row[2:]]
                    if unmet:
                        if requires and self._to_reserved_shard(key, unmet, rows, chunk, requires, shard_of):
                            continue  # the reservation is on another shard: there, again
                        names = [f"{ln.sku}@{ln.warehouse_id}" for ln in unmet]
                        done_as = {"ship": "shipped", "release": "released"}.get(excludes or "", "")
                        raise Conflict(f"cannot {step} for order {order_id}: {', '.join(names)} is not reserved"
                                       + (f" or was already {done_as}" if excludes else ""),
                                       order_id=order_id, lines=names) from err
                    short = [ln for ln, row in zip(chunk, rows, strict=False)
                             if row and row[0] == "ConditionalCheckFailed"]
                    if short:
                        if step == "reserve" and self._fall_over(key, short, shard_of):
                            continue  # another shard has the units (or was given them): there, again
                        if done and step == "reserve":
                            self.release(key, done)
                        names = [f"{ln.sku}@{ln.warehouse_id}" for ln in short]
                        raise InsufficientStock(
                            f"not enough stock to {step} for order {order_id}: {', '.join(names)}",
                            order_id=order_id, lines=names,
                        ) from err
                    if any(c in TRANSIENT_CODES or c == "TransactionConflict" for c in codes):
                        raise TransientError(f"stock {step} for order {order_id} conflicted; retry") from err
                    raise Conflict(f"stock {step} for order {order_id} was refused: {codes}") from err
            else:
                raise TransientError(f"stock {step} for order {order_id}: the shards kept moving; retry",
                                     order_id=order_id)
        return applied_any

    def _to_reserved_shard(self, key: str, unmet: list[AllocatedLine], rows: list[list[str]],
                           chunk: list[AllocatedLine], requires: str, shard_of: dict[tuple[int, str], int]) -> bool:
        """Ship/release found no reservation on the shard it tried: point each such line at the shard its
        reservation's ledger entry names. False if a line has no reservation (or its exclusion failed)."""
        failed = {id(ln): row for ln, row in zip(chunk, rows, strict=False)}
        moved = False
        for ln in unmet:
            row = failed[id(ln)]
            if row[2] != "ConditionalCheckFailed" or "ConditionalCheckFailed" in row[3:]:
                return False
            reserved = self._ledger_item(self._ledger_key(key, ln, requires)["entry_id"]["S"])
            ref = (ln.line_no, ln.warehouse_id)
            if reserved is None or int(reserved.get("shard", 0)) == shard_of.get(ref, 0):
                return False
            shard_of[ref] = int(reserved.get("shard", 0))
            moved = True
        return moved

    def _fall_over(self, key: str, short: list[AllocatedLine], shard_of: dict[tuple[int, str], int]) -> bool:
        """A reservation's shard is short: read the level's shards and send each short line to a shard that
        has its units (one at random among them, so the orders of a sale spread again), or gather them into
        one from the others. False if a line's level is unsharded or has fewer units available in all."""
        for ln in short:
            if self._shards.get((ln.sku, ln.warehouse_id)) == 1:
                return False  # read with the plan, unsharded: short is short (one item, as ever)
            shards = self.shard_levels(ln.sku, ln.warehouse_id)
            if len(shards) <= 1:
                return False
            if sum(s["available"] for s in shards) < ln.quantity:
                return False  # the whole level (a shard in debt included) has fewer
            if any(s["available"] < 0 or s["in_debt"] for s in shards):
                settled = self._settle(ln.sku, ln.warehouse_id)
                if settled is None:
                    raise TransientError(f"the shards of {ln.sku} at {ln.warehouse_id} kept changing; retry",
                                         sku=ln.sku)
                shards = settled
            available = [s["available"] for s in shards]
            ref = (ln.line_no, ln.warehouse_id)
            enough = [n for n, a in enumerate(available) if a >= ln.quantity]
            if enough:
                shard_of[ref] = secrets.choice(enough)
                continue
            into = max(range(len(available)), key=lambda n: available[n])
            moves = stock_shards.gather(available, into, ln.quantity)
            if moves:
                self._transact(self._shard_moves(ln.sku, ln.warehouse_id, moves, utcnow()))
            shard_of[ref] = into  # gathered, or someone else moved first: the next attempt reads again
        return True

    def _ledger_item(self, entry_id: str) -> dict[str, Any] | None:
        with storage_errors():
            resp = client("dynamodb").get_item(TableName=self.ledger, Key={"entry_id": {"S": entry_id}},
                                               ConsistentRead=True)
        return from_item(resp["Item"]) if "Item" in resp else None

    def _ledger_exists(self, key: str, line: AllocatedLine, step: str) -> bool:
        with storage_errors():
            resp = client("dynamodb").get_item(TableName=self.ledger, Key=self._ledger_key(key, line, step),
                                               ConsistentRead=True)
        return "Item" in resp


class SettingsRepository:
    """Seller configuration and small documents (warehouses, the allocation policy, reorder rules,
    purchase orders), one partition per kind (``entity``)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.table = (settings or get_settings()).settings_table

    # -- documents: any pydantic model, optimistic locking on ``version`` -----------------------

    def get_doc(self, entity: str, doc_id: str, model: type[M]) -> M | None:
        with storage_errors():
            resp = client("dynamodb").get_item(TableName=self.table, ConsistentRead=True,
                                               Key={"entity": {"S": entity}, "id": {"S": doc_id}})
        if "Item" not in resp:
            return None
        data = from_item(resp["Item"])
        version = data.pop("version", 0)
        data.pop("entity"), data.pop("id")
        doc = model.model_validate(data)
        doc._version = version
        return doc

    def put_doc(self, entity: str, doc_id: str, doc: Document, *, new: bool = False) -> None:
        """Write a document; ``new`` refuses to overwrite one, otherwise it must be unchanged since read."""
        expected = doc._version
        item = to_item({"entity": entity, "id": doc_id, **doc.model_dump(mode="json"), "version": expected + 1})
        if new:
            cond: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(id)"}
        else:
            cond = {"ConditionExpression": "attribute_not_exists(id) OR #v = :v",
                    "ExpressionAttributeNames": {"#v": "version"},
                    "ExpressionAttributeValues": {":v": {"N": str(expected)}}}
        try:
            with storage_errors():
                client("dynamodb").put_item(TableName=self.table, Item=item, **cond)
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                if new:
                    raise Conflict(f"{entity} {doc_id} already exists", id=doc_id) from err
                raise ConcurrentUpdate(f"{entity} {doc_id} changed while it was being updated") from err
            raise
        doc._version = expected + 1

    def list_docs(self, entity: str, model: type[M]) -> list[M]:
        out = []
        for item in query_entity(self.table, entity):
            data = from_item(item)
            version = data.pop("version", 0)
            data.pop("entity"), data.pop("id")
            doc = model.model_validate(data)
            doc._version = version
            out.append(doc)
        return out

    def allocation_policy(self) -> AllocationPolicy:
        return self.get_doc("policy", "allocation", AllocationPolicy) or AllocationPolicy()

    def put_allocation_policy(self, policy: AllocationPolicy) -> AllocationPolicy:
        current = self.get_doc("policy", "allocation", AllocationPolicy)
        policy = policy.model_copy(update={"version": (current.version + 1) if current else policy.version})
        if current is not None:
            policy._version = current._version
        self.put_doc("policy", "allocation", policy)
        return policy

    def put_warehouse(self, warehouse: Warehouse) -> Warehouse:
        data = warehouse.model_dump(mode="json")
        with storage_errors():
            client("dynamodb").put_item(TableName=self.table,
                                        Item=to_item({"entity": "warehouse", "id": warehouse.warehouse_id, **data}))
        return warehouse

    def warehouses(self) -> list[Warehouse]:
        out = []
        for item in query_entity(self.table, "warehouse"):
            data = from_item(item)
            data.pop("entity"), data.pop("id")
            out.append(Warehouse.model_validate(data))
        return out

    def warehouse(self, warehouse_id: str) -> Warehouse:
        with storage_errors():
            resp = client("dynamodb").get_item(TableName=self.table,
                                               Key={"entity": {"S": "warehouse"}, "id": {"S": warehouse_id}})
        if "Item" not in resp:
            raise NotFound(f"warehouse {warehouse_id} not found", warehouse_id=warehouse_id)
        data = from_item(resp["Item"])
        data.pop("entity"), data.pop("id")
        return Warehouse.model_validate(data)
