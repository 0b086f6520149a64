"""Local-stack throughput: orders per second from creation to ``paid``.

Two runs in one process, on one embedded stack, through the same ASL file:
- **orderflow**: each order is created by the API's service (DynamoDB writes + StartExecution) and
  runs our real handlers: prepare (allocate, reserve: a ledger transaction, route), then the wait;
- **baseline**: the same state machine shape, bound to handlers that do nothing.

An order counts as ``paid`` when its execution reaches the wait for its shipments and that step's
handler has returned (for orderflow, that is the moment the order's status becomes ``paid``).
The ratio between the two is the figure: what our handlers and storage add to the local engine.

    python -m benchmarks.local_stack [--orders 200] [--workers 8] [--json bench-results/local_stack.json]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


class Recorder:
    def __init__(self) -> None:
        self.done: dict[str, float] = {}
        self.lock = threading.Lock()
        self.all_done = threading.Event()
        self.expected = 0
        self.each: dict[str, threading.Event] = {}

    def event(self, order_id: str) -> threading.Event:
        with self.lock:
            return self.each.setdefault(order_id, threading.Event())

    def mark(self, order_id: str) -> None:
        with self.lock:
            self.done.setdefault(order_id, time.perf_counter())
            self.each.setdefault(order_id, threading.Event()).set()
            if len(self.done) >= self.expected:
                self.all_done.set()


def record_paid(expected: int) -> Recorder:
    """Wrap the stack's fulfill function: an order counts as paid when its wait (for the shipments) started."""
    from orderflow_local import lambda_binding
    from orderflow_local.stack import function_name

    recorder = Recorder()
    recorder.expected = expected
    fulfill = lambda_binding.bound(function_name("fulfill")).handler

    def recording_fulfill(event, context):
        result = fulfill(event, context)
        if result.get("waits_for") == "shipments":
            recorder.mark(event["order_id"])
        return result

    lambda_binding.bind(function_name("fulfill"), recording_fulfill)
    return recorder


def run(orders: int, workers: int) -> dict:
    from orderflow import asl, service
    from orderflow.adapters.aws import client
    from orderflow.models import NewOrder, Warehouse
    from orderflow.wiring import default_ports
    from orderflow_local import lambda_binding
    from orderflow_local.stack import ACCOUNT, PREFIX, REGION, LocalStack, table_name

    stack = LocalStack(api_port=0, serve_api=False, state_dir=Path(".orderflow/bench")).start()
    try:
        ports = default_ports()
        ports.settings.put_warehouse(Warehouse(warehouse_id="bench", name="Bench", priority=1))
        ports.inventory.set_on_hand("BENCH-SKU", "bench", orders * 10)

        # -- orderflow: real handlers, with the await step's return recorded -------------------
        real = record_paid(orders)

        # -- baseline: the same ASL, handlers that do nothing ------------------------------------
        base = Recorder()
        base.expected = orders

        def noop(event, context):
            return {"order_id": event.get("order_id"), "wait_for_stock": False, "timeout_seconds": 60}

        def noop_fulfill(event, context):  # the wait starts: the order is "paid"
            base.mark(event["order_id"])
            return {}

        values = {}
        for placeholder, fn in asl.FUNCTION_PLACEHOLDERS.items():
            name = f"{PREFIX}-noop-{fn}"
            lambda_binding.bind(name, noop_fulfill if fn == "fulfill" else noop)
            values[placeholder] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        values.update({p: table_name(key) for p, key in asl.TABLE_PLACEHOLDERS.items()})
        values.update({p: stack.queue_urls[key] for p, key in asl.QUEUE_PLACEHOLDERS.items()})
        baseline_arn = client("stepfunctions").create_state_machine(
            name=f"{PREFIX}-noop-workflow", definition=asl.substitute(asl.read(), values),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/noop", type="STANDARD")["stateMachineArn"]

        address = {"name": "Bench", "line1": "1 Main St", "city": "Springfield", "postal_code": "12345",
                   "country": "US"}
        new = NewOrder.model_validate({"lines": [{"sku": "BENCH-SKU", "quantity": 1, "unit_price": "9.99"}],
                                       "shipping_address": address})

        def timed(label: str, recorder: Recorder, submit) -> dict:
            started: dict[str, float] = {}
            t0 = time.perf_counter()


            def one(i: int) -> tuple[str, float]:
                # closed loop: each submitting thread has one order in flight, in both runs alike
                order_id, at = submit(i)
                recorder.event(order_id).wait(300)
                return order_id, at

            with ThreadPoolExecutor(workers) as pool:
                for order_id, at in pool.map(one, range(orders)):
                    started[order_id] = at
            if not recorder.all_done.wait(timeout=600):
                raise RuntimeError(f"{label}: only {len(recorder.done)} of {orders} reached paid")
            elapsed = max(recorder.done.values()) - t0
            latencies = [recorder.done[o] - started[o] for o in started]
            print(f"  {label:<10} {orders} orders in {elapsed:6.2f}s", file=sys.stderr, flush=True)
            return {"orders": orders, "seconds": round(elapsed, 3), "orders_per_second": round(orders / elapsed, 2),
                    "latency_p50_ms": round(statistics.median(latencies) * 1000, 1),
                    "latency_p95_ms": round(percentile(latencies, 95) * 1000, 1)}

        def submit_baseline(i: int):
            order_id = f"base_{i:06d}"
            at = time.perf_counter()
            client("stepfunctions").start_execution(stateMachineArn=baseline_arn, name=order_id,
                                                    input=json.dumps({"order_id": order_id}))
            return order_id, at

        def submit_real(i: int):
            at = time.perf_counter()
            order, _ = service.create_order(new, ports)
            return order.order_id, at

        print(f"benchmark: {orders} orders, {workers} submitting threads", file=sys.stderr)
        baseline = timed("baseline", base, submit_baseline)
        ours = timed("orderflow", real, submit_real)
        level = ports.inventory.levels("BENCH-SKU")[0]
        assert level.committed == orders, f"committed {level.committed} != {orders}"
        return {
            "benchmark": "local stack: orders from creation to paid",
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": __import__("os").cpu_count()},
            "baseline_noop_handlers": baseline,
            "orderflow": ours,
            "ratio_orders_per_second": round(ours["orders_per_second"] / baseline["orders_per_second"], 3),
            "stock_committed_check": {"expected": orders, "committed": level.committed},
        }
    finally:
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=200)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--json", type=Path, default=Path("bench-results/local_stack.json"))
    parser.add_argument("--log-level", default="WARNING",
                        help="orderflow's log level during the run (default WARNING: no line per order event)")
    args = parser.parse_args(argv)
    from orderflow.observability import logger

    logger.setLevel(args.log_level)
    result = run(args.orders, args.workers)
    b, o = result["baseline_noop_handlers"], result["orderflow"]
    print(f"\n{'run':<22}{'orders/s':>10}{'p50 ms':>10}{'p95 ms':>10}")
    print(f"{'baseline (no-op)':<22}{b['orders_per_second']:>10}{b['latency_p50_ms']:>10}{b['latency_p95_ms']:>10}")
    print(f"{'orderflow':<22}{o['orders_per_second']:>10}{o['latency_p50_ms']:>10}{o['latency_p95_ms']:>10}")
    print(f"ratio orderflow / baseline: {result['ratio_orders_per_second']}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"(written to {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
