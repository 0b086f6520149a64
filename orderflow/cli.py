"""The ``orderflow`` command: run the local stack, trace an order's workflow.

    orderflow local            start the embedded local stack (no AWS account needed)
    orderflow import CHANNEL   import a channel's new orders now and report what happened
    orderflow trace ORDER_ID   print an order's execution history, state by state
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

from orderflow import config

DEFAULT_STATE_DIR = Path(".orderflow")


def _local_runtime():  # noqa: ANN202
    """The ``local`` command lives with the local runtime (``orderflow_local``, installed with the ``local``
    extra, never shipped to Lambda); without it the other commands still work against AWS."""
    import importlib

    try:
        return importlib.import_module("orderflow_local.cli")
    except ImportError:
        return None


def cmd_import(args: argparse.Namespace) -> int:
    if args.function_name:
        from orderflow.adapters.aws import client

        event = {"channel_id": args.channel_id, **({"max_pages": args.max_pages} if args.max_pages else {})}
        try:
            resp = client("lambda").invoke(FunctionName=args.function_name, Payload=json.dumps(event).encode())
            report = json.loads(resp["Payload"].read() or b"null")
        except Exception as err:  # noqa: BLE001 - no credentials, no function: say so plainly
            print(f"orderflow import: cannot invoke {args.function_name}: {err}", file=sys.stderr)
            return 2
        if resp.get("FunctionError"):
            print(f"orderflow import: {report.get('errorType')}: {report.get('errorMessage')}", file=sys.stderr)
            return 1
    else:
        import httpx

        info = {}
        path = args.state_dir / "local.json"
        if path.exists():
            try:
                info = json.loads(path.read_text())
            except ValueError:
                info = {}
        api, token = args.api_url or info.get("api_url"), args.token or info.get("token")
        if not api:
            print("orderflow import: no local stack found (start one with `orderflow local`), and no --api-url "
                  "or --function-name given", file=sys.stderr)
            return 2
        try:
            resp = httpx.post(f"{api.rstrip('/')}/channels/{args.channel_id}/import", timeout=120,
                              headers={"Authorization": f"Bearer {token}"} if token else {},
                              params={"max_pages": args.max_pages} if args.max_pages else None)
        except httpx.HTTPError as err:
            print(f"orderflow import: cannot reach {api}: {err}", file=sys.stderr)
            return 2
        report = resp.json() if resp.headers.get("content-type", "").startswith("application/json") else {}
        if resp.status_code != 200:
            message = (report.get("error") or {}).get("message") if isinstance(report, dict) else None
            print(f"orderflow import: {resp.status_code} {message or resp.text[:200]}", file=sys.stderr)
            return 1
    if args.json:
        print(json.dumps(report, indent=2))
        return 0
    print(f"{report['channel_id']}: {report['new']} new, {report['updated']} updated, {report['skipped']} "
          f"skipped, {report['failed']} failed ({report['pages']} page(s))")
    for failure in report.get("failures", []):
        print(f"  failed: {failure.get('external_id')} -> {failure.get('order_id')} needs attention: "
              f"{failure.get('detail')}")
    if report.get("stopped"):
        more = "; the next run continues where this one stopped" if report.get("more") else ""
        print(f"  stopped: {report['stopped']}: {report.get('message')}{more}")
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
    for key, value in info.get("env", {}).items():
        os.environ.setdefault(key, value)
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
        arn = (args.state_machine_arn or config.STATE_MACHINE_ARN.get()
               or (local or {}).get("state_machine_arn") or trace.find_state_machine(sfn))
        runs = trace.fetch_all(sfn, arn, args.order_id)
    except NotFound as err:
        print(f"orderflow trace: {err.message}", file=sys.stderr)
        return 1
    except Exception as err:  # noqa: BLE001 - no credentials, no endpoint: say so plainly
        print(f"orderflow trace: cannot read the execution: {err}", file=sys.stderr)
        return 2
    if args.json:
        print(json.dumps([{"execution": ex, "events": ev} for ex, ev in runs], default=str, indent=2))
    else:
        print("\n\n".join("\n".join(trace.render(args.order_id, ex, ev, width=args.width)) for ex, ev in runs))
    return 0


def cmd_redrive(args: argparse.Namespace) -> int:
    from orderflow import service
    from orderflow.errors import OrderflowError
    from orderflow.models import OrderStatus
    from orderflow.wiring import default_ports

    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    _point_at_local_stack(args.state_dir)
    ports = default_ports()
    order_ids = list(args.order_ids)
    if args.all_needing_attention:
        cursor = None
        while True:
            batch, cursor = ports.orders.list_by_status(OrderStatus.NEEDS_ATTENTION, limit=100, cursor=cursor,
                                                        oldest_first=True)
            order_ids += [o.order_id for o in batch]
            if not cursor:
                break
    if not order_ids:
        print("orderflow redrive: no orders to redrive (give ORDER_IDs or --all-needing-attention)",
              file=sys.stderr)
        return 1
    failed = 0
    for order_id in order_ids:
        try:
            order = service.redrive_order(order_id, ports, reason=args.reason)
            print(f"{order_id}: redriven (execution attempt {order.attempt})")
        except OrderflowError as err:
            failed += 1
            print(f"{order_id}: not redriven: {err.message}", file=sys.stderr)
    print(f"{len(order_ids) - failed} redriven, {failed} refused")
    return 1 if failed else 0


def cmd_reconcile(args: argparse.Namespace) -> int:
    from orderflow import service
    from orderflow.wiring import default_ports

    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    _point_at_local_stack(args.state_dir)
    redriven = service.reconcile(default_ports(), older_than_seconds=args.older_than)
    for order_id in redriven:
        print(f"{order_id}: redriven")
    print(f"{len(redriven)} order(s) redriven")
    return 0


def cmd_sync_stock(args: argparse.Namespace) -> int:
    from orderflow.channels.stock_sync import auto_sync_channels, sync_all, sync_sku
    from orderflow.wiring import default_ports

    if args.endpoint_url:
        os.environ["AWS_ENDPOINT_URL"] = args.endpoint_url
    _point_at_local_stack(args.state_dir)
    ports = default_ports()
    if args.skus:
        channels = auto_sync_channels(ports)
        pushed = {sku: sync_sku(sku, ports, clear_marker=False, channels=channels) for sku in args.skus}
    else:
        pushed = sync_all(ports)
    for sku, channels in pushed.items():
        for channel_id, quantity in channels.items():
            print(f"{sku}: {channel_id} <- {quantity}")
    print(f"{sum(len(c) for c in pushed.values())} update(s) pushed; channels already up to date were skipped")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="orderflow",
        description="orderflow: a serverless sales-order backend. Run it locally, trace orders.",
        epilog="Docs: README.md and docs/ in the repository. Each command has its own --help.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    local_cli = _local_runtime()
    if local_cli is not None:
        local_cli.add_local_command(sub, DEFAULT_STATE_DIR)

    imp = sub.add_parser(
        "import", help="import a channel's new and changed orders now, and report what happened",
        description="Run a channel's import now instead of waiting for its schedule, and print how many orders "
                    "were new, updated, skipped and failed. Talks to the local stack started in this folder "
                    "(through its API), or, with --function-name, invokes the import function on AWS.")
    imp.add_argument("channel_id", help="the channel, e.g. sandbox-shopify")
    imp.add_argument("--api-url", help="an orderflow API other than the local stack's")
    imp.add_argument("--token", help="its bearer token (default: the local stack's)")
    imp.add_argument("--function-name", help="invoke this import Lambda function (AWS) instead of an API")
    imp.add_argument("--max-pages", type=int, default=None, help="stop after this many pages")
    imp.add_argument("--json", action="store_true", help="print the report as JSON")
    imp.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help=argparse.SUPPRESS)
    imp.set_defaults(func=cmd_import)

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

    rd = sub.add_parser(
        "redrive", help="run the workflow of orders that need attention (or whose workflow stopped) again",
        description="After the fault behind `needs_attention` is fixed (stock counted, SKU created, supplier back), "
                    "start the order's workflow again: a new execution named <order id>-r<n> that carries on from "
                    "what the order already records; no step is done twice. Works against the local stack (found "
                    "through .orderflow/local.json) or AWS (boto3's configuration and ORDERFLOW_*_TABLE / "
                    "ORDERFLOW_STATE_MACHINE_ARN from the stack outputs).")
    rd.add_argument("order_ids", nargs="*", metavar="ORDER_ID", help="orders to redrive")
    rd.add_argument("--all-needing-attention", action="store_true", help="every order in needs_attention, oldest first")
    rd.add_argument("--reason", default="redriven from the command line", help="recorded on each order's events")
    rd.add_argument("--endpoint-url", help="an AWS endpoint other than boto3's default")
    rd.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help=argparse.SUPPRESS)
    rd.set_defaults(func=cmd_redrive)

    rc = sub.add_parser(
        "reconcile", help="redrive every order whose workflow should be running but is not",
        description="Find orders in new/awaiting_stock/paid/in_fulfillment/partially_shipped whose execution is "
                    "not running (a lost start, a crash, a killed local stack) and redrive them. The local "
                    "stack and the AWS schedule run this every 5 minutes.")
    rc.add_argument("--older-than", type=float, default=300,
                    help="leave orders changed in the last N seconds alone (default 300)")
    rc.add_argument("--endpoint-url", help="an AWS endpoint other than boto3's default")
    rc.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help=argparse.SUPPRESS)
    rc.set_defaults(func=cmd_reconcile)

    ss = sub.add_parser(
        "sync-stock", help="push available quantities to the channels with stock auto-sync now",
        description="Push each SKU's available quantity (summed over the warehouses that feed the channel) to "
                    "every channel with auto_sync_stock, skipping channels that already have that quantity. "
                    "Stock changes do this by themselves within seconds; this is the catch-up the hourly "
                    "schedule runs.")
    ss.add_argument("skus", nargs="*", metavar="SKU", help="only these SKUs (default: every stocked SKU)")
    ss.add_argument("--endpoint-url", help="an AWS endpoint other than boto3's default")
    ss.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR, help=argparse.SUPPRESS)
    ss.set_defaults(func=cmd_sync_stock)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
