"""The MCF client against the sandbox FBA server over real sockets, with test-sized retry delays, and
Amazon's own model (fulfillmentOutbound_2020-07-01.json) to check both sides' shapes against."""

from __future__ import annotations

from decimal import Decimal

import jsonschema
import pytest

from orderflow.channels.http import RetryPolicy
from orderflow.fba.accounts import FbaAccount
from orderflow.fba.client import McfClient
from orderflow.models import Address, AllocatedLine, Allocation, Order, OrderLine, Shipment
from orderflow_local.sandbox.fba import FbaSandbox
from tests.contracts import amazon_model


@pytest.fixture(scope="session")
def spec() -> dict:
    return amazon_model("fulfillmentOutbound_2020-07-01.json")


def validator(spec: dict, definition: str) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator({"$ref": f"#/definitions/{definition}", "definitions": spec["definitions"]})


def fast_retry(**overrides) -> RetryPolicy:
    return RetryPolicy(**{"max_attempts": 5, "base_delay": 0.01, "max_delay": 0.05, **overrides})


@pytest.fixture(scope="module")
def _sandbox():
    with FbaSandbox(step_seconds=0) as sandbox:
        yield sandbox


@pytest.fixture
def amazon(_sandbox):
    """The module's sandbox FBA server, as new: completes orders at once unless a test says otherwise."""
    _sandbox.reset(step_seconds=0)
    return _sandbox


def connect(sandbox: FbaSandbox, retry: RetryPolicy | None = None, **options) -> McfClient:
    config, credentials = sandbox.channel("amz")
    return McfClient(config, credentials, retry=retry or fast_retry(), **options)


@pytest.fixture
def client(amazon):
    client = connect(amazon)
    yield client
    client.close()


def account(**overrides) -> FbaAccount:
    return FbaAccount(**{"warehouse_id": "fba", "channel_id": "amz", **overrides})


def order(lines=(("MUG-12OZ", 2, "12.5"), ("TSHIRT-BLK-M", 1, "19.99")), **address) -> tuple[Order, Shipment]:
    """An order with one FBA shipment of every line."""
    to = {"name": "Ada Lovelace", "line1": "12 Analytical St", "city": "Brooklyn", "region": "NY",
          "postal_code": "11201", "country": "US", **address}
    order = Order(order_id="ord_0123456789abcdef012345", shipping_address=Address.model_validate(to),
                  lines=[OrderLine(line_no=i, sku=sku, quantity=q, unit_price=Decimal(p))
                         for i, (sku, q, p) in enumerate(lines, 1)])
    allocated = [AllocatedLine(line_no=ln.line_no, sku=ln.sku, quantity=ln.quantity, warehouse_id="fba")
                 for ln in order.lines]
    order.allocations = [Allocation(rule_set="test", lines=allocated, status="reserved")]
    shipment = Shipment(shipment_id=f"{order.order_id}-1", warehouse_id="fba", method="fba", lines=allocated)
    order.shipments = [shipment]
    return order, shipment
