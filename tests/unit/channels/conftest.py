"""Sandbox channels on real loopback sockets, and clients of them with test-sized retry delays."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orderflow.channels.clients import client_for
from orderflow.channels.http import RetryPolicy
from orderflow_local.sandbox import AmazonSandbox, ShopifySandbox, WooCommerceSandbox

FIXTURES = Path(__file__).parent / "fixtures"
SINCE = datetime.now(UTC) - timedelta(days=1)


def fast_retry(**overrides) -> RetryPolicy:
    return RetryPolicy(**{"max_attempts": 5, "base_delay": 0.01, "max_delay": 0.05, **overrides})


def sandbox(kind: str, **options):
    if kind == "shopify":
        return ShopifySandbox(**options).start()
    if kind == "woocommerce":
        return WooCommerceSandbox(**options).start()
    return AmazonSandbox(**{"settle_seconds": 0, "rate": 50.0, "burst": 50, **options}).start()


def connect(shop, channel_id: str = "ch", page_size: int = 3, retry: RetryPolicy | None = None, **client_options):
    """The channel client of a sandbox shop (config and credentials as a seller would enter them)."""
    retry = retry or fast_retry()
    config, creds = shop.channel(channel_id, page_size=page_size)
    return client_for(config, creds, retry=retry, **client_options)


def read_all(client, since=SINCE):
    """Every page of a poll: (orders, pages)."""
    orders, pages, token = [], 0, None
    while True:
        page = client.fetch_page(since, token)
        orders.extend(page.orders)
        pages += 1
        token = page.next_token
        if token is None:
            return orders, pages


@pytest.fixture(params=["shopify", "woocommerce", "amazon"])
def shop(request):
    shop = sandbox(request.param)
    yield shop
    shop.stop()
