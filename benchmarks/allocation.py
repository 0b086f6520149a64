"""Allocation: decisions per second of the rule engine, beside the simplest rule, and a race.

1. **Decisions**: realistic orders (1-10 lines, 5-50 warehouses with US addresses, random stock)
   planned by the full rule engine (pinned > stock > fewest_shipments > closest > priority) and by
   the baseline (the first warehouse, by id, holding every line), on the same inputs in the same run.
2. **Race** (``--race``): N orders for M units spread over 3 warehouses, through the real workflow on
   the local stack; the units committed must equal M and no level may go negative.

    python -m benchmarks.allocation [--orders 2000] [--repeat 3] [--race 200:50] [--json bench-results/allocation.json]
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path


def make_cases(n: int, seed: int = 7, *, lines_per_order: int | None = None, warehouse_count: int | None = None):
    """Orders of 1-10 lines over 5-50 warehouses, or of exactly ``lines_per_order`` over ``warehouse_count``:
    (lines, warehouses, the units available of each line's SKU by warehouse as ``Inventory.available_for``
    reads them for the workflow's Prepare, ship-to address)."""
    from orderflow.models import Address, OrderLine, Warehouse
    from orderflow.rules.geo import _zip3

    rng = random.Random(seed)
    prefixes = sorted(_zip3())
    skus = [f"SKU-{i:04d}" for i in range(400)]
    cases = []
    for _ in range(n):
        wcount = warehouse_count or rng.randint(5, 50)
        warehouses = [Warehouse(warehouse_id=f"w{i:02d}", name=f"w{i}", priority=rng.randint(1, 5),
                                address=Address(name="w", line1="x", city="x", postal_code=rng.choice(prefixes) + "01",
                                                country="US")) for i in range(wcount)]
        lines = [OrderLine(line_no=i + 1, sku=sku, quantity=rng.randint(1, 4), unit_price="9.99")
                 for i, sku in enumerate(rng.sample(skus, lines_per_order or rng.randint(1, 10)))]
        stock = {line.sku: {w.warehouse_id: rng.choice([0, 0, 2, 5, 20]) for w in warehouses} for line in lines}
        ship_to = Address(name="c", line1="x", city="x", postal_code=rng.choice(prefixes) + "10", country="US")
        cases.append((lines, warehouses, stock, ship_to))
    return cases


def decisions(n: int, repeat: int = 3, **shape: int) -> dict:
    """Decisions per second of the rule engine and of the baseline on the same cases, built before the clock
    starts; one thread (one core). The two are timed in turn ``repeat`` times and the best pass of each kept
    (other work on a shared machine only ever slows a pass down); the wall clock, and the CPU time of this
    process beside it (what one core spent, whatever else the machine ran)."""
    from orderflow.rules.allocation import AllocationPolicy, allocate, first_with_stock

    cases = make_cases(n, **shape)
    policy = AllocationPolicy()
    base = full = base_cpu = full_cpu = float("inf")
    backordered = 0
    for _ in range(max(1, repeat)):
        t0, c0 = time.perf_counter(), time.process_time()
        for lines, warehouses, stock, _ in cases:
            first_with_stock(lines, warehouses, stock)
        base, base_cpu = min(base, time.perf_counter() - t0), min(base_cpu, time.process_time() - c0)
        t0, c0 = time.perf_counter(), time.process_time()
        backordered = 0
        for lines, warehouses, stock, ship_to in cases:
            plan = allocate(lines, warehouses, stock, policy=policy, ship_to=ship_to)
            backordered += bool(plan.backordered)
        full, full_cpu = min(full, time.perf_counter() - t0), min(full_cpu, time.process_time() - c0)
    return {"orders": n, "passes": max(1, repeat), "baseline_first_with_stock_per_second": round(n / base),
            "rule_engine_per_second": round(n / full), "ratio": round(base / full, 3),
            "rule_engine_ms_per_decision": round(full / n * 1000, 3), "orders_with_backorders": backordered,
            "baseline_per_cpu_second": round(n / base_cpu), "rule_engine_per_cpu_second": round(n / full_cpu)}


def race(orders: int, units: int) -> dict:
    from concurrent.futures import ThreadPoolExecutor

    from orderflow import service
    from orderflow.models import NewOrder, OrderStatus, Warehouse
    from orderflow.wiring import default_ports
    from orderflow_local.stack import LocalStack

    stack = LocalStack(api_port=0, serve_api=False, state_dir=Path(".orderflow/bench")).start()
    try:
        ports = default_ports()
        split = [units // 3, units // 3, units - 2 * (units // 3)]
        for i, qty in enumerate(split):
            ports.settings.put_warehouse(Warehouse(warehouse_id=f"race{i}", name=f"race{i}", priority=i))
            ports.inventory.set_on_hand("RACE-SKU", f"race{i}", qty)
        new = NewOrder.model_validate({"lines": [{"sku": "RACE-SKU", "quantity": 1, "unit_price": "1.00"}],
                                       "shipping_address": {"name": "r", "line1": "x", "city": "x",
                                                            "postal_code": "10001", "country": "US"}})
        t0 = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            ids = list(pool.map(lambda _: service.create_order(new, ports)[0].order_id, range(orders)))
        settled = {}
        while len(settled) < orders and time.perf_counter() - t0 < 600:
            for order_id in ids:
                if order_id not in settled:
                    status = ports.orders.get(order_id).status
                    if status in (OrderStatus.PAID, OrderStatus.AWAITING_STOCK, OrderStatus.NEEDS_ATTENTION):
                        settled[order_id] = status
            time.sleep(0.2)
        levels = ports.inventory.levels("RACE-SKU")
        committed = sum(lv.committed for lv in levels)
        return {"orders": orders, "units": units, "seconds": round(time.perf_counter() - t0, 2),
                "paid": sum(s == OrderStatus.PAID for s in settled.values()),
                "awaiting_stock": sum(s == OrderStatus.AWAITING_STOCK for s in settled.values()),
                "needs_attention": sum(s == OrderStatus.NEEDS_ATTENTION for s in settled.values()),
                "units_committed": committed, "negative_levels": sum(lv.available < 0 for lv in levels),
                "ok": committed == units and all(lv.available >= 0 for lv in levels)}
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=2000, help="orders for the decisions benchmark")
    parser.add_argument("--repeat", type=int, default=3,
                        help="passes over the same orders, engine and baseline in turn; the best of each is kept")
    parser.add_argument("--race", default="", help="N:M, e.g. 200:50 (runs the local stack)")
    parser.add_argument("--json", type=Path, default=Path("bench-results/allocation.json"))
    args = parser.parse_args(argv)
    from orderflow.observability import logger

    logger.setLevel("WARNING")
    result: dict = {"decisions": decisions(args.orders, args.repeat),
                    "decisions_10_lines_50_warehouses": decisions(args.orders, args.repeat, lines_per_order=10,
                                                                  warehouse_count=50)}
    for key, shape in (("decisions", "1-10 lines, 5-50 warehouses"),
                       ("decisions_10_lines_50_warehouses", "10 lines, 50 warehouses")):
        d = result[key]
        print(f"allocation decisions, {d['orders']} orders ({shape}), one core, best of {d['passes']} passes:")
        print(f"  baseline (first warehouse with stock): {d['baseline_first_with_stock_per_second']:>8}/s")
        print(f"  rule engine (all rules, explained):    {d['rule_engine_per_second']:>8}/s "
              f"({d['rule_engine_ms_per_decision']} ms each)")
        print(f"  per CPU second: engine {d['rule_engine_per_cpu_second']}/s, baseline {d['baseline_per_cpu_second']}/s")
        print(f"  ratio engine/baseline: {d['ratio']}")
    if args.race:
        n, m = (int(x) for x in args.race.split(":"))
        print(f"race: {n} orders for {m} units over 3 warehouses through the workflow…", file=sys.stderr)
        result["race"] = r = race(n, m)
        print(f"race: {r['orders']} orders for {r['units']} units -> paid {r['paid']}, awaiting_stock "
              f"{r['awaiting_stock']}, needs_attention {r['needs_attention']}; units committed "
              f"{r['units_committed']} (must be {m}); negative levels {r['negative_levels']}; "
              f"{'OK' if r['ok'] else 'FAILED'} in {r['seconds']}s")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"(written to {args.json})")
    return 0 if result.get("race", {}).get("ok", True) else 1


if __name__ == "__main__":
    sys.exit(main())
