"""One local stack per test session: moto on loopback running the real ASL with our handlers."""

from __future__ import annotations

import time
import uuid

import pytest

from orderflow.models import NewOrder, Order, OrderStatus, Warehouse


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    from orderflow_local.stack import LocalStack

    local = LocalStack(api_port=0, token="test-token", state_dir=tmp_path_factory.mktemp("state"))
    local.start()
    yield local
    local.stop()


@pytest.fixture
def ports(stack):
    from orderflow.wiring import default_ports

    return default_ports()


@pytest.fixture
def uid() -> str:
    """A suffix that keeps each test's SKUs and warehouses apart on the shared stack."""
    return uuid.uuid4().hex[:8]


def add_warehouse(ports, warehouse_id: str, priority: int = 10, kind: str = "own", **extra) -> Warehouse:
    return ports.settings.put_warehouse(Warehouse(warehouse_id=warehouse_id, name=warehouse_id,
                                                  priority=priority, kind=kind, **extra))


def make_order(lines: list[tuple[str, int]], address: dict, **extra) -> NewOrder:
    return NewOrder.model_validate({
        "lines": [{"sku": sku, "quantity": qty, "unit_price": "10.00"} for sku, qty in lines],
        "shipping_address": address, **extra})


def wait_for(ports, order_id: str, *statuses: OrderStatus, timeout: float = 30) -> Order:
    deadline = time.monotonic() + timeout
    order = ports.orders.get(order_id)
    while order.status not in statuses:
        if time.monotonic() > deadline:
            raise AssertionError(f"order {order_id} is {order.status}, not {statuses}; events: "
                                 f"{[(e.type, e.detail) for e in order.events]}")
        time.sleep(0.05)
        order = ports.orders.get(order_id)
    return order


def execution_status(stack, order_id: str, timeout: float = 30, until=("SUCCEEDED", "FAILED")) -> dict:
    from orderflow.adapters.aws import client
    from orderflow.trace import execution_arn

    deadline = time.monotonic() + timeout
    while True:
        desc = client("stepfunctions").describe_execution(
            executionArn=execution_arn(stack.state_machine_arn, order_id))
        if desc["status"] in until or time.monotonic() > deadline:
            return desc
        time.sleep(0.05)


def final_state(stack, order_id: str, attempt: int = 1) -> str | None:
    """The last state the order's execution entered (e.g. ``Cancelled``), from its history."""
    from orderflow.adapters.aws import client
    from orderflow.trace import execution_arn

    name = order_id if attempt == 1 else f"{order_id}-r{attempt}"
    pages = client("stepfunctions").get_paginator("get_execution_history").paginate(
        executionArn=execution_arn(stack.state_machine_arn, name))
    entered = [e["stateEnteredEventDetails"]["name"] for page in pages for e in page["events"]
               if "stateEnteredEventDetails" in e]
    return entered[-1] if entered else None
