"""The ``orderflow`` command: run the local stack, trace an order's workflow.

    orderflow local            start the embedded local stack (no AWS account needed)
    orderflow trace ORDER_ID   print an order's execution history, state by state
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path

DEFAULT_STATE_DIR = Path(".orderflow")


def _text_formatter():  # noqa: ANN202 - built lazily so `orderflow --help` stays fast
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    class LocalLogFormatter(LambdaPowertoolsFormatter):
        """Human-readable lines for the local stack: one per order event, plus warnings and errors."""

        def format(self, record: logging.LogRecord) -> str:
            return format_local_record(record, self)

    return LocalLogFormatter()


def format_local_record(record: logging.LogRecord, formatter: logging.Formatter) -> str:
    """One line per record: ``HH:MM:SS  ORDER_ID  EVENT  detail`` for order events."""
    when = time.strftime("%H:%M:%S", time.localtime(record.created))
    event = getattr(record, "order_event", None)
    if event:
        detail = getattr(record, "detail", None)
        line = f"{when}  {getattr(record, 'order_id', ''):<26} {event:<18} {detail or ''}".rstrip()
    else:
        line = f"{when}  {record.levelname:<7} {record.getMessage()}"
    if record.exc_info and record.levelno >= logging.ERROR:
        line += "\n" + formatter.formatException(record.exc_info)
    return line


def _use_text_logs(level: str) -> None:
    from orderflow.observability import logger

    handler = logger.registered_handler
    handler.setFormatter(_text_formatter())
    logger.setLevel(level)


def cmd_local(args: argparse.Namespace) -> int:
    from orderflow.local.stack import LocalStack

    if args.log_format == "text":
        _use_text_logs(args.log_level)
    stack = LocalStack(host=args.host, api_port=args.port, moto_port=args.moto_port, token=args.token,
                       state_dir=args.state_dir)
    started = time.monotonic()
    try:
        stack.start()
    except OSError as err:
        print(f"orderflow local: cannot start: {err} (is another stack on port {args.port}? "
              "try --port)", file=sys.stderr)
        return 2
    if args.seed:
        from orderflow.local.seed import seed
        from orderflow.ports import default_ports

        seed(default_ports())
    print(f"orderflow local stack is up in {time.monotonic() - started:.1f}s", flush=True)
    print(f"  API:        {stack.api_url}")
    print(f"  token:      {stack.token}")
    print(f"  AWS (moto): {stack.endpoint}  (state machine {stack.state_machine_arn})")
    if args.seed:
        print("  sample data: warehouses east, west; SKUs TSHIRT-BLK-M, MUG-12OZ, POSTER-A2")
    print("Try:")
    print(f"  export ORDERFLOW_API={stack.api_url} ORDERFLOW_TOKEN={stack.token}")
    print('  curl -s -H "Authorization: Bearer $ORDERFLOW_TOKEN" $ORDERFLOW_API/warehouses')
    print("  orderflow trace ORDER_ID      (in this folder; it finds this stack by itself)")
    print("Press Ctrl-C to stop.", flush=True)

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    try:
        while not done.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    print("\nstopping…", flush=True)
    stack.stop()
    print("stopped.", flush=True)
    return 0


def _point_at_local_stack(state_dir: Path) -> dict | None:
    """If a local stack from this folder is running, aim boto3 at it (unless told otherwise)."""
    path = state_dir / "local.json"
    if os.environ.get("AWS_ENDPOINT_URL") or not path.exists():
        return None
    try:
        info = json.loads(path.read_text())
        os.kill(int(info["pid"]), 0)
    except (OSError, ValueError, KeyError):
        return None
    os.environ["AWS_ENDPOINT_URL"] = info["endpoint"]
    os.environ.setdefault("AWS_DEFAULT_REGION", info.get("region", "us-east-1"))
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "local")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "local")
    return info


def cmd_trace(args: argparse.Namespace) -> int:
    from orderflow import trace
    from orderflow.adapters.aws import client
    from orderflow.errors import NotFound

    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    local = _point_at_local_stack(args.state_dir)
    sfn = client("stepfunctions")
    try:
        arn = (args.state_machine_arn or os.environ.get("ORDERFLOW_STATE_MACHINE_ARN")
               or (local or {}).get("state_machine_arn") or trace.find_state_machine(sfn))
        execution, events = trace.fetch(sfn, arn, args.order_id)
    except NotFound as err:
        print(f"orderflow trace: {err.message}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - no credentials, no endpoint: say so plainly
        print(f"orderflow trace: cannot read the execution: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps({"execution": execution, "events": events}, default=str, indent=2))
    else:
        print("\n".join(trace.render(args.order_id, execution, events, width=args.width)))
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orderflow",
        description="orderflow: a serverless sales-order backend. Run it locally, trace orders.",
        epilog="Docs: README.md and docs/ in the repository. Each command has its own --help.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    local = sub.add_parser(
        "local", help="start the embedded local stack (moto + the real state machine + the API)",
        description="Start everything orderflow runs on AWS in one process on loopback: DynamoDB, Step "
                    "Functions running statemachines/order_workflow.asl.json with our handlers, and the "
                    "HTTP API. No AWS account or Docker needed. Stops cleanly on Ctrl-C.")
    local.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    local.add_argument("--port", type=int, default=3000, help="API port (default 3000; 0 picks a free one)")
    local.add_argument("--moto-port", type=int, default=0,
                       help="port of the embedded AWS endpoint (default: a free one)")
    local.add_argument("--token", default=None,
                       help="API bearer token (default: $ORDERFLOW_API_TOKEN, else a new random one)")
    local.add_argument("--no-seed", dest="seed", action="store_false",
                       help="start empty instead of with sample warehouses and stock")
    local.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR,
                       help="where the running stack writes its address and token (default .orderflow)")
    local.add_argument("--log-format", choices=["text", "json"], default="text",
                       help="text: one line per order event (default); json: Powertools' JSON lines")
    local.add_argument("--log-level", default="INFO", help="log level (default INFO)")
    local.set_defaults(func=cmd_local)

    tr = sub.add_parser(
        "trace", help="print an order's workflow execution, state by state",
        description="Print the execution history of an order's workflow (the execution is named after the "
                    "order): each state entered and left with its input and output summarized, failures "
                    "and retries with their errors. Works against the local stack (found through "
                    ".orderflow/local.json) or AWS (boto3's usual credentials and region).")
    tr.add_argument("order_id", help="the order id, e.g. ord_01a2167143fe19d0262e58")
    tr.add_argument("--state-machine-arn", help="default: $ORDERFLOW_STATE_MACHINE_ARN, the local stack's, "
                                                "or the one state machine named *order-workflow*")
    tr.add_argument("--endpoint-url", help="a Step Functions endpoint other than boto3's default")
    tr.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help=argparse.SUPPRESS)
    tr.add_argument("--json", action="store_true", help="print the raw execution and history as JSON")
    tr.add_argument("--width", type=int, default=110, help="cut summaries to this many characters")
    tr.set_defaults(func=cmd_trace)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
