"""The console's routes on AWS (``/console-api/...``, Cognito-authorized at API Gateway) reach the same API
function, which routes them exactly like the plain paths; its answers carry CORS headers for the console's
own origin only. On in-memory ports: no AWS, no moto."""

from __future__ import annotations

import json

import pytest

from orderflow.api import app as api_app
from orderflow.api.common import use_ports
from orderflow.models import Warehouse
from tests.unit.memory_ports import memory_ports

ORIGIN = "https://d111111abcdef8.cloudfront.net"
ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Boston", "postal_code": "02110", "country": "US"}


@pytest.fixture
def ports(monkeypatch):
    monkeypatch.setenv(api_app.CONSOLE_ORIGIN_ENV, ORIGIN)
    ports = memory_ports(Warehouse(warehouse_id="east", name="East", priority=1))
    ports.inventory.set_on_hand("MUG", "east", 5)
    use_ports(ports)
    yield ports
    use_ports(None)


def call(method: str, path: str, body: dict | None = None, origin: str | None = None) -> tuple[int, dict, dict]:
    """One API Gateway REST proxy event, as API Gateway sends it for ``{proxy+}`` (path with the prefix)."""
    headers = {"Content-Type": "application/json"} if body is not None else {}
    if origin:
        headers["Origin"] = origin
    event = {
        "httpMethod": method, "path": path, "resource": "/console-api/{proxy+}", "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()}, "queryStringParameters": None,
        "multiValueQueryStringParameters": None, "pathParameters": {"proxy": path.lstrip("/")},
        "requestContext": {"path": f"/dev{path}", "stage": "dev", "httpMethod": method, "resourcePath": path},
        "body": json.dumps(body) if body is not None else None, "isBase64Encoded": False,
    }
    result = api_app.resolve(event, None)
    out_headers = {k: ", ".join(v) for k, v in (result.get("multiValueHeaders") or {}).items()}
    out_headers.update(result.get("headers") or {})
    return result["statusCode"], out_headers, json.loads(result["body"] or "null")


def test_console_paths_are_the_plain_paths_without_the_prefix():
    assert api_app.console_path("/console-api/orders/ord_1") == "/orders/ord_1"
    assert api_app.console_path("/console-api") == "/"
    assert api_app.console_path("/console-api/") == "/"
    assert api_app.console_path("/orders") is None
    assert api_app.console_path("/console-apiorders") is None  # only the whole segment is the prefix


def test_a_console_route_answers_what_its_plain_path_answers(ports):
    assert call("GET", "/console-api/warehouses")[2] == call("GET", "/warehouses")[2]
    status, headers, created = call("POST", "/console-api/orders", {
        "lines": [{"sku": "MUG", "quantity": 1, "unit_price": "9.50"}], "shipping_address": ADDRESS})
    assert status == 201, created
    assert headers["Location"] == f"/orders/{created['order_id']}"
    assert call("GET", f"/console-api/orders/{created['order_id']}")[2] == call(
        "GET", f"/orders/{created['order_id']}")[2]
    assert call("GET", "/console-api/health")[2]["status"] == "ok"


def test_a_console_route_keeps_the_apis_errors(ports):
    status, _, body = call("POST", "/console-api/orders", {"lines": [], "shipping_address": ADDRESS})
    assert status == 422 and body["error"]["code"] == "validation_error"
    status, headers, body = call("DELETE", "/console-api/health")
    assert status == 405 and headers["Allow"] == "GET"
    status, _, body = call("GET", "/console-api/nowhere")
    assert status == 404 and body["error"]["message"] == "no route GET /nowhere"


def test_cors_headers_for_the_consoles_origin_on_console_routes_only(ports):
    _, headers, _ = call("GET", "/console-api/warehouses", origin=ORIGIN)
    assert headers["Access-Control-Allow-Origin"] == ORIGIN
    assert headers["Vary"] == "Origin"
    assert "Location" in headers["Access-Control-Expose-Headers"]
    _, headers, _ = call("GET", "/console-api/warehouses", origin="https://evil.example")
    assert "Access-Control-Allow-Origin" not in headers
    _, headers, _ = call("GET", "/warehouses", origin=ORIGIN)  # machine callers' routes: no CORS
    assert "Access-Control-Allow-Origin" not in headers


def test_no_cors_headers_when_no_console_origin_is_configured(ports, monkeypatch):
    monkeypatch.delenv(api_app.CONSOLE_ORIGIN_ENV)
    _, headers, _ = call("GET", "/console-api/warehouses", origin=ORIGIN)
    assert "Access-Control-Allow-Origin" not in headers
