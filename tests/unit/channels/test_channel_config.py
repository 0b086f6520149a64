"""Channel configuration: validation, and credentials that never print."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from orderflow.adapters.channel_store import FileCredentials
from orderflow.channels.config import (
    ChannelIn,
    ImportSchedule,
    ShopifyCredentials,
    config_from,
    reveal,
    split,
)

CHANNEL_IN = TypeAdapter(ChannelIn)


def test_a_channel_is_a_config_plus_credentials_kept_apart():
    channel = CHANNEL_IN.validate_python({"channel_id": "shop", "type": "shopify", "base_url": "https://x.myshopify.com/",
                                          "credentials": {"access_token": "shpat_123", "webhook_secret": "whs"}})
    config, credentials = split(channel)
    assert config.base_url == "https://x.myshopify.com" and config.api_version == "2026-04"
    assert "credentials" not in config.model_dump()
    assert "shpat_123" not in repr(channel) and "shpat_123" not in str(credentials)
    assert reveal(credentials) == {"access_token": "shpat_123", "webhook_secret": "whs"}
    assert config_from({**config.model_dump(mode="json"), "added_later": 1}) == config


@pytest.mark.parametrize("body, field", [
    ({"type": "shopify", "base_url": "http://shop.example.com"}, "base_url"),  # plain http off loopback
    ({"type": "shopify", "base_url": "https://user:pw@shop.example.com"}, "base_url"),
    ({"type": "ebay", "base_url": "https://x.example.com"}, "type"),
    ({"type": "amazon", "base_url": "https://sellingpartnerapi-na.amazon.com", "seller_id": "A1",
      "marketplace_ids": []}, "marketplace_ids"),
    ({"type": "woocommerce", "base_url": "https://w.example.com", "import_schedule": {"every_minutes": 0}},
     "every_minutes"),
])
def test_bad_channels_are_refused_naming_the_field(body, field):
    with pytest.raises(ValidationError) as err:
        CHANNEL_IN.validate_python({"channel_id": "c", **body})
    assert field in str(err.value)


def test_loopback_may_use_plain_http_and_schedules_are_rate_expressions():
    channel = CHANNEL_IN.validate_python({"channel_id": "w", "type": "woocommerce", "base_url": "http://127.0.0.1:8080"})
    assert channel.base_url == "http://127.0.0.1:8080"
    assert ImportSchedule(every_minutes=1).expression() == "rate(1 minute)"
    assert ImportSchedule(every_minutes=15).expression() == "rate(15 minutes)"


def test_the_local_credentials_file_is_private_and_round_trips(tmp_path):
    store = FileCredentials(tmp_path / "creds.json")
    store.put("shop", ShopifyCredentials(access_token="shpat_abc"))
    assert (tmp_path / "creds.json").stat().st_mode & 0o777 == 0o600
    assert store.get("shop", "shopify").access_token.get_secret_value() == "shpat_abc"
    assert store.get("other", "shopify") is None
