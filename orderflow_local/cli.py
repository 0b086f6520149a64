"""``orderflow local``: the embedded local stack's command (added to the ``orderflow`` CLI when this
package is installed)."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
import time
from pathlib import Path


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
    from orderflow_local.stack import LocalStack

    if args.log_format == "text":
        _use_text_logs(args.log_level)
    stack = LocalStack(host=args.host, api_port=args.port, moto_port=args.moto_port, token=args.token,
                       state_dir=args.state_dir, schedule_speedup=args.speedup, persist=args.persist,
                       snapshot_seconds=args.snapshot_seconds)
    stack.say = lambda message: print(f"orderflow local: {message}", flush=True)
    started = time.monotonic()
    try:
        stack.start()
    except OSError as err:
        print(f"orderflow local: cannot start: {err} (is another stack on port {args.port}? "
              "try --port)", file=sys.stderr)
        return 2
    except RuntimeError as err:  # the CDK app did not synthesize or its template did not deploy
        print(f"orderflow local: cannot start: {err}", file=sys.stderr)
        return 2
    if args.seed:
        from orderflow.wiring import default_ports
        from orderflow_local.seed import seed

        seed(default_ports(), stock=not stack.restored)
    channels = None
    if args.channels:
        try:
            channels = stack.start_channels(order_every=args.sandbox_order_every)
        except Exception as err:  # noqa: BLE001 - say what failed, stop cleanly
            stack.stop()
            print(f"orderflow local: cannot start the sandbox channels: {err}", file=sys.stderr)
            return 2
    try:
        suppliers = stack.start_suppliers(poll_every=args.tracking_poll_every, sandbox=args.seed)
        if args.seed:
            from orderflow.wiring import default_ports
            from orderflow_local.seed import seed_suppliers

            seed_suppliers(default_ports(), suppliers, stock=not stack.restored)
    except Exception as err:  # noqa: BLE001 - say what failed, stop cleanly
        stack.stop()
        print(f"orderflow local: cannot start the suppliers: {err}", file=sys.stderr)
        return 2
    try:
        fba = stack.start_fba(poll_every=args.fba_poll_every, sandbox=args.seed)
        if args.seed:
            from orderflow.wiring import default_ports
            from orderflow_local.seed import seed_fba

            seed_fba(default_ports(), stack, fba, stock=not stack.restored)
    except Exception as err:  # noqa: BLE001 - say what failed, stop cleanly
        stack.stop()
        print(f"orderflow local: cannot start Amazon FBA: {err}", file=sys.stderr)
        return 2
    stack.resume_restored()
    print(f"orderflow local stack is up in {time.monotonic() - started:.1f}s", flush=True)
    if stack.persist:
        where = stack.state_dir / "data.json"
        print(f"  data:       {where} (saved every {args.snapshot_seconds:g}s and at Ctrl-C; "
              + (f"{stack.restored} item(s) restored; running orders resume" if stack.restored
                 else "started empty") + ")")
    print(f"  API:        {stack.api_url}")
    print(f"  token:      {stack.token}")
    print(f"  console:    {stack.api_url}/console/  (sign in with the token)")
    print(f"  AWS (moto): {stack.endpoint}  (state machine {stack.state_machine_arn})")
    print(f"  stack:      {stack.deployment.stack_name}, deployed from the CDK template with CloudFormation "
          f"({len(stack.deployment.resource_types)} resources): aws cloudformation describe-stack-resources "
          f"--stack-name {stack.deployment.stack_name} --endpoint-url {stack.endpoint}")
    if stack.sandbox_carrier:
        print(f"  carrier:    sandbox (EasyPost API shape) at {stack.sandbox_carrier.url}; "
              "POST /orders/ORDER_ID/labels buys a label (docs/carriers.md)")
    if args.seed:
        print("  sample data: warehouses east, west; SKUs TSHIRT-BLK-M, MUG-12OZ, POSTER-A2")
    if channels is not None:
        speed = f" (schedules run {args.speedup:g}x faster)" if args.speedup != 1 else ""
        print(f"  channels:   sandbox shops, a new order every {args.sandbox_order_every:g}s each{speed}:")
        for line in channels.describe():
            print(f"              {line}")
        print("              pushed quantities: GET <sandbox URL>/_sandbox/inventory; "
              "import now: orderflow import CHANNEL_ID")
    described = suppliers.describe()
    print(f"  suppliers:  {described[0]}")
    for line in described[1:]:
        print(f"              sandbox {line}")
    if args.seed:
        print("              LAMP-DESK ships from acme-dropship, HOODIE-GRY-L from north-3pl (docs/suppliers.md)")
    described = fba.describe()
    print(f"  fba:        {described[0]}")
    for line in described[1:]:
        print(f"              {line}")
    if args.seed:
        print("              PHONE-CASE is only at Amazon; sandbox WooCommerce orders ship from FBA (docs/fba.md)")
    print("Try:")
    print(f"  export ORDERFLOW_API={stack.api_url} ORDERFLOW_TOKEN={stack.token}")
    print('  curl -s -H "Authorization: Bearer $ORDERFLOW_TOKEN" $ORDERFLOW_API/warehouses')
    if args.seed:
        print('  curl -s -H "Authorization: Bearer $ORDERFLOW_TOKEN" $ORDERFLOW_API/orders -d \'{"lines": [{"sku": '
              '"LAMP-DESK", "quantity": 1, "unit_price": "39.00"}], "shipping_address": {"name": "Ada", "line1": '
              '"1 Main St", "city": "Boston", "postal_code": "02110", "country": "US"}}\'   (dropship; '
              'HOODIE-GRY-L: 3PL)')
    print("  orderflow trace ORDER_ID      (in this folder; it finds this stack by itself)")
    done = threading.Event()
    # Ctrl-C and SIGTERM ask for a clean stop; a second Ctrl-C during the stop is ignored.
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print("Press Ctrl-C to stop.", flush=True)
    while not done.wait(0.5):
        pass
    print("\nstopping…", flush=True)
    stack.stop()
    print("stopped.", flush=True)
    return 0




def add_local_command(sub: argparse._SubParsersAction, default_state_dir: Path) -> None:
    DEFAULT_STATE_DIR = default_state_dir  # noqa: N806
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
                       help="where the stack keeps its data, labels, credentials, address and token "
                            "(default .orderflow)")
    local.add_argument("--no-persist", dest="persist", action="store_false",
                       help="keep nothing on disk: start empty, forget everything at stop")
    local.add_argument("--snapshot-seconds", type=float, default=5.0, metavar="SECONDS",
                       help="save the data to <state-dir>/data.json this often (default 5; also at Ctrl-C); "
                            "a kill -9 loses at most this much")
    local.add_argument("--log-format", choices=["text", "json"], default="text",
                       help="text: one line per order event (default); json: Powertools' JSON lines")
    local.add_argument("--log-level", default="INFO", help="log level (default INFO)")
    local.add_argument("--no-channels", dest="channels", action="store_false",
                       help="no sandbox Shopify/WooCommerce/Amazon channels and no channel import schedules")
    local.add_argument("--sandbox-order-every", type=float, default=8.0, metavar="SECONDS",
                       help="how often each sandbox shop gets a new order (default 8)")
    local.add_argument("--speedup", type=float, default=1.0,
                       help="run the local schedules (channel imports every minute...) this many times faster "
                            "(default 1)")
    local.add_argument("--tracking-poll-every", type=float, default=10.0, metavar="SECONDS",
                       help="how often suppliers' SFTP tracking files are read (default 10; divided by --speedup)")
    local.add_argument("--fba-poll-every", type=float, default=10.0, metavar="SECONDS",
                       help="how often Amazon FBA is asked for tracking (default 10; divided by --speedup)")
    local.set_defaults(func=cmd_local)
