"""Cold start: the import time of each Lambda handler module in a fresh interpreter, beside
``import boto3`` alone measured the same way in the same run (what every function pays at least), and beside
the floor all handlers share (:data:`FLOOR`: botocore's clients, Powertools and pydantic, before any orderflow
code; the functions' AWS clients are botocore's, so no handler imports boto3 itself).

    python -m benchmarks.cold_start [--runs 7] [--json bench-results/cold_start.json] [--no-first-call]

Each run imports ``boto3`` and then every handler, each in its own fresh interpreter, so a busy machine
slows the baseline and the handlers alike; a figure is the minimum over the runs (the least disturbed).
Both clocks are kept: the wall clock (``handlers_ms``, ``ratio_to_boto3``) and the interpreter's CPU time
(``cpu``), which other work on a shared machine disturbs far less (an import is CPU-bound: on Lambda the two
are about the same).

Lazy imports can move work from the import to the first invocation, which a Lambda cold start pays too.
So the run also times the Prepare handler's import **and its first invocation** (a new order of two lines
planned, reserved and routed) in a fresh interpreter against DynamoDB on a moto server on loopback.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = ("import time; t, c = time.perf_counter(), time.process_time(); {statement}; "
         "print(time.perf_counter() - t, time.process_time() - c)")
#: What every handler imports before any orderflow code: botocore's session and clients (what
#: ``orderflow.adapters.aws`` creates clients with), Powertools (any of its modules loads its package: Logger,
#: Metrics and the Tracer module) and pydantic with the constrained types the models use.
FLOOR = ("import botocore.session, botocore.client, aws_lambda_powertools; "
         "from pydantic import BaseModel, StringConstraints")
ENV = {"PATH": "/usr/bin:/bin", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
       "PYTHONDONTWRITEBYTECODE": "1"}

#: The Prepare handler's import, then its first invocation, in a fresh interpreter (what a cold start pays).
FIRST_CALL_PROBE = """
import json, time
started, cpu_started = time.perf_counter(), time.process_time()
import functions.prepare.handler as handler
imported, cpu_imported = time.perf_counter(), time.process_time()

class Context:
    function_name = "orderflow-prepare"
    function_version = "$LATEST"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:orderflow-prepare"
    aws_request_id = "cold-start-probe"
    log_group_name = log_stream_name = "cold-start"

    def get_remaining_time_in_millis(self):
        return 60_000

answer = handler.lambda_handler({{"order_id": "{order_id}", "execution_id": "probe"}}, Context())
called, cpu_called = time.perf_counter(), time.process_time()
print("FIRST_CALL " + json.dumps({{"import": imported - started, "first_call": called - imported,
                                   "cpu_import": cpu_imported - cpu_started, "cpu_first_call": cpu_called - cpu_imported,
                                   "reserved": answer.get("reserved", False)}}))
"""


def handler_modules(root: Path = ROOT) -> list[str]:
    return sorted(f"functions.{p.parent.name}.handler" for p in (root / "functions").glob("*/handler.py"))


def import_seconds(module: str, root: Path = ROOT) -> tuple[float, float]:
    """``import module`` (or the :data:`FLOOR` statement) in a fresh interpreter: (wall clock, CPU time) in
    seconds."""
    statement = FLOOR if module == "floor" else f"import {module}"
    out = subprocess.run([sys.executable, "-c", PROBE.format(statement=statement)], cwd=root, env=ENV,
                         capture_output=True, text=True, check=True)
    wall, cpu = out.stdout.strip().splitlines()[-1].split()
    return float(wall), float(cpu)


def compile_sources(root: Path = ROOT) -> None:
    """Bring the bytecode of orderflow's code and of the installed packages (boto3's included) up to date
    before timing imports, so every import in the comparison reads its ``.pyc``. The runs below never write
    it (``PYTHONDONTWRITEBYTECODE``, which this machine's environment sets too, and which a fresh install
    with uv leaves unwritten), so a module edited since its ``.pyc`` was written would be compiled from
    source on every import: 13 ms for the DynamoDB adapter, which every handler imports, was counted as its
    import time before this. Up-to-date files are skipped; the first run after an install takes a while."""
    import compileall
    import sysconfig

    print("bringing the bytecode cache up to date…", file=sys.stderr, flush=True)
    for folder in (root / "orderflow", root / "functions", Path(sysconfig.get_paths()["purelib"])):
        compileall.compile_dir(folder, quiet=2, workers=0)


def measure(modules: list[str], runs: int, root: Path = ROOT) -> dict[str, tuple[float, float]]:
    """{"boto3", "floor" and each module: (wall, CPU)}, each the minimum of ``runs`` runs, all interleaved."""
    times: dict[str, list[tuple[float, float]]] = {m: [] for m in ("boto3", "floor", *modules)}
    for _ in range(runs):
        for module in times:
            times[module].append(import_seconds(module, root))
    return {m: (min(t[0] for t in ts), min(t[1] for t in ts)) for m, ts in times.items()}


class PrepareStage:
    """A moto server on loopback with the tables, two warehouses with stock and a new order per probe."""

    def __init__(self) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.env = {"AWS_ENDPOINT_URL": f"http://127.0.0.1:{self.port}", "AWS_ACCESS_KEY_ID": "testing",
                    "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
        self.saved = {k: os.environ.get(k) for k in self.env}

    def __enter__(self) -> PrepareStage:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self.server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.server.start()
        os.environ.update(self.env)
        from orderflow.adapters.aws import client, reset_clients
        from orderflow.observability import logger
        from orderflow.queues import STOCK_SYNC
        from orderflow.tables import TABLES
        from orderflow.wiring import default_ports
        from orderflow_local.seed import seed

        logger.setLevel(logging.WARNING)  # no line per seeded order
        reset_clients()
        for table in TABLES:
            client("dynamodb").create_table(**table.create_table_kwargs(table.env_var and os.environ.get(
                table.env_var) or f"orderflow-{table.key}"))
        self.ports = default_ports()
        seed(self.ports)
        for sku in ("TSHIRT-BLK-M", "MUG-12OZ"):
            for warehouse in ("east", "west"):
                self.ports.inventory.set_on_hand(sku, warehouse, 10_000, reason="cold start benchmark")
        # the stock-sync queue is configured: each stock change asks whether a channel syncs the SKU
        self.env[STOCK_SYNC.env_var] = f"http://127.0.0.1:{self.port}/123456789012/stock-sync.fifo"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        for k, v in self.saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v

    def new_order(self) -> str:
        from orderflow.models import NewOrder, Order

        new = NewOrder.model_validate({
            "lines": [{"sku": "TSHIRT-BLK-M", "quantity": 2, "unit_price": "10.00"},
                      {"sku": "MUG-12OZ", "quantity": 1, "unit_price": "8.50"}],
            "shipping_address": {"name": "Ada", "line1": "1 Main St", "city": "Reno", "region": "NV",
                                 "postal_code": "89502", "country": "US"}})
        return self.ports.orders.create(Order.from_new(new))[0].order_id

    def first_call(self, root: Path = ROOT) -> dict[str, float]:
        """The Prepare handler's import and first invocation (seconds), in a fresh interpreter."""
        env = {**ENV, **self.env, "AWS_LAMBDA_FUNCTION_NAME": "orderflow-prepare",
               "POWERTOOLS_SERVICE_NAME": "orderflow-prepare", "POWERTOOLS_LOG_LEVEL": "WARNING"}
        out = subprocess.run([sys.executable, "-c", FIRST_CALL_PROBE.format(order_id=self.new_order())], cwd=root,
                             env=env, capture_output=True, text=True, check=True)
        line = next(x for x in out.stdout.splitlines() if x.startswith("FIRST_CALL "))
        figures = json.loads(line.removeprefix("FIRST_CALL "))
        if not figures.pop("reserved"):
            raise RuntimeError(f"the probe's order was not reserved: {out.stdout[-2000:]}")
        return figures


def first_call(runs: int, root: Path = ROOT) -> dict[str, dict[str, float]]:
    """boto3's import and the Prepare handler's import and first invocation, by the wall clock and in CPU
    time (minimum of ``runs``, interleaved). The moto server's own work is in another thread of this
    process: the probe's CPU time is the handler's alone."""
    base: list[tuple[float, float]] = []
    probes: list[dict[str, float]] = []
    with PrepareStage() as stage:
        stage.first_call(root)  # the server's own first requests (its lazy imports) are not the probe's
        for _ in range(runs):
            base.append(import_seconds("boto3", root))
            probes.append(stage.first_call(root))
    out = {}
    for clock, (imp, call), index in (("wall", ("import", "first_call"), 0),
                                      ("cpu", ("cpu_import", "cpu_first_call"), 1)):
        boto3 = min(b[index] for b in base)
        total = min(p[imp] + p[call] for p in probes)
        out[clock] = {"boto3_ms": round(boto3 * 1000, 1), "import_ms": round(min(p[imp] for p in probes) * 1000, 1),
                      "import_and_first_call_ms": round(total * 1000, 1), "ratio_to_boto3": round(total / boto3, 2)}
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--json", type=Path, default=Path("bench-results/cold_start.json"))
    parser.add_argument("--no-first-call", action="store_true", help="skip Prepare's import + first invocation")
    args = parser.parse_args(argv)
    compile_sources()
    times = measure(handler_modules(), args.runs)
    (base, base_cpu), (floor, floor_cpu), rows = times.pop("boto3"), times.pop("floor"), times
    print(f"{'module':<40}{'wall ms':>9}{'x boto3':>9}{'cpu ms':>9}{'x boto3':>9}")
    print(f"{'boto3 (baseline)':<40}{base * 1000:>9.0f}{1:>9.2f}{base_cpu * 1000:>9.0f}{1:>9.2f}")
    print(f"{'floor: botocore + Powertools + pydantic':<40}{floor * 1000:>9.0f}{floor / base:>9.2f}"
          f"{floor_cpu * 1000:>9.0f}{floor_cpu / base_cpu:>9.2f}")
    for module, (t, c) in rows.items():
        print(f"{module:<40}{t * 1000:>9.0f}{t / base:>9.2f}{c * 1000:>9.0f}{c / base_cpu:>9.2f}")
    result: dict = {"runs": args.runs, "statistic": "min, boto3 and handlers interleaved",
                    "boto3_ms": round(base * 1000, 1),
                    "handlers_ms": {m: round(t * 1000, 1) for m, (t, _) in rows.items()},
                    "ratio_to_boto3": {m: round(t / base, 2) for m, (t, _) in rows.items()},
                    "floor": {"statement": FLOOR, "ms": round(floor * 1000, 1), "ratio_to_boto3": round(floor / base, 2),
                              "cpu_ms": round(floor_cpu * 1000, 1), "cpu_ratio_to_boto3": round(floor_cpu / base_cpu, 2)},
                    "cpu": {"boto3_ms": round(base_cpu * 1000, 1),
                            "handlers_ms": {m: round(c * 1000, 1) for m, (_, c) in rows.items()},
                            "ratio_to_boto3": {m: round(c / base_cpu, 2) for m, (_, c) in rows.items()}}}
    if not args.no_first_call:
        prepare = first_call(args.runs)
        result["prepare_first_call"] = prepare
        for clock, figures in prepare.items():
            print(f"prepare ({clock}): import {figures['import_ms']:.0f} ms, import + first invocation "
                  f"{figures['import_and_first_call_ms']:.0f} ms ({figures['ratio_to_boto3']}x boto3's "
                  f"{figures['boto3_ms']:.0f} ms)")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(result, indent=2))
    print(f"(written to {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
