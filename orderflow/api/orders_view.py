"""Read-only order routes the console needs (included by orderflow.api.app): counts per status and the
workflow trace of an order (its Step Functions executions, state by state)."""

from __future__ import annotations

import os
from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from orderflow import config, order_search
from orderflow.api.common import ports as api_ports

router = Router()
#: The order routes' id rule (orderflow.api.openapi.ID_PATTERN).
ORDER_ID = r"^[A-Za-z0-9][A-Za-z0-9_\-]*$"


@router.get("/orders/counts")
def order_counts() -> dict:
    """How many orders each status has now (the console's tabs)."""
    counts = order_search.counts(api_ports())
    return {"counts": counts, "total": sum(counts.values())}


def _event(event: dict, started: Any) -> dict[str, Any]:
    from orderflow import trace

    details = trace._details(event)
    return {
        "id": event["id"],
        "type": event["type"],
        "at": event["timestamp"].isoformat(),
        "offset_s": round((event["timestamp"] - started).total_seconds(), 3),
        "state": details.get("name"),
        "error": details.get("error"),
        "cause": trace.summarize(details.get("cause"), 300) or None,
        "data": trace.summarize(details.get("output") or details.get("input"), 300) or None,
    }


def console_url(arn: str) -> str | None:
    """The execution in the Step Functions console (AWS only: the local stack has no console)."""
    if os.environ.get("AWS_ENDPOINT_URL") or config.AWS_ENDPOINT.get():
        return None
    region = arn.split(":")[3]
    return f"https://{region}.console.aws.amazon.com/states/home?region={region}#/v2/executions/details/{arn}"


@router.get("/orders/<order_id>/trace")
def order_trace(order_id: Annotated[str, Path(max_length=80, pattern=ORDER_ID)]) -> dict:
    """Every execution of the order (the first, then each redrive) with its history events."""
    from orderflow import trace
    from orderflow.adapters.aws import client
    from orderflow.errors import NotFound

    api_ports().orders.get(order_id)  # 404 for an order that does not exist
    arn = config.STATE_MACHINE_ARN.get()
    if not arn:
        raise NotFound("this deployment does not name its state machine (ORDERFLOW_STATE_MACHINE_ARN)")
    sfn = client("stepfunctions")
    try:
        runs = trace.fetch_all(sfn, arn, order_id)
    except NotFound:
        return {"order_id": order_id, "executions": []}
    out = []
    for execution, events in runs:
        started = execution["startDate"]
        out.append({
            "arn": execution["executionArn"], "name": execution["name"], "status": execution["status"],
            "started_at": started.isoformat(),
            "stopped_at": execution["stopDate"].isoformat() if execution.get("stopDate") else None,
            "console_url": console_url(execution["executionArn"]),
            "events": [_event(e, started) for e in events],
        })
    return {"order_id": order_id, "executions": out}


@router.get("/inventory")
def list_stock() -> dict:
    """Stock of every SKU in every warehouse (on hand, committed, available): the console's Stock screen.
    One scan of the inventory table: for a seller's screen, not a hot path."""
    by_sku = api_ports().inventory.all_levels()
    return {"levels": [level.model_dump(mode="json") for levels in by_sku.values() for level in levels]}
