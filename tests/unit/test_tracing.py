"""The handlers' tracer: Powertools' Tracer (and the X-Ray SDK) only when tracing is on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from orderflow import observability
from orderflow.observability import LazyTracer, tracing_enabled


def handler(event, context):  # noqa: ANN001, ANN201
    return {"ok": event}


@pytest.mark.parametrize(("function_name", "disabled", "on"), [
    (None, None, False),           # not inside Lambda (CLI, tests, the local stack)
    ("orderflow-allocate", "true", False),
    ("orderflow-allocate", "1", False),
    ("orderflow-allocate", None, True),
    ("orderflow-allocate", "false", True),
])
def test_tracing_is_on_inside_lambda_unless_powertools_says_not(monkeypatch, function_name, disabled, on):
    for name, value in (("AWS_LAMBDA_FUNCTION_NAME", function_name), ("POWERTOOLS_TRACE_DISABLED", disabled)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert tracing_enabled() is on


def test_with_tracing_off_the_handler_is_handed_back_and_nothing_is_built(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    tracer = LazyTracer("orderflow")
    assert tracer.capture_lambda_handler(handler) is handler
    assert tracer.capture_lambda_handler(capture_response=False)(handler) is handler
    assert tracer._tracer is None


def test_with_tracing_on_powertools_wraps_the_handler(monkeypatch):
    built = []

    class FakeTracer:
        def __init__(self, service):  # noqa: ANN001
            built.append(service)

        def capture_lambda_handler(self, lambda_handler=None, **options):  # noqa: ANN001, ANN201
            def wrap(fn):  # noqa: ANN001, ANN202
                return lambda event, context: ("traced", options, fn(event, context))
            return wrap(lambda_handler) if lambda_handler is not None else wrap

        def put_annotation(self, key, value):  # noqa: ANN001, ANN201
            return (key, value)

    import aws_lambda_powertools

    monkeypatch.setattr(aws_lambda_powertools, "Tracer", FakeTracer)
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "orderflow-allocate")
    monkeypatch.delenv("POWERTOOLS_TRACE_DISABLED", raising=False)
    tracer = LazyTracer("orderflow")
    wrapped = tracer.capture_lambda_handler(capture_response=False)(handler)
    assert wrapped(1, None) == ("traced", {"capture_response": False}, {"ok": 1})
    assert tracer.put_annotation("order_id", "ord_1") == ("order_id", "ord_1")  # the rest of Powertools' API
    assert built == ["orderflow"]  # one Tracer, built on first use


def test_a_handler_module_does_not_load_the_xray_sdk_when_tracing_is_off():
    probe = ("import sys, functions.api.handler, functions.prepare.handler; "
             "print(sorted({m.split('.')[0] for m in sys.modules if m.startswith('aws_xray_sdk')}))")
    env = {"PATH": "/usr/bin:/bin", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_LAMBDA_FUNCTION_NAME": "orderflow-api"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[2], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
    assert isinstance(observability.tracer, LazyTracer)
