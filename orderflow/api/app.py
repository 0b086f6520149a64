"""Routes of the orderflow HTTP API (see docs/api.md and ``GET /openapi.json``).

Every error answers one JSON shape, ``{"error": {"code", "message", "details"}}``, with a 4xx for
the caller's mistakes; a 500 only ever means a bug or an outage on our side.
"""

from __future__ import annotations

import functools
import importlib
import json
import os
import re
import threading
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Header, Path, Query
from pydantic import Field

from orderflow import __version__, config, service
from orderflow.api import common
from orderflow.api.common import json_response
from orderflow.api.openapi import ID_PATTERN, amend
from orderflow.errors import NotFound, OrderflowError
from orderflow.models import Count, Identifier, Model, NewOrder, OrderStatus, Sku, StockLevel, Warehouse
from orderflow.observability import logger

app = APIGatewayRestResolver(enable_validation=True)

ports, use_ports = common.ports, common.use_ports  # the routers' shared ports (orderflow.api.common)


def error(status: int, code: str, message: str, details: Any = None):
    return json_response(status, {"error": {"code": code, "message": message, "details": details or {}}})


# -- errors ------------------------------------------------------------------------------------

@app.exception_handler(RequestValidationError)
def _invalid_request(exc: RequestValidationError):
    problems = []
    for err in exc.errors():
        loc = [str(part) for part in err.get("loc", ())]
        problems.append({"field": ".".join(loc), "message": err.get("msg", "invalid"), "type": err.get("type")})
    first = problems[0] if problems else {"field": "", "message": "invalid request"}
    return error(422, "validation_error", f"{first['field']}: {first['message']}", {"errors": problems})


@app.exception_handler(OrderflowError)
def _domain_error(exc: OrderflowError):
    if exc.http_status >= 500:
        logger.warning("request failed, retry advised", error=exc.code)
    return error(exc.http_status, exc.code, exc.message, exc.details)


@app.exception_handler(json.JSONDecodeError)
def _bad_json(exc: json.JSONDecodeError):
    return error(400, "invalid_json", f"the body is not valid JSON: {exc.msg} at position {exc.pos}",
                 {"field": "body"})


@app.exception_handler(UnicodeDecodeError)
def _bad_encoding(exc: UnicodeDecodeError):
    return error(400, "invalid_json", "the body is not UTF-8 text; send JSON", {"field": "body"})


@app.not_found
def _no_route(exc: NotFoundError):
    method, path = app.current_event.http_method, app.current_event.path
    allowed = sorted({r.method for r in app._static_routes + app._dynamic_routes if r.rule.match(path)})
    if allowed:  # the path is ours, the method is not
        response = error(405, "method_not_allowed", f"{method} {path} is not served; it answers {', '.join(allowed)}")
        response.headers["Allow"] = ", ".join(allowed)
        return response
    return error(404, "no_such_route", f"no route {method} {path}")


@app.exception_handler(Exception)
def _unexpected(exc: Exception):
    logger.exception("unexpected error")
    return error(500, "internal_error", "something went wrong on our side; it has been logged")


# -- health and the API's own description -------------------------------------------------------

OPENAPI = {
    "title": "orderflow API",
    "version": __version__,
    "description": "Sales orders from creation to completion: warehouses, stock, orders, fulfilment. Every "
                   "route but /health, /openapi.json, /docs and /webhooks needs `Authorization: Bearer <token>` "
                   "(the local stack) or SigV4 (AWS_IAM on API Gateway). Errors answer "
                   '{"error": {"code", "message", "details"}}.',
}


def _security() -> dict:
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    return {"security_schemes": {"bearerAuth": HTTPBearer()}, "security": [{"bearerAuth": []}]}


#: Where Powertools' Swagger UI answers. Its route is added on the first request for it
#: (:func:`include_routes_for`): enabling it imports Powertools' OpenAPI models, which no other route needs.
DOCS_PATH = "/docs"

_document: str | None = None


@app.get("/openapi.json", include_in_schema=False)
def openapi_document():
    """The generated document with what orderflow.api.openapi adds (security, every status, rules)."""
    global _document
    if _document is None:
        include_every_route()
        _document = json.dumps(amend(json.loads(app.get_openapi_json_schema(**OPENAPI, **_security()))))
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=_document)


@app.get("/health")
def health() -> dict:
    return {"status": "ok", "version": __version__}


# -- warehouses and stock ----------------------------------------------------------------------

@app.post("/warehouses")
def create_warehouse(warehouse: Warehouse):
    ports().settings.put_warehouse(warehouse)
    return json_response(201, warehouse.model_dump(mode="json"))


@app.get("/warehouses")
def list_warehouses() -> dict:
    warehouses = sorted(ports().settings.warehouses(), key=lambda w: (w.priority, w.warehouse_id))
    return {"warehouses": [w.model_dump(mode="json") for w in warehouses]}


class StockIn(Model):
    on_hand: Count(ge=0, le=10_000_000)
    reason: Annotated[str, Field(max_length=200)] = "count"


@app.put("/inventory/<sku>/<warehouse_id>")
def set_stock(sku: Annotated[Sku, Path()], warehouse_id: Annotated[Identifier, Path()], stock: StockIn) -> dict:
    p = ports()
    p.settings.warehouse(warehouse_id)  # 404 for a warehouse that does not exist
    level = p.inventory.set_on_hand(sku, warehouse_id, stock.on_hand, stock.reason)
    service.release_waiting_orders(p)  # a count may bring stock that waiting orders need
    return level.model_dump(mode="json")


@app.get("/inventory/<sku>")
def get_stock(sku: Annotated[Sku, Path()]) -> dict:
    p = ports()
    levels = p.inventory.levels(sku)
    if not levels:
        raise NotFound(f"no stock recorded for SKU {sku}", sku=sku)
    totals = StockLevel(sku=sku, warehouse_id="all", on_hand=sum(lv.on_hand for lv in levels),
                        committed=sum(lv.committed for lv in levels))
    return {"sku": sku, "levels": [lv.model_dump(mode="json") for lv in levels],
            "totals": totals.model_dump(mode="json", exclude={"sku", "warehouse_id"}),
            "ledger": p.inventory.ledger_for(sku)}


# -- orders ------------------------------------------------------------------------------------

@app.post("/orders")
def create_order(order: NewOrder, idempotency_key: Annotated[
        str | None, Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
                           description="Same key and body: the same order and answer; another body: 422")] = None):
    if idempotency_key:
        from orderflow.adapters.idempotency import IdempotencyKeys

        created_order, status, replayed = service.create_order_once(order, ports(), idempotency_key,
                                                                   IdempotencyKeys())
        return json_response(status, created_order.public(), headers={
            "Location": f"/orders/{created_order.order_id}", "Idempotent-Replayed": str(replayed).lower()})
    created_order, created = service.create_order(order, ports())
    return json_response(201 if created else 200, created_order.public(),
                 headers={"Location": f"/orders/{created_order.order_id}"})


@app.get("/orders/<order_id>")
def get_order(order_id: Annotated[str, Path(max_length=80, pattern=ID_PATTERN)]) -> dict:
    return ports().orders.get(order_id).public()


@app.get("/orders")
def list_orders(status: Annotated[OrderStatus | None, Query()] = None,
                limit: Annotated[int, Query(ge=1, le=200)] = 50,
                q: Annotated[str | None, Query(max_length=200, description=(
                    "Order id, channel order id (external id) or SKU (exact, any case), or words of the "
                    "customer's or ship-to name"))] = None,
                next_token: Annotated[str | None, Query(alias="next", max_length=400, description=(
                    "The `next` of the previous page"))] = None) -> dict:
    """Newest first; `next` is null on the last page. A search reads at most a bounded number of orders
    per request (`scanned`) and may answer fewer than `limit` with a `next` to go on."""
    from orderflow import order_search

    page = order_search.find_orders(ports(), status=status, query=q, limit=limit, token=next_token)
    return {"orders": [o.public() for o in page.orders], "next": page.next, "scanned": page.scanned}


@app.post("/orders/<order_id>/tracking")
def add_tracking(order_id: Annotated[str, Path(max_length=80, pattern=ID_PATTERN)], tracking: service.TrackingIn):
    order = service.add_tracking(order_id, tracking, ports())
    return json_response(202, order.public())


class CancelIn(Model):
    reason: Annotated[str, Field(min_length=1, max_length=500)] = "cancelled by the seller"


@app.post("/orders/<order_id>/cancel")
def cancel(order_id: Annotated[str, Path(max_length=80, pattern=ID_PATTERN)], body: CancelIn | None = None):
    order = service.cancel_order(order_id, ports(), reason=(body or CancelIn()).reason)
    return order.public()


class RedriveIn(Model):
    reason: Annotated[str, Field(min_length=1, max_length=500)] = "redriven by the seller"


@app.post("/orders/<order_id>/redrive")
def redrive(order_id: Annotated[str, Path(max_length=80, pattern=ID_PATTERN)], body: RedriveIn | None = None):
    order = service.redrive_order(order_id, ports(), reason=(body or RedriveIn()).reason)
    return json_response(202, order.public())


@app.post("/orders/<order_id>/complete")
def complete(order_id: Annotated[str, Path(max_length=80, pattern=ID_PATTERN)]):
    order = service.complete_manually(order_id, ports())
    return json_response(202, order.public())


# -- the routers, included when a request first needs one -------------------------------------------

#: Each router's module and the paths of its routes (Powertools rules). A router is included on the first
#: request whose path one of its rules matches, so a cold start pays for the routes above only, and a
#: request for one router's routes for that router alone: the channel clients and httpx, the SFTP
#: suppliers, the carriers and FBA load in the functions' containers that serve their routes.
#: tests/unit/test_api_routers.py holds this table to the routers' real routes.
ROUTERS: dict[str, tuple[str, ...]] = {
    "orderflow.api.stock": (
        "/inventory/<sku>/<warehouse_id>/adjustments", "/inventory/<sku>/<warehouse_id>/shards",
        "/settings/allocation", "/reorder-rules",
        "/reorder-rules/<sku>", "/purchase-orders", "/purchase-orders/<po_id>", "/purchase-orders/<po_id>/submit",
        "/purchase-orders/<po_id>/receive"),
    "orderflow.api.channels": (
        "/channels", "/channels/<channel_id>", "/channels/<channel_id>/import", "/webhooks/<channel_id>"),
    "orderflow.api.labels": (
        "/carriers", "/carriers/<carrier_id>", "/orders/<order_id>/labels", "/orders/<order_id>/labels/<shipment_id>"),
    "orderflow.api.suppliers": ("/suppliers", "/suppliers/<warehouse_id>", "/suppliers/<warehouse_id>/poll"),
    "orderflow.api.fba": ("/fba", "/fba/<warehouse_id>", "/fba/<warehouse_id>/poll"),
    "orderflow.api.orders_view": ("/orders/counts", "/orders/<order_id>/trace", "/inventory"),
}

_included: set[str] = set()
_including = threading.Lock()


def _include(module: str) -> None:
    if module in _included:
        return
    with _including:  # the local stack serves requests on many threads of one process
        if module not in _included:
            app.include_router(importlib.import_module(module).router)
            _included.add(module)


def _enable_docs() -> None:
    if DOCS_PATH in _included:
        return
    include_every_route()  # the UI shows the whole document
    with _including:
        if DOCS_PATH not in _included:
            app.enable_swagger(path=DOCS_PATH, **OPENAPI, **_security())
            _included.add(DOCS_PATH)


@functools.cache
def _router_rules() -> tuple[tuple[str, tuple[re.Pattern, ...]], ...]:
    """ROUTERS' rules as patterns; a parameter matches any one path segment (what Powertools matches and more)."""
    return tuple((module, tuple(re.compile("^" + re.sub(r"<\w+>", "[^/]+", rule) + "$") for rule in rules))
                 for module, rules in ROUTERS.items())


def include_every_route() -> None:
    """Include every router (in the table's order): the OpenAPI document names every route."""
    for module in ROUTERS:
        _include(module)


def include_routes_for(path: str) -> None:
    """Include the routers (and the docs route) that may serve ``path``, before it is resolved."""
    if path == DOCS_PATH:
        _enable_docs()
        return
    for module, rules in _router_rules():
        if module not in _included and any(rule.match(path) for rule in rules):
            _include(module)


#: The operator console's routes on AWS: the same API under this prefix, authorized by the console's Cognito
#: user pool at API Gateway instead of SigV4 (infra.constructs.api.Api.add_console_routes).
CONSOLE_PREFIX = "/console-api"
#: The console's origin (its CloudFront URL): answers on the console's routes to it carry CORS headers.
CONSOLE_ORIGIN_ENV = config.CONSOLE_ORIGIN.name


def console_path(path: str) -> str | None:
    """The plain path a console route stands for (``/console-api/orders`` -> ``/orders``), else None."""
    if path == CONSOLE_PREFIX or path.startswith(CONSOLE_PREFIX + "/"):
        return path[len(CONSOLE_PREFIX):] or "/"
    return None


def _header(headers: dict, name: str) -> str | None:
    return next((v for k, v in headers.items() if k.lower() == name.lower()), None)


def _allow_console_origin(result: dict, origin: str | None) -> dict:
    """CORS headers on a console answer, for the console's own origin only (preflights are answered by
    API Gateway; this covers the function's answers, which a proxy integration passes through as they are)."""
    allowed = os.environ.get(CONSOLE_ORIGIN_ENV)
    if not origin or not allowed or origin != allowed:
        return result
    cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
            "Access-Control-Expose-Headers": "Location, Idempotent-Replayed, Content-Disposition"}
    if result.get("multiValueHeaders") is not None:
        result["multiValueHeaders"].update({k: [v] for k, v in cors.items()})
    else:
        result["headers"] = {**(result.get("headers") or {}), **cors}
    return result


def resolve(event: dict, context: Any) -> dict:
    """Serve one API Gateway proxy event. The API speaks JSON only, so a JSON body sent with a
    form content type (``curl -d`` does that) is read as the JSON it is. A console route
    (``/console-api/...``) is routed exactly like its plain path."""
    headers = event.get("headers") or {}
    plain = console_path(event.get("path") or "")
    if plain is not None:
        event = {**event, "path": plain}
    ctype = _header(headers, "content-type") or ""
    body = (event.get("body") or "").lstrip()
    if body[:1] in ("{", "[") and "json" not in ctype.lower():
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
        headers["Content-Type"] = "application/json"
        event = {**event, "headers": headers}
        if event.get("multiValueHeaders"):
            mv = {k: v for k, v in event["multiValueHeaders"].items() if k.lower() != "content-type"}
            event["multiValueHeaders"] = {**mv, "Content-Type": ["application/json"]}
    include_routes_for(event.get("path") or "")
    result = app.resolve(event, context)
    if plain is not None:
        result = _allow_console_origin(result, _header(headers, "origin"))
    return result
