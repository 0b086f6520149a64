"""The published OpenAPI document (``GET /openapi.json``) names what the operations can answer.

Each table of ``orderflow.api.openapi`` names real operations (a renamed route would otherwise drop its
statuses silently), and the operations that call a channel, carrier, supplier or Amazon while the caller
waits document the outside system's answers (429, 502), which the fuzz test holds them to."""

from __future__ import annotations

import json

import pytest

from orderflow.api import openapi


@pytest.fixture(scope="module")
def document() -> dict:
    from orderflow.api.app import OPENAPI, _security, app, include_every_route

    include_every_route()  # the routers are otherwise included on their first request
    return openapi.amend(json.loads(app.get_openapi_json_schema(**OPENAPI, **_security())))


@pytest.mark.parametrize("table", ["PUBLIC", "SUCCESS", "UPSTREAM", "NOT_FOUND_FROM_BODY"])
def test_every_table_names_real_operations(document, table):
    missing = [(method, path) for method, path in getattr(openapi, table)
               if method not in document["paths"].get(path, {})]
    assert not missing, f"{table} names operations the API does not have: {missing}"


def test_operations_that_call_outside_document_its_answers(document):
    for method, path in openapi.UPSTREAM:
        responses = document["paths"][path][method]["responses"]
        assert {"429", "502", "503"} <= set(responses), (method, path, sorted(responses))
    local = document["paths"]["/warehouses"]["get"]["responses"]
    assert "502" not in local and "429" not in local
