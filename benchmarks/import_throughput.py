"""Import throughput: a sandbox channel holding N orders (10,000 by default) imported in one run.

Two measurements in one process, on one embedded local stack:
- **import**: ``import_channel`` pages through the sandbox shop over real HTTP, normalizes each order
  and stores it exactly once (a look-up per page, a page's new orders in one transaction, a
  StartExecution per order);
- **baseline**: the same number of single ``PutItem`` calls of the same stored order item, from the
  same number of threads, on the same stack.

The two take turns in ``--rounds`` rounds (4 by default): in each, a quarter of the puts, one import of
its own sandbox shop holding a quarter of the orders, another quarter of the puts. The stack's tables
(and the process's heap, which the garbage collector walks) grow as the run goes, so each side is timed
as often early as late; one import followed by all the puts read anywhere from 0.67 to 0.95 on the same
code on this machine.

The ratio between the two is the figure: what reading the channel, exactly-once storage and starting
the workflow cost against the raw write rate of the local DynamoDB. The workflow here is a one-state
state machine, so the figure is the import's own cost, not the order workflow's (``make bench`` measures
that).

    python -m benchmarks.import_throughput [--orders 10000] [--channel woocommerce] [--workers 4] [--rounds 4]
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

        from orderflow.adapters.aws import client

        self._main.disable()
        threading.setprofile(None)
        for service in ("dynamodb", "stepfunctions"):  # the puts after the import are not the import's calls
            client(service).meta.events.unregister("before-call.*.*", self._count)

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


def run(orders: int, channel: str, workers: int, moto_as_shipped: bool = False, profile: bool = False,
        rounds: int = 4) -> dict:
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
    rounds = max(1, min(rounds, orders))
    shares = [orders // rounds + (r < orders % rounds) for r in range(rounds)]  # orders per round
    shops: list = []
    try:
        for _ in range(rounds):  # started inside the try: a shop that fails to start stops the others
            shops.append(shop_cls(**options).start())
        sfn = client("stepfunctions")
        arn = sfn.create_state_machine(
            name=f"{PREFIX}-import-bench", roleArn=f"arn:aws:iam::{ACCOUNT}:role/bench", type="STANDARD",
            definition=json.dumps({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}}))["stateMachineArn"]
        ports = copy.copy(default_ports())
        ports.workflow = WorkflowGateway(dataclasses.replace(get_settings(), state_machine_arn=arn))

        print(f"benchmark: {orders} orders in {rounds} sandbox {channel} shops (one per round), {workers} storing "
              "threads", file=sys.stderr, flush=True)
        names, ids = [], []
        for r, (shop, share) in enumerate(zip(shops, shares, strict=True)):
            ids.append(shop.add_orders(share, spread_seconds=3600))
            config, credentials = shop.channel(f"bench{r}", page_size=PAGE_SIZES[channel])
            default_credentials().put(config.channel_id, credentials)
            ChannelStore().put(config)
            names.append(config.channel_id)

        # -- baseline: single PutItem calls of the same stored order item, same threads, a table of the
        #    same shape; a quarter of them before and after each round's import, so a change in the
        #    machine's load or the process's heap during the run weighs on both figures alike.
        table = f"{PREFIX}-bench-puts"
        client("dynamodb").create_table(**ORDERS.create_table_kwargs(table))
        config, credentials = shops[0].channel(names[0], page_size=PAGE_SIZES[channel])
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

        profiler = Profile() if profile else None
        before = after = import_seconds = 0.0
        cpu["import"] = 0.0
        new = pages = skipped = failed = put_no = 0
        stored_ids: set[str] = set()
        for r, (name, share) in enumerate(zip(names, shares, strict=True)):
            half = share // 2
            seconds = puts(put_no, half)
            before, put_no = before + seconds, put_no + half
            print(f"  round {r + 1}/{rounds}: {half} single puts in {seconds:6.2f}s", file=sys.stderr, flush=True)
            t0, c0 = time.perf_counter(), time.process_time()
            if profiler is not None:
                with profiler:
                    report = import_channel(name, ports, options=ImportOptions(workers=workers))
            else:
                report = import_channel(name, ports, options=ImportOptions(workers=workers))
            seconds = time.perf_counter() - t0
            cpu["import"] += time.process_time() - c0
            import_seconds += seconds
            print(f"  round {r + 1}/{rounds}: import of {report.new} orders in {seconds:6.2f}s ({report.pages} pages)",
                  file=sys.stderr, flush=True)
            seconds = puts(put_no, share - half)
            after, put_no = after + seconds, put_no + share - half
            print(f"  round {r + 1}/{rounds}: {share - half} single puts in {seconds:6.2f}s", file=sys.stderr, flush=True)
            new, pages = new + report.new, pages + report.pages
            skipped, failed = skipped + report.skipped, failed + report.failed
            stored = ChannelOrders().lookup(name, ids[r])
            assert report.new == share and len(stored) == share, (report.summary(), len(stored))
            stored_ids |= {o.order_id for o in stored.values()}
        if profiler is not None:
            profiler.print(orders)
        assert put_no == orders and new == orders and len(stored_ids) == orders, "an order was stored twice or lost"
        put_seconds = before + after
        import_rate, put_rate = orders / import_seconds, orders / put_seconds
        return {
            "benchmark": "import throughput: one run of a sandbox channel, beside single DynamoDB puts",
            "machine": {"python": platform.python_version(), "platform": platform.platform(),
                        "cpus": __import__("os").cpu_count()},
            "channel": channel, "orders": orders, "workers": workers, "pages": pages, "rounds": rounds,
            "moto_transactions": "as shipped (whole-table backup)" if moto_as_shipped else "item-level backup",
            "import": {"seconds": round(import_seconds, 2), "orders_per_second": round(import_rate, 1),
                       "new": new, "skipped": skipped, "failed": failed},
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
        for shop in shops:
            shop.stop()
        stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=10_000)
    parser.add_argument("--channel", choices=sorted(PAGE_SIZES), default="woocommerce")
    parser.add_argument("--workers", type=int, default=4, help="threads storing a page's orders (and putting)")
    parser.add_argument("--rounds", type=int, default=4,
                        help="rounds of puts, an import of its own shop, puts (the orders and puts shared out)")
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
    result = run(args.orders, args.channel, args.workers, args.moto_as_shipped, args.profile, args.rounds)
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
