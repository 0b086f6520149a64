"""Import throughput: a sandbox channel holding N orders (10,000 by default) imported in one run.

Two measurements in one process, on one embedded local stack:
- **import**: ``import_channel`` pages through the sandbox shop over real HTTP, normalizes each order
  and stores it exactly once (guard-item transaction, a look-up per page, a StartExecution per order);
- **baseline**: the same number of single ``PutItem`` calls of the same stored order item, from the
  same number of threads, on the same stack (half before the import, half after it).

The ratio between the two is the figure: what reading the channel, exactly-once storage and starting
the workflow cost against the raw write rate of the local DynamoDB. The workflow here is a one-state
state machine, so the figure is the import's own cost, not the order workflow's (``make bench`` measures
that).

    python -m benchmarks.import_throughput [--orders 10000] [--channel woocommerce] [--workers 4]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import platform
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path

PAGE_SIZES = {"shopify": 250, "woocommerce": 100, "amazon": 100}


class Profile:
    """cProfile of every thread started while it is on (the storing pool, the embedded server's request
    threads, the sandbox shop's), merged, and the AWS calls the clients make, by operation."""

    def __init__(self) -> None:
        import cProfile
        import threading

        self.profiles: list[cProfile.Profile] = []
        self.calls: dict[str, int] = {}
        self._lock = threading.Lock()

    def _count(self, event_name: str, **_: object) -> None:
        name = ".".join(event_name.split(".")[1:])  # before-call.<service>.<operation>
        with self._lock:
            self.calls[name] = self.calls.get(name, 0) + 1

    def __enter__(self) -> Profile:
        import cProfile
        import threading

        from orderflow.adapters.aws import client, reset_clients

        reset_clients()  # new connections: the server threads that answer them are profiled too
        for service in ("dynamodb", "stepfunctions"):
            client(service).meta.events.register("before-call.*.*", self._count)

        def start(*_: object) -> None:
            profile = cProfile.Profile()
            with self._lock:
                self.profiles.append(profile)
            profile.enable()

        threading.setprofile(start)
        self._main = cProfile.Profile()
        self.profiles.append(self._main)
        self._main.enable()
        return self

    def __exit__(self, *_: object) -> None:
        import threading

        self._main.disable()
        threading.setprofile(None)

    def print(self, orders: int, top: int = 30) -> None:
        import io
        import pstats

        for profile in self.profiles:
            profile.disable()
        out = io.StringIO()
        stats = pstats.Stats(*[p for p in self.profiles if p.getstats()], stream=out)
        Path("bench-results").mkdir(exist_ok=True)
        stats.dump_stats("bench-results/import_throughput.pstats")
        stats.sort_stats("tottime").print_stats(top)
        stats.sort_stats("cumulative").print_stats(top)
        print(out.getvalue())
        print("(all of it in bench-results/import_throughput.pstats)\nAWS calls during the import (per order):")
        for name, count in sorted(self.calls.items(), key=lambda kv: -kv[1]):
            print(f"  {name:<40}{count:>8}{count / orders:>8.3f}")
        total = sum(self.calls.values())
        print(f"  {'total':<40}{total:>8}{total / orders:>8.3f}")


def run(orders: int, channel: str, workers: int, moto_as_shipped: bool = False, profile: bool = False) -> dict:
    from orderflow.adapters.aws import client
    from orderflow.adapters.channel_store import ChannelOrders, ChannelStore, default_credentials
    from orderflow.adapters.dynamodb import to_item
    from orderflow.adapters.stepfunctions import WorkflowGateway
    from orderflow.channels.clients import client_for
    from orderflow.channels.importing import ImportOptions, import_channel
    from orderflow.models import Order
    from orderflow.settings import get_settings
    from orderflow.tables import ORDERS
    from orderflow.wiring import default_ports
    from orderflow_local.sandbox import AmazonSandbox, ShopifySandbox, WooCommerceSandbox
    from orderflow_local.stack import ACCOUNT, PREFIX, LocalStack

    if moto_as_shipped:  # the local stack backs up only the items a transaction touches, unless told not to
        os.environ["ORDERFLOW_MOTO_WHOLE_TABLE_TRANSACTIONS"] = "1"
    stack = LocalStack(api_port=0, serve_api=False, state_dir=Path(".orderflow/bench-import")).start()
    shop_cls = {"shopify": ShopifySandbox, "woocommerce": WooCommerceSandbox, "amazon": AmazonSandbox}[channel]
    options = {"settle_seconds": 0, "rate": 1000.0, "burst": 1000} if channel == "amazon" else {}
    shop = shop_cls(**options).start()
    try:
        sfn = client("stepfunctions")
        arn = sfn.create_state_machine(
            name=f"{PREFIX}-import-bench", roleArn=f"arn:aws:iam::{ACCOUNT}:role/bench", type="STANDARD",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}))["stateMachineArn"]
        ports = copy.copy(default_ports())
        ports.workflow = WorkflowGateway(dataclasses.replace(get_settings(), state_machine_arn=arn))

        print(f"benchmark: {orders} orders in a sandbox {channel} shop, {workers} storing threads",
              file=sys.stderr, flush=True)
        ids = shop.add_orders(orders, spread_seconds=3600)
        config, credentials = shop.channel("bench", page_size=PAGE_SIZES[channel])
        default_credentials().put("bench", credentials)
        ChannelStore().put(config)

        # -- baseline: single PutItem calls of the same stored order item, same threads, a table of the
        #    same shape; half before the import and half after it, so a change in the machine's load
        #    during the run weighs on both figures alike.
        table = f"{PREFIX}-bench-puts"
        client("dynamodb").create_table(**ORDERS.create_table_kwargs(table))
        sample = client_for(config, credentials).fetch_page(datetime.now(UTC) - timedelta(days=1), None).orders[0]
        template = Order.from_new(sample.order).model_dump(mode="json", exclude={"total"})
        template["channel_ref"] = f"bench#{sample.external_id}"

        cpu: dict[str, float] = {"puts": 0.0}

        def puts(first: int, count: int) -> float:
            items = [to_item({**template, "order_id": f"put-{i}"}) for i in range(first, first + count)]
            t0, c0 = time.perf_counter(), time.process_time()
            with ThreadPoolExecutor(workers) as pool:
                list(pool.map(lambda item: client("dynamodb").put_item(TableName=table, Item=item), items))
            cpu["puts"] += time.process_time() - c0
            return time.perf_counter() - t0

        before = puts(0, orders // 2)
        print(f"  baseline   {orders // 2} single puts in {before:6.2f}s", file=sys.stderr, flush=True)
        profiler = Profile() if profile else None
        t0, c0 = time.perf_counter(), time.process_time()
        if profiler is not None:
            with profiler:
                report = import_channel("bench", ports, options=ImportOptions(workers=workers))
        else:
            report = import_channel("bench", ports, options=ImportOptions(workers=workers))
        import_seconds = time.perf_counter() - t0
        cpu["import"] = time.process_time() - c0
        if profiler is not None:
            profiler.print(orders)
        print(f"  import     {report.new} orders in {import_seconds:6.2f}s ({report.pages} pages)", file=sys.stderr,
              flush=True)
        after = puts(orders // 2, orders - orders // 2)
        print(f"  baseline   {orders - orders // 2} single puts in {after:6.2f}s", file=sys.stderr, flush=True)
        put_seconds = before + after
        stored = ChannelOrders().lookup("bench", ids)
        assert report.new == orders and len(stored) == orders, (report.summary(), len(stored))
        assert len({o.order_id for o in stored.values()}) == orders, "an order was stored twice"
        import_rate, put_rate = orders / import_seconds, orders / put_seconds
        return {
            "benchmark": "import throughput: one run of a sandbox channel, beside single DynamoDB puts",
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": __import__("os").cpu_count()},
            "channel": channel, "orders": orders, "workers": workers, "pages": report.pages,
            "moto_transactions": "as shipped (whole-table backup)" if moto_as_shipped else "item-level backup",
            "import": {"seconds": round(import_seconds, 2), "orders_per_second": round(import_rate, 1),
                       "new": report.new, "skipped": report.skipped, "failed": report.failed},
            "baseline_single_puts": {"seconds": round(put_seconds, 2), "puts_per_second": round(put_rate, 1),
                                     "before_import_seconds": round(before, 2), "after_import_seconds": round(after, 2)},
            "ratio_import_to_puts": round(import_rate / put_rate, 3),
            # the process's CPU time (every thread: the embedded AWS, the shop, the executions) per order and
            # per put: far less disturbed than the wall clock by other work on a shared machine
            "cpu_ms_per_order": {"import": round(cpu["import"] * 1000 / orders, 3),
                                 "single_put": round(cpu["puts"] * 1000 / orders, 3)},
            "ratio_import_to_puts_cpu": round(cpu["puts"] / cpu["import"], 3),
        }
    finally:
        shop.stop()
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--channel", choices=sorted(PAGE_SIZES), default="woocommerce")
    parser.add_argument("--workers", type=int, default=4, help="threads storing a page's orders (and putting)")
    parser.add_argument("--moto-as-shipped", action="store_true",
                        help="keep moto's whole-table transaction backup (slow and memory-hungry past ~1,000 orders)")
    parser.add_argument("--profile", action="store_true",
                        help="cProfile the import (all threads, merged) and count its AWS calls; slower, not a figure")
    parser.add_argument("--json", type=Path, default=Path("bench-results/import_throughput.json"))
    args = parser.parse_args(argv)
    import logging

    from orderflow.observability import logger

    logger.setLevel("WARNING")  # no line per order event
    logging.getLogger("orderflow").setLevel(logging.WARNING)
    result = run(args.orders, args.channel, args.workers, args.moto_as_shipped, args.profile)
    i, b = result["import"], result["baseline_single_puts"]
    print(f"\n{'run':<30}{'per second':>12}{'seconds':>10}")
    print(f"{'import (orders stored)':<30}{i['orders_per_second']:>12}{i['seconds']:>10}")
    print(f"{'baseline (single PutItem)':<30}{b['puts_per_second']:>12}{b['seconds']:>10}")
    print(f"ratio import / single puts: {result['ratio_import_to_puts']} "
          f"(by CPU time: {result['ratio_import_to_puts_cpu']}, {result['cpu_ms_per_order']})")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"(written to {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
