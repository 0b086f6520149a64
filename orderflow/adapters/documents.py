"""One store for the small documents the slices keep in the settings table as plain JSON-able dicts (the
:class:`orderflow.ports.Documents` port): key ``entity`` (the kind) + ``id``, the document's fields beside
them. FBA's accounts and open fulfillment orders, the suppliers' open shipments, stock sync's pending
markers...

Typed documents with optimistic locking on ``version`` are :class:`orderflow.adapters.dynamodb.SettingsRepository`'s
``get_doc``/``put_doc``/``list_docs`` over the same table; both read through the one query loop
(:func:`orderflow.adapters.dynamodb.query_entity`), and storage failures become domain errors
(:func:`orderflow.adapters.dynamodb.storage_errors`).
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from orderflow.adapters.aws import client
from orderflow.adapters.dynamodb import from_item, query_entity, storage_errors, to_item
from orderflow.settings import Settings, get_settings


def _data(item: dict[str, Any]) -> dict[str, Any]:
    data = from_item(item)
    data.pop("entity", None)
    data.pop("id", None)
    return data


def _refused(err: ClientError) -> bool:
    return err.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


def _seconds(value: float) -> dict[str, str]:
    """A time in epoch seconds, to the millisecond (as the items have always stored it)."""
    return {"N": f"{value:.3f}"}


class DocumentStore:
    """Documents by ``entity`` and ``id`` in the settings table."""

    def __init__(self, settings: Settings | None = None, *, table: str | None = None) -> None:
        self.table = table or (settings or get_settings()).settings_table

    @staticmethod
    def _key(entity: str, doc_id: str) -> dict[str, Any]:
        return {"entity": {"S": entity}, "id": {"S": doc_id}}

    def get(self, entity: str, doc_id: str) -> dict[str, Any] | None:
        """The document's fields (a consistent read), or None."""
        with storage_errors():
            resp = client("dynamodb").get_item(TableName=self.table, Key=self._key(entity, doc_id),
                                               ConsistentRead=True)
        return _data(resp["Item"]) if "Item" in resp else None

    def put(self, entity: str, doc_id: str, data: dict[str, Any]) -> None:
        """Write the document whole, whatever was there."""
        with storage_errors():
            client("dynamodb").put_item(TableName=self.table,
                                        Item=to_item({"entity": entity, "id": doc_id, **data}))

    def query(self, entity: str, *, consistent: bool = False) -> list[dict[str, Any]]:
        """Every document of one kind, each as its fields."""
        return [_data(item) for item in query_entity(self.table, entity, consistent=consistent)]

    def by_id(self, entity: str) -> dict[str, dict[str, Any]]:
        """Every document of one kind, by its id (eventually consistent)."""
        return {from_item(item)["id"]: _data(item) for item in query_entity(self.table, entity)}

    def claim(self, entity: str, doc_id: str, data: dict[str, Any], *, expiry: str, now: float,
              expires_at: float) -> bool:
        """Write the document unless a live one is there: one whose ``expiry`` field (epoch seconds) is not
        before ``now`` (one without the field is not live). The new one gets ``expiry = expires_at``.
        False if a live one is there."""
        item = {**to_item({"entity": entity, "id": doc_id, **data}), expiry: _seconds(expires_at)}
        try:
            with storage_errors():
                client("dynamodb").put_item(
                    TableName=self.table, Item=item,
                    ConditionExpression="attribute_not_exists(id) OR attribute_not_exists(#x) OR #x < :now",
                    ExpressionAttributeNames={"#x": expiry}, ExpressionAttributeValues={":now": _seconds(now)})
        except ClientError as err:
            if _refused(err):
                return False
            raise
        return True

    def delete(self, entity: str, doc_id: str, *, where: dict[str, str] | None = None, expiry: str | None = None,
               expired_before: float | None = None) -> bool:
        """Delete the document; with ``where``, only if these fields have these values; with ``expiry``
        and ``expired_before``, only if that field is missing or before the time. False if it did not
        match (and stays); an absent document is nothing to delete."""
        conditions, names, values = [], {}, {}
        for n, (name, value) in enumerate((where or {}).items()):
            conditions.append(f"#w{n} = :w{n}")
            names[f"#w{n}"], values[f":w{n}"] = name, {"S": value}
        if expiry is not None and expired_before is not None:
            conditions.append("attribute_not_exists(#x) OR #x < :now")
            names["#x"], values[":now"] = expiry, _seconds(expired_before)
        extra: dict[str, Any] = {}
        if conditions:
            # DynamoDB refuses redundant parentheses: an OR is put in its own only beside another condition
            both = conditions[0] if len(conditions) == 1 else " AND ".join(f"({c})" if " OR " in c else c
                                                                          for c in conditions)
            extra = {"ConditionExpression": f"attribute_not_exists(id) OR ({both})",
                     "ExpressionAttributeNames": names, "ExpressionAttributeValues": values}
        try:
            with storage_errors():
                client("dynamodb").delete_item(TableName=self.table, Key=self._key(entity, doc_id), **extra)
        except ClientError as err:
            if _refused(err):
                return False
            raise
        return True

