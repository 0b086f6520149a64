"""The embedded local stack: the CDK stack, deployed into the embedded AWS and run in one process.

- the CDK app is synthesized (cached: orderflow_local.template) and its template deployed with moto's
  CloudFormation at ``http://HOST:MOTO_PORT`` (orderflow_local.cloudformation): the tables, queues, state
  machine, functions, event source mappings and schedules are the template's resources;
- each Lambda function of the template runs its ``Handler`` in-process, seeing exactly the environment the
  template gives it (orderflow_local.function_env); moto's Step Functions interpreter runs the ASL for real;
- the API is served at ``http://HOST:API_PORT`` the way the template's REST API routes it (orderflow_local.http_front);
- the template's event source mappings are served by queue pollers and its schedules (and those created at
  runtime) by the local scheduler: moto stores both but never runs them.
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

from orderflow.outbound import LOOPBACK_ENV
from orderflow.private_files import write_private
from orderflow.queues import STOCK_SYNC
from orderflow_local import cloudformation, in_process_transport

log = logging.getLogger(__name__)

REGION = cloudformation.REGION
ACCOUNT = cloudformation.ACCOUNT
#: A name prefix for what benchmarks and tests create beside the stack (the stack's own names come from
#: CloudFormation).
PREFIX = "orderflow"

#: The deployment of the most recently started stack in this process (function_name() and friends read it).
_deployed: list[cloudformation.Deployment] = []


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def deployment() -> cloudformation.Deployment:
    if not _deployed:
        raise RuntimeError("no local stack has been started in this process")
    return _deployed[-1]


def function_name(name: str) -> str:
    """The deployed name of functions/<name>/ (CloudFormation generates it)."""
    return deployment().functions[name].physical_name


def function_arn(name: str) -> str:
    return deployment().functions[name].arn


def table_name(key: str) -> str:
    return deployment().tables[key]


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
        self.deployment: cloudformation.Deployment | None = None
        self.schedules: Any = None
        #: Progress of a long start (the first synth); ``orderflow local`` prints it.
        self.say = lambda message: log.info("%s", message)

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
            # Every handler runs in this one process: EMF metric lines would flood the console (and the
            # functions would share one Powertools metric set across threads). Nothing local reads them.
            "POWERTOOLS_METRICS_DISABLED": "true",
            "POWERTOOLS_SERVICE_NAME": "orderflow",
            "ORDERFLOW_STATE_MACHINE_ARN": self.state_machine_arn,
            # The sandbox shops, carrier, SFTP and FBA servers listen on loopback (refused on AWS).
            LOOPBACK_ENV: "1",
        }
        if self.deployment:
            # Outside a function (tests, the CLI, the sandboxes), the process sees every function's variables.
            for function in self.deployment.functions.values():
                env.update(function.environment)
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

        from orderflow_local import function_env, lambda_binding, template

        folder = template.synthesized(say=self.say)
        function_env.install()
        os.environ.update(self.environment())
        if os.environ.get("ORDERFLOW_MOTO_OVER_HTTP") != "1":  # benchmarks compare both
            import boto3

            in_process_transport.install()  # for the sessions made from here on
            boto3.DEFAULT_SESSION = None
        from orderflow.adapters.aws import client, reset_clients
        from orderflow.settings import get_settings
        from orderflow.wiring import default_ports

        get_settings.cache_clear()
        default_ports.cache_clear()
        reset_clients()

        default_user_config["lambda"] = {"use_docker": False}
        default_user_config["stepfunctions"] = {"execute_state_machine": True}
        lambda_binding.install()

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        # moto's interpreter logs every failed state with its whole parse tree; the execution
        # history (orderflow trace) tells the same story readably.
        logging.getLogger("moto.stepfunctions").setLevel(logging.CRITICAL)
        logging.getLogger("moto.cloudformation").setLevel(logging.ERROR)
        self._moto = ThreadedMotoServer(ip_address=self.host, port=self.moto_port, verbose=False)
        self._moto.start()
        if os.environ.get("ORDERFLOW_MOTO_OVER_HTTP") != "1":
            in_process_transport.TRANSPORT.serve(self.endpoint, self._moto._server.app)
        self.deployment = cloudformation.deploy(folder, client)
        _deployed.append(self.deployment)
        self._detach_moto_event_source_mappings()
        self.state_machine_arn = self.deployment.state_machine_arn
        self.queue_urls = dict(self.deployment.queues)
        if self.sync_window_seconds != STOCK_SYNC.delay_seconds:
            # the coalescing window of stock auto-sync, shortened for a local stack (--sync-window)
            client("sqs").set_queue_attributes(QueueUrl=self.queue_urls[STOCK_SYNC.key],
                                               Attributes={"DelaySeconds": str(self.sync_window_seconds)})
        os.environ.update(self.environment())
        self._use_local_credential_files()
        get_settings.cache_clear()
        default_ports.cache_clear()
        for function in self.deployment.functions.values():
            module, attribute = function.handler.rsplit(".", 1)
            handler = getattr(importlib.import_module(module), attribute)
            lambda_binding.bind(function.physical_name, handler, function.environment, function.memory_mb)
        if self.persist:
            from orderflow_local.persistence import Snapshots

            self.snapshots = Snapshots(self.state_dir, dict(self.deployment.tables), every=self.snapshot_seconds)
            self.restored = self.snapshots.load()
            self.snapshots.start()
        self._start_sandbox_carrier()
        if self.serve_api:
            from orderflow_local.http_front import ApiFront

            api = self.deployment.functions["api"].physical_name
            self._api = ApiFront(self.host, self.api_port, self.token or "",
                                 lambda event, context: lambda_binding.call(api, event, context),
                                 routes=self.deployment.route_for)
            self._api.start()
        from orderflow_local.scheduler import LocalScheduler
        from orderflow_local.schedules import ScheduleRunner

        self.scheduler = LocalScheduler(speedup=self.schedule_speedup)
        self.schedules = ScheduleRunner(self.scheduler, {f.physical_name: f.name
                                                         for f in self.deployment.functions.values()})
        self.schedules.sync()
        # New or changed schedules (POST /channels creates one per channel) are picked up every few seconds.
        self.scheduler.add("schedule-sync", 3.0 * self.schedule_speedup, self.schedules.sync)
        self.scheduler.start()
        for mapping in self.deployment.event_source_mappings:
            self._serve_event_source_mapping(mapping)
        self._write_state_file()
        return self

    def _use_local_credential_files(self) -> None:
        """Supplier credentials in a 0600 file in the state folder from the start (the supplier forwarder keeps
        its store for the container's life, and the template's mapping may run it before start_suppliers).
        Channel credentials stay in the embedded Secrets Manager until start_channels (tests check them there);
        carrier keys: _start_sandbox_carrier."""
        from orderflow.suppliers import credentials

        state = self.state_dir.resolve()
        state.mkdir(parents=True, exist_ok=True)
        os.environ[credentials.CREDENTIALS_FILE_ENV] = str(state / "supplier-credentials.json")

    def _detach_moto_event_source_mappings(self) -> None:
        """moto runs an SQS event source mapping inside SendMessage (synchronously, ignoring partial batch
        responses); the local stack's pollers serve the mappings instead, as Lambda's pollers do."""
        from moto.sqs.models import sqs_backends

        for queue in sqs_backends[ACCOUNT][REGION].queues.values():
            queue.lambda_event_source_mappings.clear()

    def _serve_event_source_mapping(self, mapping: cloudformation.EventSourceMapping) -> Any:
        from orderflow_local import lambda_binding
        from orderflow_local.lambda_binding import LocalLambdaContext
        from orderflow_local.queues import QueuePoller

        physical = self.deployment.functions[mapping.function].physical_name
        poller = QueuePoller(
            mapping.queue_url, lambda event, context: lambda_binding.call(physical, event, context),
            batch_size=mapping.batch_size, wait_seconds=1, report_batch_item_failures=mapping.report_batch_item_failures,
            workers=mapping.maximum_concurrency or 1, context_factory=lambda: LocalLambdaContext(physical))
        poller.function = mapping.function
        poller.start()
        self.pollers.append(poller)
        return poller

    def poller_of(self, function: str) -> Any:
        """The queue poller serving functions/<function>'s event source mapping."""
        return next((p for p in self.pollers if getattr(p, "function", None) == function), None)

    def resume_restored(self, *, wait: bool = False) -> threading.Thread | None:
        """After a restart with saved data: redrive every order whose workflow should be running (their
        executions did not survive the restart), in the background. Returns the thread (None: nothing
        was restored)."""
        if not self.restored:
            return None
        from orderflow.service import reconcile
        from orderflow.wiring import default_ports

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

    def _start_sandbox_carrier(self) -> None:
        """The sandbox carrier (EasyPost's API shape) as the default carrier account ``sandbox``; labels are
        kept in ``<state dir>/labels``, carrier API keys in ``<state dir>/carrier-credentials.json``."""
        from orderflow.carriers import accounts, storage
        from orderflow.wiring import default_ports
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
        write_private(self.state_dir / "local.json", json.dumps(info, indent=2))

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
            in_process_transport.TRANSPORT.forget(self.endpoint)
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
