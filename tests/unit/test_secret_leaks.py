"""Security review, issue 11: secrets never appear in validation errors (item 4), stored credentials of
the wrong type fail without their values (item 4), and each carrier id has its own key variable (item 15)."""

from __future__ import annotations

import itertools
import random

import pytest
from pydantic import SecretStr, ValidationError

from orderflow.adapters.channel_store import FileCredentials
from orderflow.carriers.accounts import KEY_ENV_PREFIX, CarrierAccountIn, env_key_name
from orderflow.channels.config import (
    AmazonChannelIn,
    AmazonCredentials,
    ShopifyChannelIn,
    ShopifyCredentials,
    StoredCredentialsInvalid,
    WooCommerceChannelIn,
    WooCommerceCredentials,
    credentials_from,
)
from orderflow.fba.accounts import FbaAccountIn
from orderflow.models import Identifier
from orderflow.suppliers.config import SupplierCredentials, SupplierIn

SECRET = "Sekr1t-42"  # short: pydantic would not cut it out of a long repr
CHANNEL = {"channel_id": "c1", "base_url": "https://shop.example.com"}
AMAZON = {**CHANNEL, "seller_id": "S1", "marketplace_ids": ["ATVPDKIKX0DER"]}
SFTP = {"host": "sftp.example.com", "username": "u", "host_key_fingerprint": "SHA256:" + "A" * 43}

# (model, data that fails validation and carries SECRET somewhere in its input)
FAILING = [
    (ShopifyCredentials, {"access_token": SECRET, "extra": SECRET}),
    (ShopifyCredentials, {"client_id": SECRET}),
    (WooCommerceCredentials, {"consumer_key": SECRET}),
    (AmazonCredentials, {"access_token": SECRET}),
    (ShopifyChannelIn, {**CHANNEL, "type": "shopify", "credentials": {"refresh_token": SECRET}}),
    (WooCommerceChannelIn, {**CHANNEL, "type": "woocommerce", "credentials": {"access_token": SECRET}}),
    (AmazonChannelIn, {**AMAZON, "type": "amazon", "credentials": {"access_token": SECRET}}),
    (FbaAccountIn, {"channel_id": "c1", "credentials": {"access_token": SECRET}}),
    (CarrierAccountIn, {"type": "easypost", "api_key": SECRET, "surprise": SECRET}),
    (SupplierCredentials, {"password": SECRET, "passwort": SECRET}),
    (SupplierIn, {"sftp": SFTP, "credentials": {"password": SECRET, "token": SECRET}}),
    (SupplierIn, {"sftp": SFTP, "credentials": {"passphrase": SECRET}}),
]


@pytest.mark.parametrize(("model", "data"), FAILING, ids=lambda v: getattr(v, "__name__", ""))
def test_credential_models_hide_their_input_in_validation_errors(model, data):
    with pytest.raises(ValidationError) as err:
        model.model_validate(data)
    assert SECRET not in str(err.value) and SECRET not in repr(err.value)


@pytest.mark.parametrize(("channel_type", "stored"), [
    ("amazon", {"access_token": SECRET, "webhook_secret": SECRET}),
    ("woocommerce", {"client_id": SECRET, "client_secret": SECRET, "refresh_token": SECRET}),
    ("shopify", {"consumer_key": SECRET, "consumer_secret": SECRET}),
])
def test_stored_credentials_of_another_type_fail_without_their_values(channel_type, stored):
    with pytest.raises(StoredCredentialsInvalid) as err:
        credentials_from(channel_type, stored)
    problem = err.value
    assert problem.http_status == 422 and problem.details["field"] == "credentials"
    assert SECRET not in f"{problem} {problem.message} {problem.details} {problem!r}"
    assert problem.__cause__ is None and problem.__context__ is None  # no pydantic error riding along
    assert "extra_forbidden" in problem.message or "missing" in problem.message  # names what is wrong


def test_the_credentials_file_reads_another_types_credentials_as_a_clean_error(tmp_path):
    store = FileCredentials(tmp_path / "credentials.json")
    store.put("c1", ShopifyCredentials(access_token=SecretStr(SECRET)))
    assert store.get("c1", "shopify").access_token.get_secret_value() == SECRET
    with pytest.raises(StoredCredentialsInvalid) as err:
        store.get("c1", "amazon")
    assert SECRET not in str(err.value)


# -- item 15: one environment variable per carrier id ---------------------------------------------------------


def test_carrier_ids_that_used_to_share_a_key_variable_get_their_own():
    colliding = ["ups-1", "ups_1", "UPS-1", "UPS_1", "Ups-1", "ups--1", "ups__1", "ups-_1", "ups_-1", "ups-01"]
    names = [env_key_name(c) for c in colliding]
    assert len(set(names)) == len(names), dict(zip(colliding, names, strict=True))
    assert env_key_name("ups-1") == "ORDERFLOW_CARRIER_KEY_UPS_1"  # plain ids keep their documented name
    assert env_key_name("ep-main") == "ORDERFLOW_CARRIER_KEY_EP_MAIN"
    assert env_key_name("ups_1") == "ORDERFLOW_CARRIER_KEY__UPS__1"
    assert all(n.startswith(KEY_ENV_PREFIX) and n.replace("_", "").isalnum() and n.isupper() for n in names)


def test_the_carrier_key_variable_is_injective_over_carrier_ids():
    from pydantic import TypeAdapter

    ids = TypeAdapter(Identifier)
    alphabet = "aAzZ09_-"
    every_short = ["".join(p) for n in range(1, 5) for p in itertools.product(alphabet, repeat=n)]
    rng = random.Random(11)
    longer = ["".join(rng.choice("abcXYZ019_-") for _ in range(rng.randint(1, 20))) for _ in range(20_000)]
    valid = {c for c in every_short + longer if c[0].isalnum()}
    for carrier_id in list(valid)[:50]:
        ids.validate_python(carrier_id)  # these are carrier ids the API accepts
    names: dict[str, str] = {}
    for carrier_id in valid:
        name = env_key_name(carrier_id)
        assert name not in names, f"{carrier_id!r} and {names[name]!r} share {name}"
        names[name] = carrier_id
