"""The reconciler's needs-attention count (the metric the ``OrdersNeedAttention`` alarm watches), on the local
stack's DynamoDB, and the local stack keeping metrics off its console."""

from __future__ import annotations

import json
import os
from types import SimpleNamespace

from orderflow import observability
from orderflow.models import Order, OrderStatus
from tests.integration.conftest import make_order


def _needing_attention(ports) -> int:
    total, cursor = 0, None
    while True:
        batch, cursor = ports.orders.list_by_status(OrderStatus.NEEDS_ATTENTION, limit=100, cursor=cursor)
        total += len(batch)
        if not cursor:
            return total


def _park(ports, address) -> str:
    order = Order.from_new(make_order([("METRIC-SKU", 1)], address))
    order.status = OrderStatus.NEEDS_ATTENTION
    order.attention_reason = "test: counted by the reconciler"
    order.record("needs_attention", order.attention_reason)
    ports.orders.create(order)
    return order.order_id


def test_count_by_status_counts_every_order_in_that_status(stack, ports, address) -> None:
    before = ports.orders.count_by_status(OrderStatus.NEEDS_ATTENTION)
    assert before == _needing_attention(ports)
    _park(ports, address)
    _park(ports, address)
    assert ports.orders.count_by_status(OrderStatus.NEEDS_ATTENTION) == before + 2 == _needing_attention(ports)


def test_the_reconciler_reports_the_needs_attention_backlog(stack, ports, address, monkeypatch, capsys) -> None:
    from functions.reconcile import handler

    _park(ports, address)
    expected = ports.orders.count_by_status(OrderStatus.NEEDS_ATTENTION)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")  # as on AWS
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orderflow-dev-Reconcile")
    context = SimpleNamespace(function_name="orderflow-dev-Reconcile", memory_limit_in_mb=512, aws_request_id="r1",
                              invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:x")
    capsys.readouterr()
    handler.lambda_handler({"older_than_seconds": 10**9}, context)  # redrives nothing: only the count
    blobs = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    [blob] = [b for b in blobs if observability.ATTENTION_BACKLOG in b]
    assert blob[observability.ATTENTION_BACKLOG] == [float(expected)] or blob[observability.ATTENTION_BACKLOG] == expected
    assert blob["service"] == "orderflow" and blob["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "orderflow"


def test_the_local_stack_prints_no_metrics(stack) -> None:
    assert stack.environment()["POWERTOOLS_METRICS_DISABLED"] == "true"
    assert os.environ["POWERTOOLS_METRICS_DISABLED"] == "true"
