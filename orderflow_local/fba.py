"""Amazon FBA on ``orderflow local``: the forwarder on the fba-orders queue, the tracking poll on the local
scheduler, and (with sample data) a sandbox FBA server with an FBA warehouse connected to it.

- the fba-orders queue is fed to ``functions.forward_fba.handler`` by a local poller, as Lambda's event
  source mapping does on AWS (batches, partial batch failures, redrive to the DLQ);
- ``functions.poll_fba.handler`` runs every ``poll_every`` seconds (divided by the stack's schedule
  speed-up), as the EventBridge Scheduler schedule does on AWS;
- the sandbox (:class:`orderflow_local.sandbox.fba.FbaSandbox`) listens on a free loopback port and moves each
  fulfillment order a step every ``step_seconds``; it takes the sandbox Amazon channel's Login-with-Amazon
  credentials when the sandbox channels run (the account then names ``sandbox-amazon`` and points its
  ``endpoint`` here), otherwise it is connected as its own Amazon channel ``sandbox-fba``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from orderflow import config

#: How often the local stack asks Amazon for tracking (AWS: the schedule's rate, e.g. 15 minutes).
DEFAULT_POLL_SECONDS = 10.0
#: How long the sandbox keeps a fulfillment order at each step (Received, Planning, Processing).
SANDBOX_STEP_ENV = config.SANDBOX_FBA_STEP.name
SANDBOX_CHANNEL = "sandbox-amazon"
OWN_CHANNEL = "sandbox-fba"


@dataclass
class FbaRuntime:
    poller: Any = None
    job: Any = None
    sandbox: Any = None
    described: list[str] = field(default_factory=list)

    def stop(self) -> None:
        if self.sandbox is not None:
            self.sandbox.stop()
            self.sandbox = None

    def describe(self) -> list[str]:
        return self.described


def start_fba(stack: Any, *, poll_every: float = DEFAULT_POLL_SECONDS, sandbox: bool = False,
              step_seconds: float | None = None) -> FbaRuntime:
    runtime = FbaRuntime()
    # The template's event source mapping of fba-orders, and its poll_fba schedule run this often.
    runtime.poller = stack.poller_of("forward_fba")
    stack.schedules.override("poll_fba", poll_every)
    runtime.job = stack.scheduler.jobs.get(stack.schedules.job_name("poll_fba"))
    runtime.described.append(f"tracking polled every {poll_every / stack.scheduler.speedup:g}s; fulfillment "
                             "orders created from the fba-orders queue")
    if sandbox:
        from orderflow_local.sandbox.fba import FbaSandbox

        step = step_seconds if step_seconds is not None else float(os.environ.get(SANDBOX_STEP_ENV) or 5.0)
        amazon = _sandbox_amazon(stack)
        credentials = {k: getattr(amazon, k) for k in ("client_id", "client_secret", "refresh_token", "seller_id",
                                                       "marketplace_id")} if amazon else {}
        runtime.sandbox = FbaSandbox(stack.host, step_seconds=step, **credentials).start()
        runtime.described.append(f"sandbox FBA (SP-API Fulfillment Outbound 2020-07-01) at {runtime.sandbox.url}: "
                                 f"Received -> Planning -> Processing -> Complete, {step:g}s a step; "
                                 "GET /_sandbox/fulfillment-orders")
    return runtime


def _sandbox_amazon(stack: Any) -> Any:
    channels = getattr(stack, "channel_runtime", None)
    return (getattr(channels, "sandboxes", None) or {}).get(SANDBOX_CHANNEL)


def connect_sandbox_account(stack: Any, runtime: FbaRuntime, warehouse_id: str) -> Any:
    """Connect ``warehouse_id`` to the sandbox FBA server (see the module docstring). Returns the account."""
    from orderflow.adapters.channel_store import ChannelStore, default_credentials
    from orderflow.channels.config import ImportSchedule
    from orderflow.fba.accounts import FbaAccount, FbaStore
    from orderflow.wiring import default_ports

    sandbox = runtime.sandbox
    if sandbox is None:
        raise RuntimeError("the sandbox FBA server is not running (start_fba(sandbox=True))")
    if _sandbox_amazon(stack) is not None:
        account = FbaAccount(warehouse_id=warehouse_id, channel_id=SANDBOX_CHANNEL, endpoint=sandbox.url,
                             lwa_url=sandbox.url, comment="Thanks for shopping with the orderflow sandbox!")
    else:
        config, credentials = sandbox.channel(OWN_CHANNEL, name="Sandbox Amazon (FBA only)",
                                              import_schedule=ImportSchedule(enabled=False))
        default_credentials().put(OWN_CHANNEL, credentials)
        ChannelStore().put(config)
        account = FbaAccount(warehouse_id=warehouse_id, channel_id=OWN_CHANNEL,
                             comment="Thanks for shopping with the orderflow sandbox!")
    stored, _ = FbaStore(default_ports().documents).put_account(account)
    runtime.described.append(f"warehouse {warehouse_id} ships through it (Amazon account of channel "
                             f"{stored.channel_id})")
    return stored
