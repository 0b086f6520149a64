"""``Idempotency-Key`` records for ``POST /orders``: guard items in the orders table.

``order_id = "idem#<key>"`` holds the request's fingerprint, the id of the order it creates (chosen
before the order is written, so a retry after a crash writes the same order, never a second one), a
short lease while the first request runs, and, once done, the status it answered. The item has no
``status`` attribute, so no order query ever sees it.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import ClientError

from orderflow.adapters.aws import client
from orderflow.adapters.dynamodb import from_item, storage_errors, to_item
from orderflow.errors import IdempotencyKeyReused  # noqa: F401 - raised by callers of claim()
from orderflow.models import utcnow
from orderflow.settings import Settings, get_settings

#: How long a request may work on a key before a retry with the same key takes over.
LEASE_SECONDS = 35.0
#: Kept this long (an ``expires_at`` a TTL can use).
KEEP_SECONDS = 7 * 86400


@dataclass
class Claim:
    #: True when this request is the one that creates the order (first, or taking over a dead one).
    mine: bool
    order_id: str
    fingerprint: str
    done: bool
    status_code: int | None = None
    #: This request took over a key whose first request died: the order may exist already.
    resumed: bool = False


class IdempotencyKeys:
    def __init__(self, settings: Settings | None = None) -> None:
        self.table = (settings or get_settings()).orders_table

    @staticmethod
    def _key(key: str) -> dict[str, Any]:
        return {"order_id": {"S": f"idem#{key}"}}

    def claim(self, key: str, fingerprint: str, order_id: str) -> Claim:
        now = time.time()
        item = {**self._key(key), **to_item({"fingerprint": fingerprint, "target": order_id, "state": "pending",
                                             "created_at": utcnow(), "expires_at": int(now) + KEEP_SECONDS}),
                "lease_until": {"N": f"{now + LEASE_SECONDS:.3f}"}}
        try:
            with storage_errors():
                client("dynamodb").put_item(TableName=self.table, Item=item,
                                            ConditionExpression="attribute_not_exists(order_id)")
            return Claim(mine=True, order_id=order_id, fingerprint=fingerprint, done=False)
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
        with storage_errors():
            resp = client("dynamodb").get_item(TableName=self.table, Key=self._key(key), ConsistentRead=True)
        data = from_item(resp["Item"])
        claim = Claim(mine=False, order_id=data["target"], fingerprint=data["fingerprint"],
                      done=data.get("state") == "done", status_code=int(data["status_code"])
                      if data.get("status_code") is not None else None)
        lease = float(data.get("lease_until") or 0)
        if not claim.done and claim.fingerprint == fingerprint and lease < now:
            # the first request died before finishing: take over, and write the same order id
            try:
                with storage_errors():
                    client("dynamodb").update_item(
                        TableName=self.table, Key=self._key(key), UpdateExpression="SET lease_until = :new",
                        ConditionExpression="lease_until = :old AND #s = :pending",
                        ExpressionAttributeNames={"#s": "state"},
                        ExpressionAttributeValues={":new": {"N": f"{now + LEASE_SECONDS:.3f}"},
                                                   ":old": resp["Item"]["lease_until"], ":pending": {"S": "pending"}})
                claim.mine = claim.resumed = True
            except ClientError as err:
                if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                    raise
        return claim

    def finish(self, key: str, order_id: str, status_code: int) -> None:
        with storage_errors():
            client("dynamodb").update_item(
                TableName=self.table, Key=self._key(key),
                UpdateExpression="SET #s = :done, status_code = :code, target = :target REMOVE lease_until",
                ExpressionAttributeNames={"#s": "state"},
                ExpressionAttributeValues={":done": {"S": "done"}, ":code": {"N": str(status_code)},
                                           ":target": {"S": order_id}})

    def release(self, key: str) -> None:
        """The request holding the key failed: end its lease now, so the client's retry with the same key
        takes over at once (``resumed``) and finishes the same order id. The claim itself is kept: the
        failure may have come after the order was written (a throttled ``StartExecution``), and a new
        order id for the retry would make a second order."""
        try:
            with storage_errors():
                client("dynamodb").update_item(
                    TableName=self.table, Key=self._key(key), UpdateExpression="SET lease_until = :ended",
                    ConditionExpression="#s = :pending", ExpressionAttributeNames={"#s": "state"},
                    ExpressionAttributeValues={":ended": {"N": "0"}, ":pending": {"S": "pending"}})
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise
