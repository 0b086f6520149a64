"""The channels of ``orderflow local``: sandbox shops, their channel configurations, and the channels'
import schedules run locally.

- One sandbox per channel type (Shopify, WooCommerce, Amazon) on a free loopback port, producing a new
  order every few seconds; Shopify and WooCommerce also send their signed webhooks to the local API.
- Each is connected as a channel the way a seller connects one (``POST /channels`` does the same):
  configuration in the settings table, credentials in the local credentials file
  (``.orderflow/channel-credentials.json``, mode 0600), and an EventBridge Scheduler schedule.
- moto stores schedules but never fires them: :class:`ScheduleMirror` reads the channel schedule group
  and runs each enabled schedule on the local scheduler, invoking its target function in-process
  with its input, the way EventBridge Scheduler invokes the import function on AWS.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from orderflow.adapters.aws import client
from orderflow.adapters.channel_store import (
    CREDENTIALS_FILE_ENV,
    IMPORT_FUNCTION_ENV,
    SCHEDULE_GROUP_ENV,
    SCHEDULER_ROLE_ENV,
    ChannelSchedules,
    ChannelStore,
    default_credentials,
)
from orderflow.channels.config import ImportSchedule
from orderflow_local.sandbox import AmazonSandbox, SandboxChannel, ShopifySandbox, WooCommerceSandbox

log = logging.getLogger(__name__)

SCHEDULE_GROUP = "orderflow-channel-imports"
RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    """``rate(5 minutes)`` -> 300. (Channel schedules are rate expressions.)"""
    match = RATE.match(expression.strip())
    if not match:
        raise ValueError(f"not a rate expression: {expression}")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2).rstrip("s")]


def prepare(stack: Any) -> None:
    """Point channel credentials, schedules and the import function at the local stack."""
    from orderflow.api import channels as channels_api
    from orderflow_local.stack import ACCOUNT, PREFIX, function_arn

    credentials = stack.state_dir / "channel-credentials.json"
    credentials.unlink(missing_ok=True)  # the stack's data lives in memory: start clean
    os.environ.update({
        CREDENTIALS_FILE_ENV: str(credentials.resolve()),
        SCHEDULE_GROUP_ENV: SCHEDULE_GROUP,
        SCHEDULER_ROLE_ENV: f"arn:aws:iam::{ACCOUNT}:role/{PREFIX}-import-scheduler",
        IMPORT_FUNCTION_ENV: function_arn("import_orders"),
    })
    channels_api.reset()
    client("scheduler").create_schedule_group(Name=SCHEDULE_GROUP)


class ScheduleMirror:
    """Runs the schedules of one EventBridge Scheduler group on the local scheduler."""

    def __init__(self, scheduler: Any, group: str = SCHEDULE_GROUP) -> None:
        self.scheduler = scheduler
        self.group = group
        self.running: dict[str, tuple[str, str, str]] = {}

    def sync(self) -> None:
        scheduler_api = client("scheduler")
        seen = set()
        for summary in scheduler_api.list_schedules(GroupName=self.group).get("Schedules", []):
            name = summary["Name"]
            schedule = scheduler_api.get_schedule(Name=name, GroupName=self.group)
            if schedule.get("State") != "ENABLED":
                continue
            seen.add(name)
            target = schedule["Target"]
            signature = (schedule["ScheduleExpression"], target["Arn"], target.get("Input", "{}"))
            if self.running.get(name) == signature:
                continue
            self.running[name] = signature
            self.scheduler.add(f"schedule:{name}", rate_seconds(signature[0]),
                               lambda arn=target["Arn"], payload=signature[2]: invoke(arn, payload),
                               run_at_start=True)
            log.debug("local schedule %s: %s", name, signature[0])
        for name in set(self.running) - seen:
            self.running.pop(name)
            self.scheduler.jobs.pop(f"schedule:{name}", None)


def invoke(function_arn: str, payload: str) -> Any:
    """Invoke a bound function in-process the way Lambda would (a function error becomes an exception)."""
    from orderflow_local.lambda_binding import invoke_bound

    headers: dict[str, str] = {}
    result = invoke_bound(function_arn, payload, headers)
    body = json.loads(result) if result else None
    if headers.get("x-amz-function-error"):
        raise RuntimeError(f"{body.get('errorType')}: {body.get('errorMessage')}" if isinstance(body, dict)
                           else "function error")
    return body


@dataclass
class Channels:
    sandboxes: dict[str, SandboxChannel] = field(default_factory=dict)
    configs: list[Any] = field(default_factory=list)
    mirror: ScheduleMirror | None = None

    def describe(self) -> list[str]:
        lines = []
        for config in self.configs:
            via = " + webhooks" if config.type in ("shopify", "woocommerce") else ""
            lines.append(f"{config.channel_id:<20} {config.type:<12} {config.base_url}  "
                         f"import {config.import_schedule.expression()}{via}")
        return lines

    def stop(self) -> None:
        for sandbox in self.sandboxes.values():
            sandbox.stop()


def start_channels(stack: Any, *, sandbox: bool = True, order_every: float = 8.0) -> Channels:
    """Channel support for the local stack: environment, schedule mirror, and (``sandbox``) the three
    sandbox shops connected as channels ``sandbox-shopify``, ``sandbox-woocommerce``, ``sandbox-amazon``."""
    prepare(stack)
    channels = Channels()
    channels.mirror = ScheduleMirror(stack.scheduler)
    if sandbox:
        try:
            _connect_sandboxes(stack, channels, order_every)
        except BaseException:
            channels.stop()
            raise
    channels.mirror.sync()
    # New or changed channel schedules (POST /channels) are picked up every few seconds.
    stack.scheduler.add("channel-schedules", 3.0 * stack.scheduler.speedup, channels.mirror.sync)
    return channels


def _connect_sandboxes(stack: Any, channels: Channels, order_every: float) -> None:
    api = stack.api_url if stack.serve_api else None
    every = ImportSchedule(every_minutes=1)
    shop_secret, woo_secret = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    shopify = ShopifySandbox(order_every=order_every, seed=11, redeliver_every=4,
                             webhook_url=f"{api}/webhooks/sandbox-shopify" if api else None, webhook_secret=shop_secret)
    woo = WooCommerceSandbox(order_every=order_every, seed=12,
                             webhook_url=f"{api}/webhooks/sandbox-woocommerce" if api else None,
                             webhook_secret=woo_secret)
    amazon = AmazonSandbox(order_every=order_every, seed=13, rate=1.0, burst=5, settle_seconds=5)
    channels.sandboxes = {"sandbox-shopify": shopify, "sandbox-woocommerce": woo, "sandbox-amazon": amazon}
    # Order ids carry on from the clock, so a restarted stack (which keeps the orders it imported) never
    # meets a new sandbox order under an id it stored before.
    first_id = (int(time.time()) - 1_700_000_000) * 10
    for shop in channels.sandboxes.values():
        shop._counter = max(shop._counter, first_id)
        shop.start()
        for _ in range(3):  # a few orders waiting already, found by the first poll
            shop.add_order(notify=False)
    names = {"sandbox-shopify": "Sandbox Shopify", "sandbox-woocommerce": "Sandbox WooCommerce",
             "sandbox-amazon": "Sandbox Amazon"}
    connected = [shop.channel(channel_id, name=names[channel_id], import_schedule=every)
                 for channel_id, shop in channels.sandboxes.items()]
    store, credentials, schedules = ChannelStore(), default_credentials(), ChannelSchedules()
    for config, secret in connected:
        credentials.put(config.channel_id, secret)
        stored, _ = store.put(config)
        schedules.upsert(stored)
        channels.configs.append(stored)
