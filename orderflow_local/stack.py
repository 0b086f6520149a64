"""The embedded local stack: everything orderflow runs on AWS, in one process, on loopback.

- moto serves DynamoDB, Step Functions, SQS, Scheduler... at ``http://HOST:MOTO_PORT``; its Step
  Functions interpreter runs ``statemachines/order_workflow.asl.json`` for real;
- each Lambda the ASL names is bound to our handler module (``orderflow_local.lambda_binding``);
- the API is served at ``http://HOST:API_PORT`` through the same API handler as on AWS;
- the local scheduler and queue pollers stand in for EventBridge Scheduler and Lambda's event
  source mappings, which moto stores but never runs.
"""

from __future__ import annotations

import importlib
import json
import logging
import os
import secrets
import socket
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from orderflow import asl
from orderflow.queues import QUEUES
from orderflow.tables import TABLES

log = logging.getLogger(__name__)

REGION = "us-east-1"
ACCOUNT = "123456789012"
PREFIX = "orderflow"
#: Function name -> handler module, for every Lambda the workflow and the API use.
FUNCTIONS = {
    "allocate": "functions.allocate.handler",
    "reduce_inventory": "functions.reduce_inventory.handler",
    "fulfill": "functions.fulfill.handler",
    "complete": "functions.complete.handler",
    "import_orders": "functions.import_orders.handler",
    "api": "functions.api.handler",
    "sync_stock": "functions.sync_stock.handler",
    "reconcile": "functions.reconcile.handler",
    "forward_supplier": "functions.forward_supplier.handler",
    "poll_tracking": "functions.poll_tracking.handler",
    "forward_fba": "functions.forward_fba.handler",
    "poll_fba": "functions.poll_fba.handler",
    "tell_channel": "functions.tell_channel.handler",
}


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def function_name(name: str) -> str:
    return f"{PREFIX}-{name.replace('_', '-')}"


def function_arn(name: str) -> str:
    return f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{function_name(name)}"


def table_name(key: str) -> str:
    return f"{PREFIX}-{key}"


@dataclass
class LocalStack:
    host: str = "127.0.0.1"
    api_port: int = 3000
    moto_port: int = 0
    token: str | None = None
    state_dir: Path = field(default_factory=lambda: Path(".orderflow"))
    serve_api: bool = True
    #: How much faster than real time the local schedules run (EventBridge Scheduler's stand-in).
    schedule_speedup: float = 1.0
    #: Stock auto-sync coalescing window: changes to one SKU within it go out as one update.
    sync_window_seconds: int = 1
    #: Keep the tables in ``<state_dir>/data.json`` (saved every ``snapshot_seconds`` and at a clean
    #: stop, loaded at start; orderflow_local.persistence). ``orderflow local`` turns it on.
    persist: bool = False
    snapshot_seconds: float = 5.0

    def __post_init__(self) -> None:
        self.token = self.token or os.environ.get("ORDERFLOW_API_TOKEN") or secrets.token_urlsafe(24)
        self.moto_port = self.moto_port or free_port(self.host)
        self._moto: Any = None
        self._api: Any = None
        self.state_machine_arn = ""
        self.scheduler: Any = None
        self.pollers: list[Any] = []
        self.sandbox_carrier: Any = None
        self.channel_runtime: Any = None
        self.supplier_runtime: Any = None
        self.fba_runtime: Any = None
        self.queue_urls: dict[str, str] = {}
        self.snapshots: Any = None
        #: Items loaded from the state folder at start (0: started empty).
        self.restored = 0

    @property
    def endpoint(self) -> str:
        return f"http://{self.host}:{self.moto_port}"

    @property
    def api_url(self) -> str:
        port = self._api.port if self._api else self.api_port
        return f"http://{self.host}:{port}"

    def environment(self) -> dict[str, str]:
        """What a process needs to talk to this stack with boto3 (and what our handlers see)."""
        env = {
            "AWS_ENDPOINT_URL": self.endpoint,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_REGION": REGION,
            "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local",
            "MOTO_PORT": str(self.moto_port),
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "orderflow",
            "ORDERFLOW_STATE_MACHINE_ARN": self.state_machine_arn,
        }
        for table in TABLES:
            env[table.env_var] = table_name(table.key)
        for queue in QUEUES:
            if queue.key in self.queue_urls:
                env[queue.env_var] = self.queue_urls[queue.key]
        return env

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> LocalStack:
        try:
            return self._start()
        except BaseException:
            self.stop()
            raise

    def _start(self) -> LocalStack:
        from moto.core.config import default_user_config
        from moto.server import ThreadedMotoServer

        from orderflow_local import lambda_binding

        self.state_machine_arn = f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{PREFIX}-order-workflow"
        os.environ.update(self.environment())
        from orderflow.adapters.aws import reset_clients
        from orderflow.ports import default_ports
        from orderflow.settings import get_settings

        get_settings.cache_clear()
        default_ports.cache_clear()
        reset_clients()

        default_user_config["lambda"] = {"use_docker": False}
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        lambda_binding.install()
        for name, module in FUNCTIONS.items():
            handler = importlib.import_module(module).lambda_handler
            lambda_binding.bind(function_name(name), handler)

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # moto's interpreter logs every failed state with its whole parse tree; the execution
        # history (orderflow trace) tells the same story readably.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        self._moto = ThreadedMotoServer(ip_address=self.host, port=self.moto_port, verbose=False)
        self._moto.start()
        self._create_resources()
        if self.persist:
            from orderflow_local.persistence import Snapshots

            self.snapshots = Snapshots(self.state_dir, {t.key: table_name(t.key) for t in TABLES},
                                       every=self.snapshot_seconds)
            self.restored = self.snapshots.load()
            self.snapshots.start()
        self._start_sandbox_carrier()
        if self.serve_api:
            from orderflow_local.http_front import ApiFront

            api_handler = importlib.import_module(FUNCTIONS["api"]).lambda_handler
            self._api = ApiFront(self.host, self.api_port, self.token or "", api_handler)
            self._api.start()
        from orderflow_local.scheduler import LocalScheduler

        self.scheduler = LocalScheduler(speedup=self.schedule_speedup)
        self.scheduler.start()
        self._start_stock_sync()
        self._write_state_file()
        return self

    def _start_stock_sync(self) -> None:
        """Stock auto-sync: the stock-sync queue's consumer, and the hourly catch-up sweep."""
        from orderflow.ports import default_ports
        from orderflow.stock_sync import sync_all

        self.add_poller(self.queue_urls["stock-sync"], FUNCTIONS["sync_stock"], wait_seconds=1)
        # Tracking told to the sales channels (the workflow's TellChannel state queues one per shipment).
        self.add_poller(self.queue_urls["channel-updates"], FUNCTIONS["tell_channel"], wait_seconds=1)
        self.scheduler.add("stock-sync-sweep", 3600, lambda: sync_all(default_ports()))
        from orderflow.service import reconcile

        self.scheduler.add("reconcile", 300, lambda: reconcile(default_ports()))

    def resume_restored(self, *, wait: bool = False) -> threading.Thread | None:
        """After a restart with saved data: redrive every order whose workflow should be running (their
        executions did not survive the restart), in the background. Returns the thread (None: nothing
        was restored)."""
        if not self.restored:
            return None
        from orderflow.ports import default_ports
        from orderflow.service import reconcile

        def run() -> None:
            try:
                redriven = reconcile(default_ports(), older_than_seconds=0, limit=100_000)
                log.info("restart: %d order(s) whose workflow was running are resumed", len(redriven))
            except Exception:
                log.exception("restart: resuming the running orders failed; `orderflow reconcile` retries it")

        thread = threading.Thread(target=run, name="resume-restored", daemon=True)
        thread.start()
        if wait:
            thread.join()
        return thread

    def start_channels(self, *, sandbox: bool = True, order_every: float = 8.0) -> Any:
        """Run the channels' import schedules here and (``sandbox``) connect sandbox Shopify, WooCommerce
        and Amazon shops that keep producing orders (``orderflow_local.sandbox.runtime``)."""
        from orderflow_local.sandbox.runtime import start_channels

        self.channel_runtime = start_channels(self, sandbox=sandbox, order_every=order_every)
        return self.channel_runtime

    def start_suppliers(self, *, poll_every: float = 10.0, sandbox: bool = False) -> Any:
        """Forward the supplier queue to its SFTP forwarder, poll suppliers' tracking files every
        ``poll_every`` seconds and (``sandbox``) serve a sandbox SFTP server (``orderflow_local.suppliers``)."""
        from orderflow_local.suppliers import start_suppliers

        self.supplier_runtime = start_suppliers(self, poll_every=poll_every, sandbox=sandbox)
        return self.supplier_runtime

    def start_fba(self, *, poll_every: float = 10.0, sandbox: bool = False,
                  step_seconds: float | None = None) -> Any:
        """Forward the fba-orders queue to the FBA forwarder, poll Amazon for tracking every ``poll_every``
        seconds and (``sandbox``) serve a sandbox FBA server (``orderflow_local.fba``). Once per stack."""
        from orderflow_local.fba import start_fba

        if self.fba_runtime is None:
            self.fba_runtime = start_fba(self, poll_every=poll_every, sandbox=sandbox, step_seconds=step_seconds)
        return self.fba_runtime

    def add_poller(self, queue_url: str, handler_module: str, **options: Any) -> Any:
        """Feed a queue to a handler the way Lambda's event source mapping would."""
        from orderflow_local.lambda_binding import LocalLambdaContext
        from orderflow_local.queues import QueuePoller

        handler = importlib.import_module(handler_module).lambda_handler
        name = handler_module.split(".")[1]
        poller = QueuePoller(queue_url, handler, context_factory=lambda: LocalLambdaContext(function_name(name)),
                             **options)
        poller.start()
        self.pollers.append(poller)
        return poller

    def _create_resources(self) -> None:
        from orderflow.adapters.aws import client

        ddb = client("dynamodb")
        for table in TABLES:
            ddb.create_table(**table.create_table_kwargs(table_name(table.key)))
        sqs = client("sqs")
        for queue in QUEUES:
            fifo = {"FifoQueue": "true"} if queue.fifo else {}
            dlq_url = sqs.create_queue(QueueName=queue.dlq_name(PREFIX), Attributes=fifo)["QueueUrl"]
            dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
            delay = self.sync_window_seconds if queue.key == "stock-sync" else queue.delay_seconds
            self.queue_urls[queue.key] = sqs.create_queue(QueueName=queue.queue_name(PREFIX), Attributes={
                **fifo, "VisibilityTimeout": str(queue.visibility_timeout), "DelaySeconds": str(delay),
                "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(queue.max_receives)}),
            })["QueueUrl"]
            self.queue_urls[queue.dlq_key()] = dlq_url
        os.environ.update(self.environment())
        values = {placeholder: function_arn(fn) for placeholder, fn in asl.FUNCTION_PLACEHOLDERS.items()}
        values.update({placeholder: table_name(key) for placeholder, key in asl.TABLE_PLACEHOLDERS.items()})
        values.update({placeholder: self.queue_urls[key] for placeholder, key in asl.QUEUE_PLACEHOLDERS.items()})
        client("stepfunctions").create_state_machine(
            name=f"{PREFIX}-order-workflow",
            definition=asl.substitute(asl.read(), values),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-order-workflow",
            type="STANDARD",
        )

    def _start_sandbox_carrier(self) -> None:
        """The sandbox carrier (EasyPost's API shape) as the default carrier account ``sandbox``; labels are
        kept in ``<state dir>/labels``, carrier API keys in ``<state dir>/carrier-credentials.json``."""
        from orderflow.carriers import accounts, storage
        from orderflow.ports import default_ports
        from orderflow_local.sandbox.carrier import SandboxCarrier

        self.sandbox_carrier = SandboxCarrier(self.host).start()
        state = self.state_dir.resolve()
        os.environ.update({accounts.SANDBOX_URL_ENV: self.sandbox_carrier.url, storage.DIR_ENV: str(state),
                           accounts.CREDENTIALS_FILE_ENV: str(state / "carrier-credentials.json")})
        default_ports().carriers.accounts.put(accounts.CarrierAccount(
            carrier_id="sandbox", type=accounts.CarrierType.SANDBOX, name="Sandbox carrier", is_default=True,
            base_url=self.sandbox_carrier.url, max_attempts=3))

    def _write_state_file(self) -> None:
        self.state_dir.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in self.environment().items() if not k.startswith("AWS_SECRET")}
        info = {"api_url": self.api_url, "endpoint": self.endpoint, "token": self.token,
                "state_machine_arn": self.state_machine_arn, "region": REGION, "pid": os.getpid(),
                "started_at": time.time(), "env": env}
        path = self.state_dir / "local.json"
        path.write_text(json.dumps(info, indent=2))
        path.chmod(0o600)

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        self.pollers.clear()
        if self.scheduler:
            self.scheduler.stop()
            self.scheduler = None
        if self.channel_runtime:
            self.channel_runtime.stop()
            self.channel_runtime = None
        if self.supplier_runtime:
            self.supplier_runtime.stop()
            self.supplier_runtime = None
        if self.fba_runtime:
            self.fba_runtime.stop()
            self.fba_runtime = None
        if self._api:
            self._api.stop()
            self._api = None
        if self.sandbox_carrier:
            self.sandbox_carrier.stop()
            self.sandbox_carrier = None
        if self.snapshots:
            try:
                self.snapshots.stop(final=True)
            except Exception as exc:  # noqa: BLE001 - the last periodic snapshot is still there
                log.warning("could not save the local stack's data at stop: %s", exc)
            self.snapshots = None
        if self._moto:
            self._moto.stop()
            self._moto = None
        state_file = self.state_dir / "local.json"
        if state_file.exists():
            try:
                if json.loads(state_file.read_text()).get("pid") == os.getpid():
                    state_file.unlink()
            except (OSError, ValueError):
                pass

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
