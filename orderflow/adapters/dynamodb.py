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

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

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

_ser = TypeSerializer()
_de = TypeDeserializer()

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
    return _ser.serialize(value)


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


def from_item(item: dict[str, Any]) -> dict[str, Any]:
    return {k: _plain(_de.deserialize(v)) for k, v in item.items()}


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


def batch_get(table: str, keys: list[str], key_name: str = "order_id") -> list[dict[str, Any]]:
    """The items of these (distinct) keys that exist, read consistently, 100 keys per BatchGetItem."""
    items: list[dict[str, Any]] = []
    for start in range(0, len(keys), 100):
        pending: dict[str, Any] = {table: {"Keys": [{key_name: {"S": k}} for k in keys[start:start + 100]],
                                           "ConsistentRead": True}}
        while pending:
            with storage_errors():
                resp = client("dynamodb").batch_get_item(RequestItems=pending)
            items.extend(resp.get("Responses", {}).get(table, []))
            pending = resp.get("UnprocessedKeys") or {}
            if pending:
                time.sleep(0.05)
    return items


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
    """

    def __init__(self, settings: Settings | None = None) -> None:
        s = settings or get_settings()
        self.table = s.inventory_table
        self.ledger = s.ledger_table
        #: Called with the SKUs of every stock change that was applied (stock auto-sync listens).
        self.listeners: list[Callable[[list[str]], None]] = []

    def _changed(self, skus: Iterable[str]) -> None:
        changed = list(dict.fromkeys(skus))
        for listener in self.listeners:
            listener(changed)

    def all_levels(self) -> dict[str, list[StockLevel]]:
        """Every SKU's levels, SKUs in order (one scan, eventually consistent: for the scheduled sync
        sweep and the stock screen, not a hot path; a scan reads whole items whatever it projects)."""
        by_sku: dict[str, list[StockLevel]] = {}
        kwargs: dict[str, Any] = {"TableName": self.table}
        with storage_errors():
            while True:
                resp = client("dynamodb").scan(**kwargs)
                for item in resp.get("Items", []):
                    level = StockLevel.model_validate(from_item(item))
                    by_sku.setdefault(level.sku, []).append(level)
                if "LastEvaluatedKey" not in resp:
                    break
                kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]
        return {sku: sorted(by_sku[sku], key=lambda level: level.warehouse_id) for sku in sorted(by_sku)}

    def levels(self, sku: str) -> list[StockLevel]:
        with storage_errors():
            resp = client("dynamodb").query(
                TableName=self.table, KeyConditionExpression="sku = :s",
                ExpressionAttributeValues={":s": {"S": sku}}, ConsistentRead=True,
            )
        return [StockLevel.model_validate(from_item(i)) for i in resp.get("Items", [])]

    def levels_for(self, skus: Iterable[str]) -> dict[str, list[StockLevel]]:
        return {sku: self.levels(sku) for sku in dict.fromkeys(skus)}

    def known_skus(self, skus: Iterable[str]) -> set[str]:
        return {sku for sku, levels in self.levels_for(skus).items() if levels}

    def set_on_hand(self, sku: str, warehouse_id: str, on_hand: int, reason: str = "count") -> StockLevel:
        """Set the counted quantity; ``committed`` stays, ``available`` follows. The level and its
        ledger entry are written in one transaction."""
        now = utcnow()
        with storage_errors():
            client("dynamodb").transact_write_items(TransactItems=[
                {"Update": {
                    "TableName": self.table,
                    "Key": {"sku": {"S": sku}, "warehouse_id": {"S": warehouse_id}},
                    "UpdateExpression": "SET on_hand = :n, #c = if_not_exists(#c, :zero), "
                                        "available = :n - if_not_exists(#c, :zero), updated_at = :now",
                    "ExpressionAttributeNames": {"#c": "committed"},
                    "ExpressionAttributeValues": {":n": {"N": str(on_hand)}, ":zero": {"N": "0"},
                                                  ":now": {"S": now}},
                }},
                {"Put": {"TableName": self.ledger, "Item": to_item({
                    "entry_id": f"set#{sku}#{warehouse_id}#{now}#{secrets.token_hex(4)}", "sku": sku,
                    "warehouse_id": warehouse_id, "kind": "set_on_hand", "on_hand": on_hand, "reason": reason,
                    "at": now,
                })}},
            ])
            resp = client("dynamodb").get_item(TableName=self.table, ConsistentRead=True,
                                               Key={"sku": {"S": sku}, "warehouse_id": {"S": warehouse_id}})
        self._changed([sku])
        return StockLevel.model_validate(from_item(resp["Item"]))

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
            "ExpressionAttributeNames": {"#c": "committed"},
            "ExpressionAttributeValues": {":d": {"N": str(delta)}, ":zero": {"N": "0"}, ":now": {"S": now}},
        }
        if delta < 0:
            update["ConditionExpression"] = "available >= :need"
            update["ExpressionAttributeValues"][":need"] = {"N": str(-delta)}
        items = [
            {"Update": update},
            {"Put": {"TableName": self.ledger, "ConditionExpression": "attribute_not_exists(entry_id)",
                     "Item": to_item({"entry_id": entry_id, "sku": sku, "warehouse_id": warehouse_id, "kind": kind,
                                      "on_hand_change": delta, "committed_change": 0, "reason": reason,
                                      "at": now})}},
        ]
        try:
            with storage_errors():
                client("dynamodb").transact_write_items(TransactItems=items)
        except ClientError as err:
            if err.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            codes = _cancellation_codes(err)
            if len(codes) > 1 and codes[1] == "ConditionalCheckFailed":
                return False
            if codes and codes[0] == "ConditionalCheckFailed":
                raise Conflict(f"cannot take {-delta} x {sku} out of {warehouse_id}: fewer are available "
                               "(units promised to orders stay); count the shelf with PUT instead",
                               field="delta") from err
            raise
        self._changed([sku])
        return True

    def ledger_for(self, sku: str, limit: int = 20) -> list[dict[str, Any]]:
        with storage_errors():
            resp = client("dynamodb").query(
                TableName=self.ledger, IndexName="by_sku", KeyConditionExpression="sku = :s",
                ExpressionAttributeValues={":s": {"S": sku}}, ScanIndexForward=False, Limit=limit,
            )
        return [from_item(i) for i in resp.get("Items", [])]

    # -- changes made by the workflow, each exactly once --------------------------------------

    # ``key`` is the idempotency prefix of a change: the order id and the allocation plan number.
    # Each line's change is written with a ledger item ``{key}#{line}#{warehouse}#{step}`` in the same
    # transaction, so a replay finds the ledger item and changes nothing. Shipping and releasing
    # need the line's reservation and exclude each other, so a unit can never be both.

    def reserve(self, key: str, lines: list[AllocatedLine]) -> bool:
        """Commit stock for an order's allocation. Returns False if it was already done."""
        return self._apply(key, lines, "reserve", d_on_hand=0, d_committed=1, guard="available >= :q")

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
        if skip_unmet and requires:
            pending = [ln for ln in pending if self._ledger_exists(key, ln, requires)
                       and not (excludes and self._ledger_exists(key, ln, excludes))]
        for start in range(0, len(pending), chunk_size):
            chunk = pending[start:start + chunk_size]
            items: list[dict[str, Any]] = []
            for line in chunk:
                q = line.quantity
                items.append({"Update": {
                    "TableName": self.table,
                    "Key": {"sku": {"S": line.sku}, "warehouse_id": {"S": line.warehouse_id}},
                    "UpdateExpression": "SET on_hand = on_hand + :dh, #c = #c + :dc, available = available + :da, "
                                        "updated_at = :now",
                    "ConditionExpression": f"attribute_exists(sku) AND {guard}",
                    "ExpressionAttributeNames": {"#c": "committed"},
                    "ExpressionAttributeValues": {
                        ":dh": {"N": str(d_on_hand * q)}, ":dc": {"N": str(d_committed * q)},
                        ":da": {"N": str((d_on_hand - d_committed) * q)}, ":q": {"N": str(q)},
                        ":now": {"S": now},
                    },
                }})
                items.append({"Put": {
                    "TableName": self.ledger,
                    "Item": to_item({
                        "entry_id": f"{key}#{line.line_no}#{line.warehouse_id}#{step}",
                        "sku": line.sku, "warehouse_id": line.warehouse_id, "order_id": order_id,
                        "kind": step, "on_hand_change": d_on_hand * q, "committed_change": d_committed * q,
                        "at": now,
                    }),
                    "ConditionExpression": "attribute_not_exists(entry_id)",
                }})
                if requires:
                    items.append({"ConditionCheck": {
                        "TableName": self.ledger, "Key": self._ledger_key(key, line, requires),
                        "ConditionExpression": "attribute_exists(entry_id)"}})
                if excludes:
                    items.append({"ConditionCheck": {
                        "TableName": self.ledger, "Key": self._ledger_key(key, line, excludes),
                        "ConditionExpression": "attribute_not_exists(entry_id)"}})
            try:
                with storage_errors():
                    client("dynamodb").transact_write_items(TransactItems=items)
                applied_any = True
                done.extend(chunk)
                if d_on_hand - d_committed:  # available changed (reserve, release); shipping leaves it
                    self._changed(line.sku for line in chunk)
            except ClientError as err:
                if err.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                codes = _cancellation_codes(err)
                rows = [codes[i:i + per_line] for i in range(0, len(codes), per_line)]
                if rows and all(row[1] == "ConditionalCheckFailed" for row in rows):
                    log.info("stock %s for order %s already applied", step, order_id)
                    done.extend(chunk)
                    continue
                unmet = [f"{ln.sku}@{ln.warehouse_id}" for ln, row in zip(chunk, rows, strict=False)
                         if "ConditionalCheckFailed" in row[2:]]
                if unmet:
                    done_as = {"ship": "shipped", "release": "released"}.get(excludes or "", "")
                    raise Conflict(f"cannot {step} for order {order_id}: {', '.join(unmet)} is not reserved"
                                   + (f" or was already {done_as}" if excludes else ""),
                                   order_id=order_id, lines=unmet) from err
                short = [f"{ln.sku}@{ln.warehouse_id}" for ln, row in zip(chunk, rows, strict=False)
                         if row and row[0] == "ConditionalCheckFailed"]
                if short:
                    if done and step == "reserve":
                        self.release(key, done)
                    raise InsufficientStock(
                        f"not enough stock to {step} for order {order_id}: {', '.join(short)}",
                        order_id=order_id, lines=short,
                    ) from err
                if any(c in TRANSIENT_CODES or c == "TransactionConflict" for c in codes):
                    raise TransientError(f"stock {step} for order {order_id} conflicted; retry") from err
                raise Conflict(f"stock {step} for order {order_id} was refused: {codes}") from err
        return applied_any

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
