"""Stock shards: one SKU's units in one warehouse split over K DynamoDB items, so that a flash sale's
reservations do not all write one item (DynamoDB takes about 1,000 write units a second on one item, and a
transactional write costs two). This module is the arithmetic; :class:`orderflow.adapters.dynamodb.
InventoryRepository` does the reads and writes.

- Shard 0 is the level's own item (``sku``, ``warehouse_id``): an unsharded level (K = 1) is exactly the
  item it always was, and existing data needs no migration. Its ``shards`` attribute holds K when K > 1.
- Shard n >= 1 is the item (``{sku}#s{n}``, ``{warehouse_id}#s{n}``), with its own ``on_hand``,
  ``committed`` and ``available``. Both keys carry the suffix, so each shard hashes to its own partition,
  in the table and in its ``by_warehouse`` index. (SKUs and warehouse ids never hold ``#``.)
- The ledger entries of a reservation on shard n (and of its ship or release) carry ``sku = {sku}#s{n}``
  and ``shard = n``, so the ledger's ``by_sku`` index spreads the same way; reads of the ledger merge the
  shards' entries back under the SKU.
- A level's totals are the sums over its shards; K only grows (a shard may hold units committed to orders,
  which ship or release from that shard).
"""

from __future__ import annotations

import hashlib
from typing import Any

MARK = "#s"
#: The most shards a level may have: a count, a receipt or a rebalance writes every shard in one transaction,
#: and what is shown or synced reads them all in one TransactGetItems (100 items on AWS; moto, the local
#: stack, still allows 25).
MAX_SHARDS = 25
#: Tries of one write over a level's shards (a reservation falling over to another shard, a count whose
#: shards changed under it) before it gives up with TransientError (the workflow retries the step).
ATTEMPTS = 10


def suffixed(value: str, shard: int) -> str:
    return value if shard == 0 else f"{value}{MARK}{shard}"


def shard_key(sku: str, warehouse_id: str, shard: int) -> dict[str, Any]:
    """The DynamoDB key of shard ``shard`` of the level (shard 0: the level's own item)."""
    return {"sku": {"S": suffixed(sku, shard)}, "warehouse_id": {"S": suffixed(warehouse_id, shard)}}


def split_shard(value: str) -> tuple[str, int]:
    """``MUG#s3`` -> (``MUG``, 3); a value without a shard suffix is shard 0."""
    base, mark, number = value.rpartition(MARK)
    if mark and base and number.isdigit() and number[0] != "0":
        return base, int(number)
    return value, 0


def first_shard(key: str, line_no: int, warehouse_id: str, shards: int) -> int:
    """The shard a line's reservation tries first: a hash of the order's stock key and the line, so the
    orders of a flash sale spread evenly and a retried reservation tries the same shard again."""
    if shards <= 1:
        return 0
    digest = hashlib.blake2b(f"{key}#{line_no}#{warehouse_id}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") % shards


def split(total: int, shards: int) -> list[int]:
    """``total`` units over ``shards`` as evenly as integers go (shard 0 first); a negative total (a count
    below what is promised to orders) stays whole on shard 0."""
    if total < 0:
        return [total] + [0] * (shards - 1)
    each, extra = divmod(total, shards)
    return [each + (1 if n < extra else 0) for n in range(shards)]


def even_out(available: list[int]) -> dict[int, int]:
    """Moves (shard -> change of available) that leave every shard with an even share of the level's
    available units. The changes sum to zero: units move, none is made or lost."""
    total = sum(available)
    if total <= 0 or len(available) < 2:
        return {}
    target = split(total, len(available))
    return {n: target[n] - have for n, have in enumerate(available) if target[n] != have}


def gather(available: list[int], into: int, need: int) -> dict[int, int] | None:
    """Moves that bring shard ``into`` up to ``need`` available units, taken from the richest other shards
    first; None if the level has fewer than ``need`` available in all."""
    short = need - available[into]
    if short <= 0:
        return {}
    moves: dict[int, int] = {}
    for n in sorted((n for n in range(len(available)) if n != into and available[n] > 0),
                    key=lambda n: (-available[n], n)):
        take = min(available[n], short)
        moves[n] = -take
        short -= take
        if short == 0:
            moves[into] = need - available[into]
            return moves
    return None


def take(available: list[int], need: int) -> dict[int, int] | None:
    """Changes that take ``need`` available units out of the level, from the richest shards first; None if
    the level has fewer (a shard below zero counts against the others)."""
    if sum(available) < need:
        return None
    moves: dict[int, int] = {}
    for n in sorted(range(len(available)), key=lambda n: (-available[n], n)):
        if need == 0:
            break
        if available[n] <= 0:
            break
        amount = min(available[n], need)
        moves[n] = -amount
        need -= amount
    return moves if need == 0 else None
