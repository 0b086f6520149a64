"""Waiting orders on the local stack: creation -> paid p95 beside N orders waiting for their shipment.

Each ``paid`` order's execution waits (task token) until tracking arrives, possibly for days. On AWS a waiting
execution costs nothing; the local stack must not slow down or grow without bound as they pile up. Three
phases on one stack, through the real workflow and handlers:

1. ``idle``: M orders from creation to paid (closed loop), on a stack with nothing waiting;
2. ``fill``: N more orders brought to paid and left waiting for their shipment;
3. ``loaded``: M orders again, beside the N waiting ones.

It prints the p95 of each measured phase and the ratio loaded/idle (goal: within 2x), and the stack
process's threads and resident memory after each phase. A few orders warm the stack up first.
``ORDERFLOW_SFN_THREADS=1`` runs the executions on moto's own OS threads instead of the hub's greenlets
(``orderflow_local/sfn_hub.py``), for comparison.

    python -m benchmarks.waiting_orders [--waiting 5000] [--orders 50] [--workers 8]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from benchmarks.local_stack import percentile, record_paid


def resident_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return round(int(line.split()[1]) / 1024, 1)
    return 0.0


def run(waiting: int, orders: int, workers: int) -> dict:
    from orderflow import service
    from orderflow.models import NewOrder, Warehouse
    from orderflow.wiring import default_ports
    from orderflow_local.stack import LocalStack

    stack = LocalStack(api_port=0, serve_api=False, state_dir=Path(".orderflow/bench-waiting")).start()
    try:
        ports = default_ports()
        ports.settings.put_warehouse(Warehouse(warehouse_id="bench", name="Bench", priority=1))
        ports.inventory.set_on_hand("BENCH-SKU", "bench", (waiting + 2 * orders + workers) * 2)
        recorder = record_paid(waiting + 2 * orders + workers)
        address = {"name": "Bench", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345",
                   "country": "US"}
        new = NewOrder.model_validate({"lines": [{"sku": "BENCH-SKU", "quantity": 1, "unit_price": "9.99"}],
                                       "shipping_address": address})

        def phase(label: str, count: int) -> dict:
            latencies: list[float] = []
            lock = threading.Lock()
            t0 = time.perf_counter()
            done = [0]

            def one(_: int) -> None:
                at = time.perf_counter()
                order, _created = service.create_order(new, ports)
                if not recorder.event(order.order_id).wait(600):
                    raise RuntimeError(f"{order.order_id} did not reach paid in 600 s")
                with lock:
                    latencies.append(recorder.done[order.order_id] - at)
                    done[0] += 1
                    if done[0] % 250 == 0:
                        print(f"  {label}: {done[0]}/{count} paid", file=sys.stderr, flush=True)

            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(one, range(count)))
            elapsed = time.perf_counter() - t0
            result = {"orders": count, "seconds": round(elapsed, 1),
                      "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
                      "latency_p95_ms": round(percentile(latencies, 95) * 1000, 1),
                      "threads": threading.active_count(), "resident_mb": resident_mb()}
            print(f"  {label:<7} {json.dumps(result)}", file=sys.stderr, flush=True)
            return result

        print(f"benchmark: {orders} orders idle, {waiting} left waiting, {orders} orders beside them",
              file=sys.stderr, flush=True)
        phase("warm-up", workers)  # first calls import handlers and fill caches: not the idle figure
        idle = phase("idle", orders)
        fill = phase("fill", waiting)
        loaded = phase("loaded", orders)
        return {
            "benchmark": "local stack: creation -> paid beside orders waiting for their shipment",
            "waiting": waiting, "idle": idle, "fill": fill, "loaded": loaded,
            "p95_ratio_loaded_to_idle": round(loaded["latency_p95_ms"] / idle["latency_p95_ms"], 2),
            "executions_as": "OS threads (moto)" if os.environ.get("ORDERFLOW_SFN_THREADS") == "1" else "greenlets",
            "threads_per_waiting_order": round((loaded["threads"] - idle["threads"]) / max(1, waiting + orders), 2),
        }
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--waiting", type=int, default=5000, help="orders left waiting for their shipment")
    parser.add_argument("--orders", type=int, default=50, help="orders measured before and beside them")
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--json", type=Path, default=Path("bench-results/waiting_orders.json"))
    args = parser.parse_args(argv)
    from orderflow.observability import logger

    logger.setLevel("WARNING")
    result = run(args.waiting, args.orders, args.workers)
    print(f"\np95 creation -> paid: idle {result['idle']['latency_p95_ms']} ms, beside {args.waiting} waiting "
          f"{result['loaded']['latency_p95_ms']} ms: ratio {result['p95_ratio_loaded_to_idle']} (goal <= 2)")
    print(f"threads {result['idle']['threads']} -> {result['loaded']['threads']} "
          f"({result['threads_per_waiting_order']} per waiting order); resident "
          f"{result['idle']['resident_mb']} -> {result['loaded']['resident_mb']} MB")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"(written to {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
