"""One client per channel type, built from a channel's configuration and credentials."""

from __future__ import annotations

from typing import Any

from orderflow.channels.amazon import AmazonClient
from orderflow.channels.base import ChannelClient
from orderflow.channels.config import (
    AmazonConfig,
    AmazonCredentials,
    Credentials,
    ShopifyConfig,
    ShopifyCredentials,
    WooCommerceConfig,
    WooCommerceCredentials,
)
from orderflow.channels.http import Deadline, RetryPolicy
from orderflow.channels.shopify import ShopifyClient
from orderflow.channels.woocommerce import WooCommerceClient
from orderflow.errors import ValidationFailed


def client_for(config: Any, credentials: Credentials | None, *, retry: RetryPolicy | None = None,
               deadline: Deadline | None = None, rate_state: dict[str, Any] | None = None,
               timeout: float = 30.0) -> ChannelClient:
    """The channel's client. ``rate_state`` restores a saved token bucket (Amazon)."""
    if credentials is None:
        raise ValidationFailed(f"channel {config.channel_id} has no credentials; POST /channels with "
                               "`credentials` first", channel_id=config.channel_id, field="credentials")
    options = {"retry": retry, "deadline": deadline, "timeout": timeout}
    if isinstance(config, ShopifyConfig) and isinstance(credentials, ShopifyCredentials):
        return ShopifyClient(config, credentials, **options)
    if isinstance(config, WooCommerceConfig) and isinstance(credentials, WooCommerceCredentials):
        return WooCommerceClient(config, credentials, **options)
    if isinstance(config, AmazonConfig) and isinstance(credentials, AmazonCredentials):
        return AmazonClient(config, credentials, rate_state=rate_state, **options)
    raise ValidationFailed(f"channel {config.channel_id}: credentials do not fit a {config.type} channel",
                           channel_id=config.channel_id, field="credentials")
