"""The adapter that runs our handlers at moto's Lambda invoke (moto internals: keep this test)."""

import json

import pytest

from orderflow.adapters.aws import client
from orderflow.errors import UnknownSku
from orderflow_local import lambda_binding


@pytest.fixture
def bound(stack):
    yield
    lambda_binding._handlers.pop("test-echo", None)
    lambda_binding._handlers.pop("test-boom", None)


def test_invoke_runs_the_bound_handler_with_a_lambda_context(bound):
    seen = {}

    def echo(event, context):
        seen["name"] = context.function_name
        return {"got": event}

    lambda_binding.bind("test-echo", echo)
    resp = client("lambda").invoke(FunctionName="arn:aws:lambda:us-east-1:123456789012:function:test-echo",
                                   Payload=json.dumps({"order_id": "o1"}))
    assert "FunctionError" not in resp
    assert json.loads(resp["Payload"].read()) == {"got": {"order_id": "o1"}}
    assert seen["name"] == "test-echo"


def test_an_exception_is_reported_the_way_lambda_reports_it(bound):
    def boom(event, context):
        raise UnknownSku("unknown SKU(s): ZZZ")

    lambda_binding.bind("test-boom", boom)
    resp = client("lambda").invoke(FunctionName="test-boom", Payload=b"{}")
    assert resp["FunctionError"] == "Unhandled"
    body = json.loads(resp["Payload"].read())
    assert body["errorType"] == "UnknownSku"
    assert body["errorMessage"] == "unknown SKU(s): ZZZ"
