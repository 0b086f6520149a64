"""Carrier clients against real loopback servers: the sandbox carrier (EasyPost's shape) and a fake Shippo."""

from __future__ import annotations

import pytest

from orderflow.carriers.base import LabelRequest, Parcel
from orderflow.carriers.http import RetryPolicy
from orderflow.models import Address
from orderflow_local.sandbox.carrier import SandboxCarrier
from tests.unit.carriers.fake_shippo import FakeShippo

FROM = Address(name="Ship Dept", company="Acme Mugs", line1="5 Dock Rd", city="Newark", region="NJ",
               postal_code="07102", country="US", phone="555-0100")
TO = Address(name="Grace Hopper", line1="1 Navy Way", line2="Apt 2", city="Arlington", region="VA",
             postal_code="22202", country="US")


class Sleeps(list):
    """A RetryPolicy.sleep that records the delays instead of sleeping."""

    def __call__(self, seconds: float) -> None:
        self.append(seconds)


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def retry(sleeps) -> RetryPolicy:
    return RetryPolicy(max_attempts=4, base_delay=0.01, max_delay=0.05, sleep=sleeps)


@pytest.fixture
def sandbox():
    with SandboxCarrier(api_key="EZTK_test_key") as carrier:
        yield carrier


@pytest.fixture
def shippo():
    with FakeShippo() as fake:
        yield fake


def label_request(**changes) -> LabelRequest:
    data = {"reference": "ord_test-1", "from_address": FROM, "to_address": TO,
            "parcel": Parcel(weight_oz=12, length_in=9, width_in=6, height_in=4)}
    data.update(changes)
    return LabelRequest(**data)
