"""The CloudWatch metrics the handlers emit (Powertools EMF): what is counted, when it is flushed, and
that nothing is recorded where nobody flushes it (outside Lambda, the local stack)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path
from types import SimpleNamespace

import pytest

from orderflow import observability
from orderflow.models import OrderEvent, OrderStatus

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def in_lambda(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orderflow-dev-Allocate")
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    observability.metrics.clear_metrics()
    yield
    observability.metrics.clear_metrics()


def _emf(output: str) -> list[dict]:
    return [json.loads(line) for line in output.splitlines() if line.startswith("{") and '"_aws"' in line]


def _values(blobs: list[dict]) -> dict[str, float]:
    """Metric name -> value(s) summed over the EMF lines."""
    found: dict[str, float] = {}
    for blob in blobs:
        for definition in blob["_aws"]["CloudWatchMetrics"]:
            for metric in definition["Metrics"]:
                value = blob[metric["Name"]]
                found[metric["Name"]] = found.get(metric["Name"], 0) + (sum(value) if isinstance(value, list) else value)
    return found


def _order(status: OrderStatus = OrderStatus.NEW) -> SimpleNamespace:
    return SimpleNamespace(order_id="ord_1", status=status)


def _handler(*event_types: str):
    @observability.log_metrics
    @observability.step_latency("allocate")
    def lambda_handler(event: dict, context: object) -> dict:
        observability.log_order_events(_order(), [OrderEvent(type=t) for t in event_types])
        return {"ok": True}

    return lambda_handler


def test_status_changes_are_counted_and_flushed_once_per_invocation(in_lambda, capsys) -> None:
    handler = _handler("created", "allocated", "paid", "completed_manually", "needs_attention", "paid")
    assert handler({}, None) == {"ok": True}
    blobs = _emf(capsys.readouterr().out)
    assert _values(blobs) == {"OrdersCreated": 1, "OrdersPaid": 2, "OrdersCompleted": 1, "OrdersNeedingAttention": 1,
                              "StepLatency": pytest.approx(_values(blobs)["StepLatency"])}
    counts = next(b for b in blobs if "OrdersCreated" in b)
    assert counts["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "orderflow"
    assert counts["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service"]]
    assert counts["service"] == "orderflow"
    latency = next(b for b in blobs if "StepLatency" in b)
    assert latency["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["service", "step"]]
    assert (latency["service"], latency["step"]) == ("orderflow", "allocate")
    assert latency["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "StepLatency", "Unit": "Milliseconds"}]

    # the next invocation starts empty: nothing is counted twice
    handler = _handler("created")
    handler({}, None)
    assert _values([b for b in _emf(capsys.readouterr().out) if "OrdersCreated" in b]) == {"OrdersCreated": 1}


def test_an_invocation_without_order_metrics_prints_no_warning(in_lambda, capsys) -> None:
    @observability.log_metrics
    def lambda_handler(event: dict, context: object) -> str:
        return "nothing happened"

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # Powertools' own decorator warns "No application metrics to publish"
        assert lambda_handler({}, None) == "nothing happened"
    assert _emf(capsys.readouterr().out) == []


def test_a_failing_step_still_reports_its_latency(in_lambda, capsys) -> None:
    @observability.log_metrics
    @observability.step_latency("complete")
    def lambda_handler(event: dict, context: object) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        lambda_handler({}, None)
    [blob] = _emf(capsys.readouterr().out)
    assert blob["step"] == "complete" and _values([blob])["StepLatency"] >= 0


def test_allocation_latency_is_recorded_in_milliseconds(in_lambda, capsys) -> None:
    @observability.log_metrics
    def lambda_handler(event: dict, context: object) -> None:
        with observability.timed(observability.ALLOCATION_LATENCY):
            pass

    lambda_handler({}, None)
    [blob] = _emf(capsys.readouterr().out)
    assert blob["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [{"Name": "AllocationLatency", "Unit": "Milliseconds"}]


def test_allocate_step_times_the_allocation(monkeypatch: pytest.MonkeyPatch) -> None:
    from orderflow import orders
    from orderflow.workflow import steps

    recorded: list[tuple[str, float]] = []
    monkeypatch.setattr(observability, "milliseconds", lambda name, value: recorded.append((name, value)))
    order = SimpleNamespace(allocation=None, outstanding=lambda: [], next_plan_no=lambda: 1)
    monkeypatch.setattr(orders, "live", lambda o: o)
    monkeypatch.setattr(steps, "plan_for", lambda *a: (_ for _ in ()).throw(RuntimeError("stop after planning")))
    ports = SimpleNamespace(orders=SimpleNamespace(get=lambda order_id: order))
    with pytest.raises(RuntimeError, match="stop after planning"):
        steps.allocate_order("ord_1", ports)
    assert [name for name, _ in recorded] == ["AllocationLatency"]


@pytest.mark.parametrize("env", [{"AWS_LAMBDA_FUNCTION_NAME": "x", "POWERTOOLS_METRICS_DISABLED": "true"},
                                 {"POWERTOOLS_METRICS_DISABLED": "false"}],
                         ids=["local stack (disabled)", "outside Lambda (CLI, tests)"])
def test_nothing_is_recorded_where_nobody_flushes_it(monkeypatch: pytest.MonkeyPatch, capsys, env) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    observability.metrics.clear_metrics()
    handler = _handler(*["created"] * 150)  # more than Powertools' 100 values that force a print
    handler({}, None)
    assert observability.metrics.metric_set == {}
    assert _emf(capsys.readouterr().out) == []


def test_the_local_stack_turns_metrics_off() -> None:
    source = (ROOT / "orderflow_local" / "stack.py").read_text()
    assert '"POWERTOOLS_METRICS_DISABLED": "true"' in source


def test_every_handler_flushes_its_metrics_and_every_workflow_step_reports_its_latency() -> None:
    from orderflow import asl

    workflow_steps = set(asl.FUNCTION_PLACEHOLDERS.values())
    assert workflow_steps == {"prepare", "fulfill"}
    handlers = sorted(ROOT.glob("functions/*/handler.py"))
    assert len(handlers) == 11
    for path in handlers:
        source = path.read_text()
        assert re.search(r"^@log_metrics\n(@step_latency\(\"\w+\"\)\n)?def lambda_handler",
                         source, re.M), path
        if path.parent.name in workflow_steps:
            assert f'@step_latency("{path.parent.name}")\ndef lambda_handler' in source, path


def test_the_metric_names_the_dashboard_uses_are_the_ones_emitted() -> None:
    assert set(observability.ORDER_EVENT_METRICS.values()) == {
        "OrdersCreated", "OrdersPaid", "OrdersCompleted", "OrdersNeedingAttention"}
    assert {"AllocationLatency", "StepLatency", "OrdersInNeedsAttention"} <= set(observability.METRIC_NAMES)
