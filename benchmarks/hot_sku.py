"""A hot SKU: N orders racing for one sharded SKU, beside the same N orders spread over many SKUs.

Each order does what the workflow's Prepare task does to stock: the allocation's read of the SKU's levels
(summed over the shards) and the reservation of one unit (one TransactWriteItems: the shard's conditional
update and the ledger entry). Same threads, same local stack, same run:

- **spread**: the N orders over M SKUs (default 200), each an ordinary unsharded level with N/M units;
- **hot**: the N orders on one SKU split over K shards (default 8) holding N units: every unit goes,
  the last ones scattered over the shards (orders fall over to other shards, units are gathered);
- **hot, unsharded** (context): the same on one unsharded level;
- **oversubscribed**: N orders for N/2 units of the sharded SKU: exactly N/2 reserved, the rest refused.

After each run the counts must be exact: units committed == min(N, stock) == reservation ledger entries,
no shard negative. The figure is the ratio hot / spread. Locally moto serializes every DynamoDB write
and has no per-item throughput limit, so the ratio shows what sharding costs here (the summed read, the
fall-overs at the end), not what it buys on AWS: that is the arithmetic in :data:`AWS` (and the README).

    python -m benchmarks.hot_sku [--orders 2000] [--shards 8] [--spread 200] [--threads 8]
"""

from __future__ import annotations

import argparse
import json
import secrets
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

#: The AWS side, per DynamoDB's documented limits and units: one partition (so one item) takes up to
#: 1,000 write units a second; a transactional write costs 2 units per KB of the item; an index write 1.
ITEM_WCU_PER_SECOND = 1000
TRANSACTIONAL_WCU = 2


def aws_arithmetic(shards: int) -> dict:
    """What a SKU's level can take on AWS with ``shards`` shards (see the README's Performance section)."""
    per_shard = ITEM_WCU_PER_SECOND // TRANSACTIONAL_WCU  # reservations a second one shard item takes
    return {
        "per_shard_reservations_per_second": per_shard,
        "unsharded_reservations_per_second": per_shard,
        "sharded_reservations_per_second": shards * per_shard,
        # a 1-unit reservation: the shard (2, transactional) + its ledger entry (2, a new item) + the
        # inventory's by_warehouse index (1) + the ledger's by_sku index (1)
        "wcu_per_reservation": 2 + 2 + 1 + 1,
        # the allocation's strongly consistent read: the SKU's levels (1 RCU) + the other shards (1 each)
        "rcu_per_order_read": 1 + (shards - 1),
    }


class Calls:
    """DynamoDB requests by operation, counted on the process's client."""

    def __init__(self) -> None:
        self.by_op: dict[str, int] = {}
        self._lock = threading.Lock()

    def __call__(self, event_name: str, **_: object) -> None:
        op = event_name.rsplit(".", 1)[-1]
        with self._lock:
            self.by_op[op] = self.by_op.get(op, 0) + 1

    def take(self) -> dict[str, int]:
        with self._lock:
            out, self.by_op = dict(sorted(self.by_op.items())), {}
        return out


def ledger_entries(prefix: str) -> list[dict]:
    from orderflow.adapters.aws import client
    from orderflow.adapters.dynamodb import from_item
    from orderflow.settings import get_settings

    kwargs = {"TableName": get_settings().ledger_table, "FilterExpression": "begins_with(entry_id, :p)",
              "ExpressionAttributeValues": {":p": {"S": prefix}}}
    out: list[dict] = []
    while True:
        resp = client("dynamodb").scan(**kwargs)
        out += [from_item(i) for i in resp.get("Items", [])]
        if "LastEvaluatedKey" not in resp:
            return out
        kwargs["ExclusiveStartKey"] = resp["LastEvaluatedKey"]


def race(label: str, prefix: str, skus: list[str], warehouse_id: str, orders: int, threads: int,
         calls: Calls) -> dict:
    """``orders`` orders, order i for one unit of ``skus[i % len(skus)]``, from ``threads`` threads."""
    from orderflow import orders as order_rules
    from orderflow.adapters import stock_shards
    from orderflow.adapters.dynamodb import InventoryRepository
    from orderflow.errors import InsufficientStock, TransientError
    from orderflow.models import AllocatedLine

    local = threading.local()
    # order ids as random as real ones (new_id's, a channel order's hash), so orders pick shards as they would
    order_ids = [f"{prefix}{secrets.token_hex(6)}" for _ in range(orders)]
    lock, retried = threading.Lock(), [0]

    def one(i: int) -> bool:
        inventory = getattr(local, "inventory", None)
        if inventory is None:
            inventory = local.inventory = InventoryRepository()
        sku = skus[i % len(skus)]
        for attempt in range(5):
            inventory.available_for([sku])  # the allocation's read
            try:
                return inventory.reserve(order_rules.stock_key(order_ids[i], 1),
                                         [AllocatedLine(line_no=1, sku=sku, quantity=1, warehouse_id=warehouse_id)])
            except InsufficientStock:
                return False
            except TransientError:  # the workflow retries the step (the shards kept moving under it)
                with lock:
                    retried[0] += 1
                time.sleep(0.05 * 2 ** attempt)
        raise RuntimeError(f"order {i} kept failing")

    calls.take()
    t0, cpu0 = time.perf_counter(), time.process_time()
    with ThreadPoolExecutor(threads) as pool:
        reserved = sum(pool.map(one, range(orders)))
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    requests = calls.take()

    inventory = InventoryRepository()
    per_sku = {sku: inventory.shard_levels(sku, warehouse_id) for sku in skus}
    shards = [s for levels in per_sku.values() for s in levels]
    entries = [e for e in ledger_entries(prefix) if e["kind"] == "reserve"]
    # reservations that did not land on the shard they tried first (entry ids: {order}#p1#{line}#{wh}#reserve)
    first = sum(1 for e in entries if e.get("shard", 0) == stock_shards.first_shard(
        e["entry_id"].rsplit("#", 3)[0], 1, warehouse_id, len(per_sku[stock_shards.split_shard(e["sku"])[0]])))
    committed = sum(s["committed"] for s in shards)
    out = {
        "orders": orders, "skus": len(skus), "shards_per_sku": len(shards) // len(skus),
        "seconds": round(seconds, 3), "orders_per_second": round(orders / seconds, 1),
        # the process's CPU (client and moto alike, one process): what an order costs here, whatever else
        # the machine is running (the wall clock is not: other work on a shared machine slows any run)
        "cpu_ms_per_order": round(cpu / orders * 1000, 3),
        "reserved": reserved, "refused": orders - reserved,
        "units_committed": committed, "ledger_reservations": len(entries),
        "negative_shards": sum(1 for s in shards if s["available"] < 0 or s["committed"] < 0),
        "fell_over": len(entries) - first, "retried": retried[0],
        "dynamodb_requests_per_order": round(sum(requests.values()) / orders, 2),
        "dynamodb_requests": requests,
    }
    print(f"  {label:<26} {orders} orders in {seconds:6.2f}s: {out['orders_per_second']:>7} orders/s, "
          f"{out['cpu_ms_per_order']} CPU ms/order, {reserved} reserved, {out['fell_over']} fell over, "
          f"{out['dynamodb_requests_per_order']} DynamoDB requests/order", file=sys.stderr, flush=True)
    return out


def run(orders: int, shards: int, spread: int, threads: int, rounds: int) -> dict:
    from orderflow.adapters.aws import client
    from orderflow.adapters.dynamodb import InventoryRepository
    from orderflow.models import new_id
    from orderflow_local.stack import LocalStack

    stack = LocalStack(api_port=0, serve_api=False, state_dir=Path(".orderflow/bench")).start()
    try:
        calls = Calls()
        client("dynamodb").meta.events.register("before-call.dynamodb.*", calls)
        inventory = InventoryRepository()
        tag = new_id("hot").split("_", 1)[1][-10:]
        wid = "hot"
        results: dict[str, list[dict]] = {"spread": [], "hot": [], "hot_unsharded": []}
        for r in range(rounds):  # interleaved: drift over the run hits both alike
            spread_skus = [f"SPREAD-{tag}-{r}-{i:04d}" for i in range(spread)]
            for n, sku in enumerate(spread_skus):
                inventory.set_on_hand(sku, wid, orders // spread + (1 if n < orders % spread else 0))
            hot, plain = f"HOT-{tag}-{r}", f"HOT1-{tag}-{r}"
            inventory.set_on_hand(hot, wid, orders)
            inventory.set_shards(hot, wid, shards)
            inventory.set_on_hand(plain, wid, orders)
            results["spread"].append(race("spread", f"sp{r}-{tag}-", spread_skus, wid, orders, threads, calls))
            results["hot"].append(race(f"one SKU, {shards} shards", f"ho{r}-{tag}-", [hot], wid, orders, threads,
                                       calls))
            results["hot_unsharded"].append(race("one SKU, unsharded", f"h1{r}-{tag}-", [plain], wid, orders,
                                                 threads, calls))
        over = f"OVER-{tag}"
        inventory.set_on_hand(over, wid, orders // 2)
        inventory.set_shards(over, wid, shards)
        oversubscribed = race(f"oversubscribed ({orders // 2} units)", f"ov-{tag}-", [over], wid, orders, threads,
                              calls)
    finally:
        stack.stop()

    best = {name: max(runs, key=lambda x: x["orders_per_second"]) for name, runs in results.items()}
    checks = {name: all(x["units_committed"] == x["reserved"] == x["ledger_reservations"] == orders
                        and x["negative_shards"] == 0 for x in runs) for name, runs in results.items()}
    checks["oversubscribed"] = (oversubscribed["units_committed"] == oversubscribed["reserved"]
                                == oversubscribed["ledger_reservations"] == orders // 2
                                and oversubscribed["negative_shards"] == 0)
    return {
        "benchmark": "hot SKU: N orders each reserving 1 unit of one sharded SKU, beside the same N over many SKUs",
        "orders": orders, "threads": threads, "shards": shards, "spread_skus": spread, "rounds": rounds,
        "spread": best["spread"], "hot": best["hot"], "hot_unsharded": best["hot_unsharded"],
        "oversubscribed": oversubscribed, "runs": results,
        "ratio_hot_to_spread": round(best["hot"]["orders_per_second"] / best["spread"]["orders_per_second"], 3),
        "ratio_unsharded_to_spread": round(best["hot_unsharded"]["orders_per_second"]
                                           / best["spread"]["orders_per_second"], 3),
        # the same ratio from the CPU an order costs (the lowest of each kind's rounds)
        "cpu_ratio_hot_to_spread": round(min(x["cpu_ms_per_order"] for x in results["spread"])
                                         / min(x["cpu_ms_per_order"] for x in results["hot"]), 3),
        "checks": checks, "ok": all(checks.values()),
        "aws": aws_arithmetic(shards),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--spread", type=int, default=200, help="SKUs the spread run's orders go to")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the best of each kind counts")
    parser.add_argument("--json", type=Path, default=Path("bench-results/hot_sku.json"))
    args = parser.parse_args(argv)
    from orderflow.observability import logger

    logger.setLevel("WARNING")
    print(f"hot SKU: {args.orders} orders, {args.threads} threads, {args.shards} shards vs {args.spread} SKUs…",
          file=sys.stderr)
    result = run(args.orders, args.shards, args.spread, args.threads, args.rounds)
    s, h, u, o = result["spread"], result["hot"], result["hot_unsharded"], result["oversubscribed"]
    print(f"\n{'run':<34}{'orders/s':>10}{'reserved':>10}{'committed':>11}{'ledger':>8}{'negative':>10}")
    for name, x in ((f"spread over {args.spread} SKUs", s), (f"one SKU, {args.shards} shards", h),
                    ("one SKU, unsharded", u), (f"oversubscribed ({args.orders // 2} units)", o)):
        print(f"{name:<34}{x['orders_per_second']:>10}{x['reserved']:>10}{x['units_committed']:>11}"
              f"{x['ledger_reservations']:>8}{x['negative_shards']:>10}")
    print(f"ratio one SKU / spread: {result['ratio_hot_to_spread']} (unsharded: {result['ratio_unsharded_to_spread']}; "
          f"from CPU per order: {result['cpu_ratio_hot_to_spread']})")
    aws = result["aws"]
    print(f"AWS: {args.shards} shards x {aws['per_shard_reservations_per_second']} reservations/s per shard = "
          f"{aws['sharded_reservations_per_second']}/s per SKU and warehouse (unsharded: "
          f"{aws['unsharded_reservations_per_second']}/s)")
    print("exact counts: " + ("OK" if result["ok"] else f"FAILED {result['checks']}"))
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"(written to {args.json})")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
