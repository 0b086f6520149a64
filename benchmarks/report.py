"""The benchmark table: every figure of ``make bench`` beside its baseline, from ``bench-results/*.json``.

Prints a Markdown table (what the README shows) and writes the same figures to
``bench-results/summary.json``. Run after the benchmarks (``make bench`` does).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sys
from pathlib import Path
from typing import Any

#: EventBridge Scheduler after its free tier, per invocation (read with the other prices).
SCHEDULER_PER_INVOCATION = 1.00 / 1_000_000

#: The handler modules the order workflow's state machine invokes, read from its ASL (``${PrepareFunctionArn}``
#: -> functions.prepare.handler); the other functions consume queues and schedules.
STATE_MACHINE_STEPS = frozenset(
    f"functions.{re.sub(r'(?<!^)(?=[A-Z])', '_', name).lower()}.handler"
    for name in re.findall(r"\$\{(\w+)FunctionArn\}",
                           (Path(__file__).resolve().parent.parent / "statemachines" / "order_workflow.asl.json").read_text()))


def _load(folder: Path, name: str) -> dict[str, Any] | None:
    path = folder / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


def rows(folder: Path) -> list[tuple[str, str, str, str]]:
    """(figure, orderflow, baseline, ratio) for every benchmark that has results."""
    out: list[tuple[str, str, str, str]] = []
    e2e = _load(folder, "end_to_end")
    if e2e:
        out.append((f"end to end: POST /orders -> completed ({e2e['orders']} orders, {e2e['workers']} workers)",
                    f"{e2e['orderflow']['orders_per_second']} orders/s",
                    f"{e2e['baseline_noop']['orders_per_second']} orders/s (no-op handlers, same clients and API)",
                    f"{e2e['ratio_orders_per_second']}"))
        bare = e2e.get("baseline_bare_workflow")
        if bare:
            out.append(("  the bare workflow: executions started directly, no API", "",
                        f"{bare['orders_per_second']} orders/s", ""))
        for stage, figures in e2e["stages"].items():
            out.append((f"  stage {stage}", f"p50 {figures['p50_ms']:.0f} ms, p95 {figures['p95_ms']:.0f} ms", "", ""))
        cost = e2e.get("cost") or {}
        if cost:
            parts = ", ".join(f"{k} ${v}" for k, v in cost["per_1000_orders_usd"].items())
            out.append(("cost per 1,000 orders (Standard workflow, list prices "
                        f"{cost['region']}, read {cost['prices_read']})",
                        f"${cost['total_per_1000_orders_usd']}", parts, ""))
            per = e2e["per_order"]
            out.append(("  per order", f"{per['state_transitions']} transitions, {per['lambda_invocations']} "
                        f"invocations, {per['dynamodb_wru']} WRU, {per['dynamodb_rru']} RRU", "", ""))
            runs = 12 * 24 * 30  # a 5-minute schedule's invocations in a month
            out.append(("  schedules (fixed, not per order)",
                        f"${runs * SCHEDULER_PER_INVOCATION:.4f} per 5-minute schedule per month (each channel "
                        "import, supplier and FBA poll, the reconciler), plus its Lambda run", "", ""))
    local = _load(folder, "local_stack")
    if local:
        out.append((f"local stack: creation -> paid ({local['orderflow']['orders']} orders)",
                    f"{local['orderflow']['orders_per_second']} orders/s",
                    f"{local['baseline_noop_handlers']['orders_per_second']} orders/s (no-op handlers)",
                    f"{local['ratio_orders_per_second']}"))
    cold = _load(folder, "cold_start")
    if cold:
        handlers = cold["handlers_ms"]
        worst = max(handlers, key=handlers.get)
        out.append((f"cold start: handler import, fresh interpreter ({len(handlers)} handlers, {cold['runs']} runs)",
                    f"{min(handlers.values()):.0f}-{max(handlers.values()):.0f} ms (slowest {worst.split('.')[1]})",
                    f"{cold['boto3_ms']:.0f} ms (import boto3)",
                    f"{min(cold['ratio_to_boto3'].values())}-{max(cold['ratio_to_boto3'].values())}x"))
        if cold.get("cpu"):
            cpu = cold["cpu"]
            out.append(("  the same, CPU time (less disturbed by other work on the machine)",
                        f"{min(cpu['handlers_ms'].values()):.0f}-{max(cpu['handlers_ms'].values()):.0f} ms",
                        f"{cpu['boto3_ms']:.0f} ms (import boto3)",
                        f"{min(cpu['ratio_to_boto3'].values())}-{max(cpu['ratio_to_boto3'].values())}x"))
        if cold.get("floor"):
            floor = cold["floor"]
            out.append(("  floor every handler shares: botocore + Powertools + pydantic, before any orderflow code",
                        f"{floor['ms']:.0f} ms (CPU {floor['cpu_ms']:.0f} ms)", f"{cold['boto3_ms']:.0f} ms",
                        f"{floor['ratio_to_boto3']}x (CPU {floor['cpu_ratio_to_boto3']}x)"))
        steps = {m: r for m, r in cold["ratio_to_boto3"].items() if m in STATE_MACHINE_STEPS}
        if steps:
            out.append(("  the state machine's own steps (Prepare, Fulfill)",
                        ", ".join(f"{m.split('.')[1]} {cold['handlers_ms'][m]:.0f} ms" for m in steps),
                        f"{cold['boto3_ms']:.0f} ms", f"{max(steps.values())}x"))
        for clock, first in (cold.get("prepare_first_call") or {}).items():
            out.append((f"  Prepare: import + first invocation ({clock})",
                        f"{first['import_and_first_call_ms']:.0f} ms (import {first['import_ms']:.0f} ms)",
                        f"{first['boto3_ms']:.0f} ms (import boto3)", f"{first['ratio_to_boto3']}x"))
    alloc = _load(folder, "allocation")
    if alloc:
        d = alloc["decisions"]
        out.append((f"allocation decisions ({d['orders']} orders, 1-10 lines, 5-50 warehouses)",
                    f"{d['rule_engine_per_second']}/s", f"{d['baseline_first_with_stock_per_second']}/s "
                    "(first warehouse with stock)", f"{d['ratio']}"))
        heavy = alloc.get("decisions_10_lines_50_warehouses")
        if heavy:
            out.append((f"allocation decisions ({heavy['orders']} orders of 10 lines over 50 warehouses, one core)",
                        f"{heavy['rule_engine_per_second']}/s", f"{heavy['baseline_first_with_stock_per_second']}/s "
                        "(first warehouse with stock)", f"{heavy['ratio']}"))
        race = alloc.get("race")
        if race:
            out.append((f"race: {race['orders']} orders for {race['units']} units over 3 warehouses "
                        f"({race['seconds']} s)", f"{race['units_committed']} units committed, {race['paid']} paid, "
                        f"{race['awaiting_stock']} awaiting stock, {race['needs_attention']} needing attention",
                        f"{race['units']} units", "ok" if race["ok"] else "OVERSOLD or short"))
    hot = _load(folder, "hot_sku")
    if hot:
        h, sp, plain, over, aws = hot["hot"], hot["spread"], hot["hot_unsharded"], hot["oversubscribed"], hot["aws"]
        out.append((f"hot SKU: {hot['orders']} orders x 1 unit, one SKU in {hot['shards']} shards, against the same "
                    f"orders over {hot['spread_skus']} SKUs ({hot['threads']} threads, best of {hot['rounds']})",
                    f"{h['orders_per_second']} orders/s ({h['dynamodb_requests_per_order']} DynamoDB requests/order, "
                    f"{h['fell_over']} fell over to another shard)",
                    f"{sp['orders_per_second']} orders/s spread ({sp['dynamodb_requests_per_order']} requests/order)",
                    f"{hot['ratio_hot_to_spread']}"))
        out.append(("  exact counts at the end (units committed, reservation ledger entries, negative shards)",
                    f"{h['units_committed']}, {h['ledger_reservations']}, {h['negative_shards']}; oversubscribed "
                    f"({over['orders']} orders for {over['units_committed']} units): {over['reserved']} reserved, "
                    f"{over['refused']} refused", f"{hot['orders']}, {hot['orders']}, 0",
                    "ok" if hot["ok"] else "OVERSOLD or inexact"))
        if "cpu_ratio_hot_to_spread" in hot:
            out.append(("  CPU per order (one process: the client and moto), lowest of the rounds",
                        f"{min(x['cpu_ms_per_order'] for x in hot['runs']['hot'])} ms",
                        f"{min(x['cpu_ms_per_order'] for x in hot['runs']['spread'])} ms spread",
                        f"{hot['cpu_ratio_hot_to_spread']}"))
        out.append(("  one SKU, unsharded (same run)", f"{plain['orders_per_second']} orders/s", "",
                    f"{hot['ratio_unsharded_to_spread']}"))
        out.append((f"  on AWS (arithmetic): one SKU and warehouse, {hot['shards']} shards",
                    f"{aws['sharded_reservations_per_second']} reservations/s",
                    f"{aws['unsharded_reservations_per_second']}/s unsharded (1,000 WCU/s per item, 2 per "
                    "transactional write)", ""))
    imp = _load(folder, "import_throughput")
    if imp:
        out.append((f"import: {imp['orders']} orders from a sandbox {imp['channel']} in one run",
                    f"{imp['import']['orders_per_second']} orders/s",
                    f"{imp['baseline_single_puts']['puts_per_second']} puts/s (single DynamoDB puts)",
                    f"{imp['ratio_import_to_puts']}"))
        if "ratio_import_to_puts_cpu" in imp:
            cpu = imp["cpu_ms_per_order"]
            out.append(("  CPU per order (one process: the import with the shop and moto; the put with moto)",
                        f"{cpu['import']} ms", f"{cpu['single_put']} ms per put", f"{imp['ratio_import_to_puts_cpu']}"))
    return out


def headline(folder: Path) -> dict[str, float | None]:
    """The figures issue 13 sets targets for, as top-level keys of summary.json (None: not measured)."""
    e2e, cold = _load(folder, "end_to_end") or {}, _load(folder, "cold_start") or {}
    alloc, imp = _load(folder, "allocation") or {}, _load(folder, "import_throughput") or {}
    hot = _load(folder, "hot_sku") or {}
    ratios = cold.get("ratio_to_boto3", {})
    workflow = [r for module, r in ratios.items() if module != "functions.api.handler"]
    return {
        "cost_per_1000_orders_usd": (e2e.get("cost") or {}).get("total_per_1000_orders_usd"),
        "cold_start_workflow_ratio": max(workflow) if workflow else None,
        # the handlers the order workflow's state machine invokes (the others consume queues and schedules)
        "cold_start_state_machine_ratio": max((r for m, r in ratios.items() if m in STATE_MACHINE_STEPS), default=None),
        "cold_start_api_ratio": ratios.get("functions.api.handler"),
        "end_to_end_ratio": e2e.get("ratio_orders_per_second"),
        "allocation_decisions_per_s": (alloc.get("decisions_10_lines_50_warehouses") or {}).get("rule_engine_per_second"),
        "import_ratio": imp.get("ratio_import_to_puts"),
        "hot_sku_ratio": hot.get("ratio_hot_to_spread"),
    }


def table(found: list[tuple[str, str, str, str]]) -> str:
    lines = ["| figure | orderflow | baseline, same run | ratio |", "| --- | --- | --- | --- |"]
    lines += [f"| {a} | {b} | {c} | {d} |" for a, b, c, d in found]
    return "\n".join(lines)


def machine() -> str:
    return f"{platform.machine()}, {os.cpu_count()} CPUs, Python {platform.python_version()}, {platform.system()}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--results", type=Path, default=Path("bench-results"))
    args = parser.parse_args(argv)
    found = rows(args.results)
    if not found:
        print(f"no results in {args.results}/: run `make bench` first", file=sys.stderr)
        return 1
    print(f"\norderflow benchmarks ({machine()}):\n")
    print(table(found))
    summary = {"machine": machine(), **headline(args.results), "rows": [dict(zip(("figure", "orderflow", "baseline", "ratio"), r, strict=True))
                                              for r in found]}
    (args.results / "summary.json").write_text(json.dumps(summary, indent=2))
    print(f"\n(written to {args.results / 'summary.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
