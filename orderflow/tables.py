"""The DynamoDB tables, defined once.

CDK (``infra/constructs/data.py``) and the local stack (``orderflow_local``) both build their tables
from :data:`TABLES`, so keys and indexes cannot drift between AWS and the laptop.

Access patterns:
- orders: order by id (``order_id``); orders by status, newest first (GSI ``by_status``);
  order by channel + external id (GSI ``by_channel_ref``; uniqueness is enforced by the order's id, derived
  from the channel and the external id and written only if absent; orders stored before that have a
  random id and a guard item ``ref#<channel>#<external id>`` naming it).
- inventory: stock by sku and warehouse (``sku`` + ``warehouse_id``); stock by warehouse (GSI). A hot
  level split over K shards (``orderflow.adapters.stock_shards``) has K-1 more items keyed
  ``{sku}#s{n}`` + ``{warehouse_id}#s{n}``, each in a partition of its own; reads sum them.
- ledger: one item per stock change, keyed by its idempotency key; recent changes per sku (GSI; a sharded
  level's reservations, ships and releases are filed under ``{sku}#s{n}``, so no index partition takes
  all of a hot SKU's writes).
- settings: warehouses and other seller configuration (``entity`` + ``id``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from orderflow import config


@dataclass(frozen=True)
class Index:
    name: str
    partition_key: str
    sort_key: str | None = None


@dataclass(frozen=True)
class Table:
    key: str  # short name used in code and env vars: ORDERFLOW_<KEY>_TABLE
    partition_key: str
    sort_key: str | None = None
    indexes: tuple[Index, ...] = field(default_factory=tuple)
    #: Items carrying this attribute (epoch seconds) are deleted by DynamoDB's TTL after that time.
    ttl_attribute: str | None = None

    @property
    def env_var(self) -> str:
        return config.table_variable(self.key)

    @property
    def construct_id(self) -> str:
        """Its construct id in CDK (``Data/<id>``); the local stack finds the deployed table by it."""
        return self.key.capitalize()

    def attributes(self) -> list[str]:
        names = [self.partition_key] + ([self.sort_key] if self.sort_key else [])
        for index in self.indexes:
            for name in (index.partition_key, index.sort_key):
                if name and name not in names:
                    names.append(name)
        return names

    def create_table_kwargs(self, table_name: str) -> dict:
        """Arguments for ``dynamodb.create_table`` (the local stack and tests use these)."""

        def key_schema(pk: str, sk: str | None) -> list[dict]:
            schema = [{"AttributeName": pk, "KeyType": "HASH"}]
            if sk:
                schema.append({"AttributeName": sk, "KeyType": "RANGE"})
            return schema

        kwargs: dict = {
            "TableName": table_name,
            "BillingMode": "PAY_PER_REQUEST",
            "KeySchema": key_schema(self.partition_key, self.sort_key),
            "AttributeDefinitions": [{"AttributeName": n, "AttributeType": "S"} for n in self.attributes()],
        }
        if self.indexes:
            kwargs["GlobalSecondaryIndexes"] = [
                {"IndexName": i.name, "KeySchema": key_schema(i.partition_key, i.sort_key),
                 "Projection": {"ProjectionType": "ALL"}}
                for i in self.indexes
            ]
        return kwargs


ORDERS = Table(
    key="orders",
    partition_key="order_id",
    # guard items (``idem#<key>``, ``webhook#<channel>#<event>``) expire; orders never carry it
    ttl_attribute="expires_at",
    indexes=(
        Index("by_status", "status", "created_at"),
        Index("by_channel_ref", "channel_ref"),
    ),
)
INVENTORY = Table(
    key="inventory",
    partition_key="sku",
    sort_key="warehouse_id",
    indexes=(Index("by_warehouse", "warehouse_id", "sku"),),
)
LEDGER = Table(
    key="ledger",
    partition_key="entry_id",
    indexes=(Index("by_sku", "sku", "at"),),
)
SETTINGS = Table(key="settings", partition_key="entity", sort_key="id")

TABLES: tuple[Table, ...] = (ORDERS, INVENTORY, LEDGER, SETTINGS)
