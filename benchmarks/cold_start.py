"""Cold start: the import time of each Lambda handler module in a fresh interpreter, beside
``import boto3`` alone measured the same way in the same run (the floor every function pays).

    python -m benchmarks.cold_start [--runs 5] [--json bench-results/cold_start.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = "import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"


def handler_modules() -> list[str]:
    return sorted(f"functions.{p.parent.name}.handler" for p in (ROOT / "functions").glob("*/handler.py"))


def measure(module: str, runs: int) -> float:
    env = {"PATH": "/usr/bin:/bin", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
           "PYTHONDONTWRITEBYTECODE": "1"}
    times = []
    for _ in range(runs):
        out = subprocess.run([sys.executable, "-c", PROBE.format(module=module)], cwd=ROOT, env=env,
                             capture_output=True, text=True, check=True)
        times.append(float(out.stdout.strip().splitlines()[-1]))
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--json", type=Path, default=Path("bench-results/cold_start.json"))
    args = parser.parse_args(argv)
    base = measure("boto3", args.runs)
    rows = {m: measure(m, args.runs) for m in handler_modules()}
    print(f"{'module':<40}{'import ms':>10}{'x boto3':>9}")
    print(f"{'boto3 (baseline)':<40}{base * 1000:>10.0f}{1:>9.2f}")
    for module, t in rows.items():
        print(f"{module:<40}{t * 1000:>10.0f}{t / base:>9.2f}")
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"runs": args.runs, "boto3_ms": round(base * 1000, 1),
                                     "handlers_ms": {m: round(t * 1000, 1) for m, t in rows.items()},
                                     "ratio_to_boto3": {m: round(t / base, 2) for m, t in rows.items()}},
                                    indent=2))
    print(f"(written to {args.json})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
