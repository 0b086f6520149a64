"""The API includes each router on the first request that may need it (orderflow.api.app.ROUTERS), so a
cold start loads neither the channel clients nor the suppliers, carriers, FBA or Powertools' OpenAPI
models; every route still answers on its first request, and the document names them all."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

from orderflow.api import app as api_app
from orderflow.api.common import use_ports
from orderflow.models import Warehouse
from tests.unit.memory_ports import memory_ports

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("module", sorted(api_app.ROUTERS))
def test_the_table_names_each_routers_routes(module):
    router = importlib.import_module(module).router
    assert set(api_app.ROUTERS[module]) == {route[0] for route in router._routes}


@pytest.mark.parametrize("module", sorted(api_app.ROUTERS))
def test_each_route_of_a_router_includes_it(module):
    """A request for any rule of the table (a parameter filled in) names the router's module."""
    for rule in api_app.ROUTERS[module]:
        path = "/".join("x-1" if part.startswith("<") else part for part in rule.split("/"))
        needed = [m for m, rules in api_app._router_rules() if any(r.match(path) for r in rules)]
        assert module in needed, (rule, path, needed)


def test_plain_routes_need_no_router():
    for path in ("/health", "/warehouses", "/orders", "/orders/ord_1", "/orders/ord_1/cancel", "/inventory/MUG",
                 "/inventory/MUG/east"):
        assert not [m for m, rules in api_app._router_rules() if any(r.match(path) for r in rules)], path


def _probe(code: str) -> str:
    env = {"PATH": "/usr/bin:/bin", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True)
    return out.stdout.strip()


def test_the_api_handler_loads_no_router_nor_openapi_models_at_import():
    loaded = json.loads(_probe(
        "import json, sys, functions.api.handler; "
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith(('orderflow.api.', 'httpx', 'paramiko', "
        "'aws_lambda_powertools.event_handler.openapi.models')))))"))
    assert not set(loaded) & {*api_app.ROUTERS, "httpx", "paramiko",
                              "aws_lambda_powertools.event_handler.openapi.models"}, loaded


def _event(method: str, path: str) -> dict:
    return {"httpMethod": method, "path": path, "resource": "/{proxy+}", "headers": {}, "multiValueHeaders": {},
            "queryStringParameters": None, "multiValueQueryStringParameters": None,
            "pathParameters": {"proxy": path.lstrip("/")},
            "requestContext": {"path": f"/dev{path}", "stage": "dev", "httpMethod": method, "resourcePath": path},
            "body": None, "isBase64Encoded": False}


def test_a_routers_route_and_the_docs_answer_on_their_first_request():
    """In a fresh interpreter: GET /orders/counts (a router's static route beside the app's
    /orders/<order_id>) and GET /docs answer at once."""
    code = f"""
import json
from orderflow.api import app as api_app
from orderflow.api.common import use_ports
from orderflow.models import Warehouse
from tests.unit.memory_ports import memory_ports
use_ports(memory_ports(Warehouse(warehouse_id="east", name="East", priority=1)))
counts = api_app.resolve({_event("GET", "/orders/counts")!r}, None)
docs = api_app.resolve({_event("GET", "/docs")!r}, None)
suppliers = api_app.resolve({_event("DELETE", "/suppliers")!r}, None)
print(json.dumps([counts["statusCode"], docs["statusCode"], "swagger" in docs["body"].lower(),
                  suppliers["statusCode"]]))
"""
    assert json.loads(_probe(code)) == [200, 200, True, 405]


@pytest.fixture
def ports():
    ports = memory_ports(Warehouse(warehouse_id="east", name="East", priority=1))
    use_ports(ports)
    yield ports
    use_ports(None)


def test_the_document_names_every_routers_routes(ports):
    result = api_app.resolve(_event("GET", "/openapi.json"), None)
    paths = json.loads(result["body"])["paths"]
    for rules in api_app.ROUTERS.values():
        for rule in rules:
            assert rule.replace("<", "{").replace(">", "}") in paths, rule
