"""A faster wire for moto's DynamoDB item operations: their results written as JSON directly.

moto 5.2 writes every response through a serializer driven by the botocore service model: it walks the
output shape member by member, and for DynamoDB that means every attribute of every item, through a
shape-aware attribute picker. Profiling the local stack end to end (``py-spy --gil``, 100 orders) put
a fifth of the process's CPU there, more than moto spent running the requests.

The results of DynamoDB's item operations are already in the wire's form (``{"S": ...}`` attribute
values, counts, keys), so ``json.dumps`` writes the same body. This replaces the serializer for those
operations only, and only for results it can write exactly: bytes are base64-encoded (as the
serializer does for blobs), and anything else that is not plain JSON falls back to moto's serializer.
Errors never come here (moto raises them). ``tests/unit/test_moto_dynamodb_wire.py`` checks that both
paths write the same document for every item operation.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable
from typing import Any

#: The operations whose results hold only items, keys, counts and capacity (no timestamps or enums).
#: (BatchWriteItem and TransactWriteItems answer with moto's plain ActionResult: small, left as is.)
ITEM_OPERATIONS = frozenset({"GetItem", "PutItem", "UpdateItem", "DeleteItem", "Query", "Scan", "BatchGetItem",
                             "TransactGetItems"})
CONTENT_TYPE = "application/x-amz-json-1.0"


class _NotPlain(TypeError):
    """A value JSON cannot write as the serializer would: moto's serializer writes this result."""


def _default(value: Any) -> Any:
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise _NotPlain(type(value).__name__)


def body_of(result: Any, members: Iterable[str]) -> str | None:
    """The JSON body of an item operation's result (the output shape's ``members`` only, as the
    serializer writes them), or None when moto's serializer must write it."""
    if not isinstance(result, dict):
        return None
    try:
        return json.dumps({k: result[k] for k in members if result.get(k) is not None}, default=_default)
    except (_NotPlain, ValueError):
        return None


def install() -> None:
    """Write DynamoDB item operations' results directly (idempotent)."""
    from moto.dynamodb.responses import DynamoResult

    if getattr(DynamoResult, "_direct_json", False):
        return
    original = DynamoResult.execute_result

    def execute_result(self, context):  # noqa: ANN001, ANN202
        if context.operation_model.name in ITEM_OPERATIONS:
            body = body_of(self.result, context.operation_model.output_shape.members)
            if body is not None:
                return 200, {"Content-Type": CONTENT_TYPE}, body
        return original(self, context)

    DynamoResult.execute_result = execute_result  # type: ignore[method-assign]
    DynamoResult._direct_json = True  # type: ignore[attr-defined]
