"""End to end on the local stack: N orders from ``POST /orders`` (over HTTP) to ``completed``, with
p50/p95 per stage, beside a baseline run in the same process (the same state machine with handlers
that do nothing), and what one order costs at AWS list prices (``benchmarks/aws_prices.json``).

Counted from the run itself: state transitions (each state entered, from the execution histories),
Lambda invocations and their duration (billed as the handler's own CPU time plus 10 ms per AWS call it
makes: the wall clock around a handler here, with moto in the same process on 2 shared cores, is
reported beside it as an upper bound), DynamoDB requests with their read/write units (from item
sizes: 1 WRU per 1 KB written, 1 RRU per 4 KB read consistently, transactions twice), SQS and API
Gateway requests. What it does not count: CloudWatch Logs, X-Ray, data transfer.

    python -m benchmarks.end_to_end [--orders 300] [--workers 8] [--json bench-results/end_to_end.json]
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from pathlib import Path

PRICES = Path(__file__).resolve().parent / "aws_prices.json"
STAGES = [("created", "allocated"), ("allocated", "stock_reserved"), ("stock_reserved", "paid"),
          ("tracking_added", "completed")]


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))] if ordered else 0.0


def ts(value: str) -> float:
    return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()


#: What one AWS call (DynamoDB, SQS, Step Functions) costs a Lambda in wall-clock time on AWS, in the same
#: region: single-digit milliseconds for DynamoDB; 10 ms is on the safe side.
AWS_CALL_SECONDS = 0.010
#: The workflow and API functions' memory (infra/constructs/functions.py: FunctionSpec.memory_mb).
LAMBDA_GB = 0.5


class Meter:
    """Counts AWS requests made in this process by operation, with DynamoDB capacity estimates, and the
    calls made by the current thread (a handler's own calls)."""

    def __init__(self) -> None:
        self.mine = threading.local()
        self.calls: Counter[str] = Counter()
        self.wru = 0.0
        self.rru = 0.0
        self.lock = threading.Lock()

    def install(self) -> None:
        from orderflow.adapters.aws import _session, client

        _session().register("after-call.*.*", self._after)  # the clients' botocore session
        client.cache_clear()  # clients made before this would not report to the meter

    def thread_calls(self) -> int:
        return getattr(self.mine, "calls", 0)

    def _after(self, http_response, parsed, model, **kwargs) -> None:  # noqa: ANN001
        service = model.service_model.service_name
        self.mine.calls = self.thread_calls() + 1
        with self.lock:
            self.calls[f"{service}:{model.name}"] += 1
            if service != "dynamodb":
                return
            body = len(getattr(http_response, "content", b"") or b"")
            if model.name in ("GetItem", "Query", "Scan"):
                self.rru += max(1, math.ceil(body / 4096))
            elif model.name == "TransactWriteItems":
                self.wru += 2 * max(1, len(kwargs.get("request_dict", {}).get("body", b"")) // 1024)
            elif model.name in ("PutItem", "UpdateItem", "DeleteItem"):
                self.wru += max(1, math.ceil(len(kwargs.get("request_dict", {}).get("body", b"")) / 1024))

    def reset(self) -> None:
        with self.lock:
            self.calls.clear()
            self.wru = self.rru = 0.0


def run(orders: int, workers: int) -> dict:
    import httpx

    from orderflow import asl
    from orderflow.adapters.aws import client
    from orderflow.models import Warehouse
    from orderflow.trace import execution_arn
    from orderflow.wiring import default_ports
    from orderflow_local import lambda_binding
    from orderflow_local.stack import ACCOUNT, PREFIX, REGION, LocalStack, function_name, table_name

    meter = Meter()
    stack = LocalStack(api_port=0, token="bench", state_dir=Path(".orderflow/bench")).start()
    meter.install()
    try:
        ports = default_ports()
        ports.settings.put_warehouse(Warehouse(warehouse_id="bench", name="Bench", priority=1))
        ports.inventory.set_on_hand("BENCH-SKU", "bench", orders * 10)

        # Lambda time per function, measured around our handlers: the wall clock here (moto in this process,
        # 2 cores shared by every order in flight: an upper bound), and what AWS would bill: the handler's
        # own CPU time plus AWS_CALL_SECONDS per AWS call it makes
        durations: dict[str, list[float]] = defaultdict(list)
        #: set when the order's wait has begun (the same signal the baseline's clients wait for: no polling
        #: through the API, which would load the one process both runs share)
        waiting: dict[str, threading.Event] = defaultdict(threading.Event)
        billed: dict[str, list[float]] = defaultdict(list)

        wrappers = {}
        for name in (*asl.FUNCTION_PLACEHOLDERS.values(), "api"):
            real = lambda_binding.bound(function_name(name)).handler

            def timed(event, context, real=real, name=name):
                t0, cpu0, calls0 = time.perf_counter(), time.thread_time(), meter.thread_calls()
                try:
                    return real(event, context)
                finally:
                    if name == "fulfill":  # the wait has begun: the order is paid (or waits for stock)
                        waiting[event.get("order_id")].set()
                    # the API's own requests, not this benchmark's reads (GET /orders/{id})
                    if name != "api" or event.get("httpMethod") != "GET":
                        durations[name].append(time.perf_counter() - t0)
                        billed[name].append(time.thread_time() - cpu0
                                            + (meter.thread_calls() - calls0) * AWS_CALL_SECONDS)

            lambda_binding.bind(function_name(name), timed)
            wrappers[name] = timed

        # The baselines: the same ASL with handlers that do nothing.
        # - "no-op handlers" (the ratio's): the same path as orderflow's run below, each client POSTs the order
        #   through the same HTTP front to an API function that only starts the execution, waits for the wait to
        #   begin, and POSTs the tracking, which only resumes it;
        # - "bare workflow": executions started directly, the wait resumed at once (no API at all).
        bare = [True]
        tokens: dict[str, str] = {}
        done_base: dict[str, float] = {}
        finished: dict[str, threading.Event] = defaultdict(threading.Event)

        def noop(event, context):
            return {"order_id": event.get("order_id"), "wait_for_stock": False, "backordered": False,
                    "timeout_seconds": 60}

        def noop_fulfill(event, context):
            if bare[0]:  # the wait resumes at once: the order is done
                client("stepfunctions").send_task_success(taskToken=event["task_token"], output="{}")
                done_base[event["order_id"]] = time.perf_counter()
                finished[event["order_id"]].set()
            else:  # the tracking's request resumes it
                tokens[event["order_id"]] = event["task_token"]
                waiting[event["order_id"]].set()
            return {}

        base_ids = iter(range(10**9))

        def noop_api(event, context):
            if event["httpMethod"] == "POST" and event["path"] == "/orders":
                order_id = f"base_api_{next(base_ids):06d}"
                client("stepfunctions").start_execution(stateMachineArn=baseline_arn, name=order_id,
                                                        input=json.dumps({"order_id": order_id}))
                return {"statusCode": 201, "headers": {"Content-Type": "application/json"},
                        "body": json.dumps({"order_id": order_id})}
            if event["httpMethod"] == "POST" and event["path"].endswith("/tracking"):
                order_id = event["path"].split("/")[2]
                client("stepfunctions").send_task_success(taskToken=tokens.pop(order_id), output="{}")
                return {"statusCode": 202, "headers": {"Content-Type": "application/json"}, "body": "{}"}
            return {"statusCode": 404, "body": "{}"}

        values = {}
        for placeholder, fn in asl.FUNCTION_PLACEHOLDERS.items():
            name = f"{PREFIX}-noop-{fn}"
            lambda_binding.bind(name, {"fulfill": noop_fulfill}.get(fn, noop))
            values[placeholder] = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        values.update({p: table_name(key) for p, key in asl.TABLE_PLACEHOLDERS.items()})
        values.update({p: stack.queue_urls[key] for p, key in asl.QUEUE_PLACEHOLDERS.items()})
        baseline_arn = client("stepfunctions").create_state_machine(
            name=f"{PREFIX}-noop-workflow", definition=asl.substitute(asl.read(), values),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/noop", type="STANDARD")["stateMachineArn"]

        print(f"end to end: {orders} orders, {workers} clients", file=sys.stderr, flush=True)
        t0 = time.perf_counter()

        def one_base(i: int) -> None:
            # like the runs below: each client has one order in flight at a time
            order_id = f"base_{i:06d}"
            client("stepfunctions").start_execution(stateMachineArn=baseline_arn, name=order_id,
                                                    input=json.dumps({"order_id": order_id}))
            if not finished[order_id].wait(120):
                raise RuntimeError(f"bare baseline: order {order_id} did not finish in 120 s")

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one_base, range(orders)))
        bare_s = max(done_base.values()) - t0
        print(f"  bare workflow (no API)  {bare_s:6.2f}s", file=sys.stderr, flush=True)

        api = httpx.Client(base_url=stack.api_url, headers={"Authorization": "Bearer bench"}, timeout=30)
        body = {"lines": [{"sku": "BENCH-SKU", "quantity": 1, "unit_price": "9.99"}],
                "shipping_address": {"name": "Bench", "line1": "1 Main St", "city": "Springfield",
                                     "postal_code": "12345", "country": "US"}}

        def one(_: int) -> str:
            """One order through the API: create it, wait for its wait to begin, post its tracking."""
            order_id = api.post("/orders", json=body).json()["order_id"]
            if not waiting[order_id].wait(120):
                raise RuntimeError(f"order {order_id}: its wait did not begin in 120 s")
            response = api.post(f"/orders/{order_id}/tracking",
                                json={"carrier": "UPS", "tracking_number": f"1Z{order_id[-10:]}"})
            if response.status_code == 409:  # the wait had begun but the order was not paid yet: read, retry
                while api.get(f"/orders/{order_id}").json()["status"] != "paid":
                    time.sleep(0.05)
                response = api.post(f"/orders/{order_id}/tracking",
                                    json={"carrier": "UPS", "tracking_number": f"1Z{order_id[-10:]}"})
            response.raise_for_status()
            return order_id

        bare[0] = False
        api_function = function_name("api")
        lambda_binding.bind(api_function, noop_api)
        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(one, range(orders)))
        base_s = time.perf_counter() - t0
        lambda_binding.bind(api_function, wrappers["api"])
        print(f"  no-op handlers          {base_s:6.2f}s", file=sys.stderr, flush=True)

        meter.reset()
        for name in durations:
            durations[name].clear()
            billed[name].clear()

        t0 = time.perf_counter()
        with ThreadPoolExecutor(workers) as pool:
            ids = list(pool.map(one, range(orders)))
        # what the orders cost, before this benchmark's own reads below (the tracking's request completes the order)
        calls = dict(meter.calls)
        wru, rru = meter.wru, meter.rru
        completed = {}
        while len(completed) < orders and time.perf_counter() - t0 < 900:
            for order_id in ids:
                if order_id not in completed:
                    order = ports.orders.get(order_id)
                    if order.status == "completed":
                        completed[order_id] = order
            if len(completed) < orders:
                time.sleep(0.2)
        ours_s = time.perf_counter() - t0
        print(f"  orderflow  {ours_s:6.2f}s", file=sys.stderr, flush=True)

        stages = {}
        for a, b in STAGES:
            deltas = []
            for order in completed.values():
                at = {e.type: ts(e.at) for e in order.events}
                if a in at and b in at:
                    deltas.append((at[b] - at[a]) * 1000)
            stages[f"{a} -> {b}"] = {"p50_ms": round(pct(deltas, 50), 1), "p95_ms": round(pct(deltas, 95), 1)}

        transitions = lambda_invocations = sqs_sends = 0
        for order_id in ids[: min(50, len(ids))]:
            events = client("stepfunctions").get_execution_history(
                executionArn=execution_arn(stack.state_machine_arn, order_id), maxResults=1000)["events"]
            transitions += sum(e["type"].endswith("StateEntered") for e in events)
            scheduled = [e.get("taskScheduledEventDetails", {}) for e in events if e["type"] == "TaskScheduled"]
            lambda_invocations += sum(d.get("resourceType") == "lambda" for d in scheduled)
            # the workflow's own SendMessage (TellChannel); its consumer runs in batches of up to 10
            sqs_sends += sum(d.get("resourceType") == "sqs" for d in scheduled)
        sampled = min(50, len(ids))
        per_order = {
            "state_transitions": transitions / sampled,
            # the workflow's, the API's (create, tracking, one read) and the channel-updates consumer's (batches)
            "lambda_invocations": lambda_invocations / sampled + 3 + calls.get("sqs:SendMessage", 0) / len(ids) / 10,
            # the handlers' CPU time plus 10 ms per AWS call they make, at 512 MB
            "lambda_gb_seconds": sum(sum(v) for v in billed.values()) / len(ids) * LAMBDA_GB,
            # the wall clock around them here (moto over loopback, 2 shared cores): an upper bound
            "lambda_gb_seconds_local_wall_clock": sum(sum(v) for v in durations.values()) / len(ids) * LAMBDA_GB,
            "dynamodb_wru": wru / len(ids), "dynamodb_rru": rru / len(ids),
            "dynamodb_requests": sum(v for k, v in calls.items() if k.startswith("dynamodb:")) / len(ids),
            "api_requests": 2 + 1,  # create, tracking, one read (polling in this benchmark is extra)
            # sends only: receiving and deleting is Lambda's event source mapping's job (not billed to us)
            "sqs_requests": calls.get("sqs:SendMessage", 0) / len(ids) + sqs_sends / sampled,
        }
        return {"orders": orders, "workers": workers,
                "baseline_noop": {"seconds": round(base_s, 2), "orders_per_second": round(orders / base_s, 2),
                                  "what": "the same clients, HTTP front, ASL and Lambda invocations; handlers that "
                                          "do nothing (the API starts the execution and resumes it)"},
                "baseline_bare_workflow": {"seconds": round(bare_s, 2), "orders_per_second": round(orders / bare_s, 2),
                                           "what": "executions started directly, the wait resumed at once (no API)"},
                "orderflow": {"seconds": round(ours_s, 2), "orders_per_second": round(len(completed) / ours_s, 2),
                              "completed": len(completed)},
                "ratio_orders_per_second": round((len(completed) / ours_s) / (orders / base_s), 3),
                "stages": stages, "per_order": {k: round(v, 3) for k, v in per_order.items()},
                "aws_calls": calls, "lambda_ms_p50": {k: round(statistics.median(v) * 1000, 1)
                                                      for k, v in durations.items() if v},
                "lambda_billed_ms_p50": {k: round(statistics.median(v) * 1000, 1) for k, v in billed.items() if v}}
    finally:
        stack.stop()


def cost(per_order: dict) -> dict:
    prices = json.loads(PRICES.read_text())
    p = prices["prices"]
    standard = {
        "step_functions_standard": per_order["state_transitions"] * p["sfn_standard_per_transition"],
        "lambda_requests": per_order["lambda_invocations"] * p["lambda_per_request"],
        "lambda_duration": per_order["lambda_gb_seconds"] * p["lambda_per_gb_second"],
        "dynamodb": per_order["dynamodb_wru"] * p["ddb_per_wru"] + per_order["dynamodb_rru"] * p["ddb_per_rru"],
        "sqs": per_order["sqs_requests"] * p["sqs_per_request"],
        "api_gateway": per_order["api_requests"] * p["apigw_rest_per_request"],
    }
    per_1000 = {k: round(v * 1000, 4) for k, v in standard.items()}
    total = round(sum(standard.values()) * 1000, 4)
    return {"prices_read": prices["read_on"], "region": prices["region"], "per_1000_orders_usd": per_1000,
            "total_per_1000_orders_usd": total,
            "design_note": (
                "Each order is one Standard execution (.waitForTaskToken, days-long waits, is Standard-only) with "
                f"{per_order['state_transitions']:g} state transitions: Prepare (allocate, reserve, route in one "
                "Lambda) and one wait for all of its shipments; telling the channel and completing the order "
                "happen in the code that records the shipment.")}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=500)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--json", type=Path, default=Path("bench-results/end_to_end.json"))
    args = parser.parse_args(argv)
    from orderflow.observability import logger

    logger.setLevel("WARNING")
    result = run(args.orders, args.workers)
    result["cost"] = cost(result["per_order"])
    b, o = result["baseline_noop"], result["orderflow"]
    print(f"\nend to end, {args.orders} orders (POST /orders -> completed):")
    print(f"  baseline (no-op handlers): {b['orders_per_second']:>7} orders/s")
    print(f"  orderflow:                 {o['orders_per_second']:>7} orders/s   ratio {result['ratio_orders_per_second']}")
    for stage, figures in result["stages"].items():
        print(f"  {stage:<32} p50 {figures['p50_ms']:>8} ms   p95 {figures['p95_ms']:>8} ms")
    print("per order: " + ", ".join(f"{k} {v}" for k, v in result["per_order"].items()))
    c = result["cost"]
    print(f"cost per 1,000 orders at list prices ({c['region']}, read {c['prices_read']}): "
          f"${c['total_per_1000_orders_usd']}")
    for k, v in c["per_1000_orders_usd"].items():
        print(f"  {k:<26} ${v}")
    print(c["design_note"])
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2, default=str))
    print(f"(written to {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
