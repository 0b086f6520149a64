"""The channels of ``orderflow local``: sandbox shops, their channel configurations, and the channels'
import schedules run locally.

- One sandbox per channel type (Shopify, WooCommerce, Amazon) on a free loopback port, producing a new
  order every few seconds; Shopify and WooCommerce also send their signed webhooks to the local API.
- Each is connected as a channel the way a seller connects one (``POST /channels`` does the same):
  configuration in the settings table, credentials in the local credentials file
  (``.orderflow/channel-credentials.json``, mode 0600), and an EventBridge Scheduler schedule.
- The import schedules are created in the template's import schedule group, as ``POST /channels`` does on
  AWS; :mod:`orderflow_local.schedules` fires them.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

from orderflow.adapters.channel_store import (
    CREDENTIALS_FILE_ENV,
    ChannelSchedules,
    ChannelStore,
    default_credentials,
)
from orderflow.channels.config import ImportSchedule
from orderflow_local.sandbox import AmazonSandbox, SandboxChannel, ShopifySandbox, WooCommerceSandbox

log = logging.getLogger(__name__)

def prepare(stack: Any) -> None:
    """Keep channel credentials in the stack's state folder (the local stand-in for Secrets Manager): the
    channel slice picks its credentials store at every use, so it sees this from now on."""
    credentials = stack.state_dir / "channel-credentials.json"
    credentials.unlink(missing_ok=True)  # the stack's data lives in memory: start clean
    os.environ[CREDENTIALS_FILE_ENV] = str(credentials.resolve())


@dataclass
class Channels:
    sandboxes: dict[str, SandboxChannel] = field(default_factory=dict)
    configs: list[Any] = field(default_factory=list)

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
    if sandbox:
        try:
            _connect_sandboxes(stack, channels, order_every)
        except BaseException:
            channels.stop()
            raise
    stack.schedules.sync()  # the channels' import schedules start now
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
