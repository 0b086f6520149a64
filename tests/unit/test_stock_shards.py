"""The arithmetic of stock shards (orderflow.adapters.stock_shards): keys, the shard an order tries first,
and moves between shards that never make or lose a unit. The reads and writes are tested on the local
stack's DynamoDB (tests/integration/test_hot_sku.py)."""

from __future__ import annotations

import random
from collections import Counter

import pytest

from orderflow.adapters import stock_shards as shards


def test_shard_zero_is_the_level_itself_and_other_shards_are_keyed_apart():
    assert shards.shard_key("MUG-12OZ", "nyc", 0) == {"sku": {"S": "MUG-12OZ"}, "warehouse_id": {"S": "nyc"}}
    assert shards.shard_key("MUG-12OZ", "nyc", 3) == {"sku": {"S": "MUG-12OZ#s3"}, "warehouse_id": {"S": "nyc#s3"}}
    for sku in ("MUG-12OZ", "a/b.c_d-e", "X"):
        for n in (0, 1, 31):
            assert shards.split_shard(shards.suffixed(sku, n)) == (sku, n)
    assert shards.split_shard("MUG#s") == ("MUG#s", 0) and shards.split_shard("MUG#s01") == ("MUG#s01", 0)


def test_an_order_tries_the_same_shard_every_time_and_orders_spread_evenly():
    assert shards.first_shard("ord_1#1", 1, "nyc", 1) == 0
    picks = [shards.first_shard(f"ord_{i}#1", 1, "nyc", 8) for i in range(8000)]
    assert picks[:50] == [shards.first_shard(f"ord_{i}#1", 1, "nyc", 8) for i in range(50)]
    counts = Counter(picks)
    assert set(counts) == set(range(8)) and all(900 < c < 1100 for c in counts.values())


@pytest.mark.parametrize("total", [0, 1, 7, 8, 9, 100, -5])
def test_split_keeps_every_unit(total):
    parts = shards.split(total, 4)
    assert sum(parts) == total and len(parts) == 4
    if total >= 0:
        assert max(parts) - min(parts) <= 1 and parts == sorted(parts, reverse=True)


def test_moves_between_shards_never_make_or_lose_a_unit_nor_take_more_than_a_shard_has():
    rng = random.Random(13)
    for _ in range(2000):
        available = [rng.choice([-3, 0, 0, 1, 2, 5, 40]) for _ in range(rng.randint(1, 8))]
        moves = shards.even_out(available)
        assert sum(moves.values()) == 0
        assert all(available[n] + d >= 0 for n, d in moves.items() if d < 0)
        after = [a + moves.get(n, 0) for n, a in enumerate(available)]
        if sum(available) > 0:
            assert max(after) - min(after) <= 1
        need = rng.randint(1, 50)
        into = rng.randrange(len(available))
        gathered = shards.gather(available, into, need)
        if gathered is None:
            assert available[into] + sum(a for n, a in enumerate(available) if n != into and a > 0) < need
        else:
            assert sum(gathered.values()) == 0
            assert all(-d <= available[n] for n, d in gathered.items() if d < 0)
            assert available[into] + gathered.get(into, 0) >= need
        taken = shards.take(available, need)
        if taken is None:  # the level's total decides: a shard below zero counts against the others
            assert sum(available) < need
        else:
            assert sum(available) >= need
            assert -sum(taken.values()) == need and all(-d <= available[n] for n, d in taken.items())
