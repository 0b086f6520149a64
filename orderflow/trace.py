"""`orderflow trace ORDER_ID`: the order's execution history, state by state.

It only uses the Step Functions API (``DescribeExecution``, ``GetExecutionHistory``), so it works
the same against the local stack and against AWS: boto3 decides where to go.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from orderflow.errors import NotFound

_TOKEN = re.compile(r'("task_?[Tt]oken"\s*:\s*")[^"]+(")')


def summarize(payload: str | None, width: int = 110) -> str:
    """One line of JSON, task tokens masked, cut to ``width`` characters."""
    if payload is None:
        return ""
    try:
        text = json.dumps(json.loads(payload), separators=(",", ":"), sort_keys=False)
    except ValueError:
        text = payload
    text = _TOKEN.sub(r"\1…\2", text)
    return text if len(text) <= width else text[: width - 1] + "…"


def find_state_machine(sfn: Any) -> str:
    matches = []
    for page in sfn.get_paginator("list_state_machines").paginate():
        for machine in page["stateMachines"]:
            name = machine["name"].lower().replace("_", "-")
            if "order-workflow" in name or "orderworkflow" in name:
                matches.append(machine["stateMachineArn"])
    if len(matches) != 1:
        raise NotFound(
            f"found {len(matches)} orderflow state machines; pass --state-machine-arn "
            "or set ORDERFLOW_STATE_MACHINE_ARN", matches=matches)
    return matches[0]


def execution_arn(state_machine_arn: str, order_id: str, attempt: int = 1) -> str:
    from orderflow.adapters.stepfunctions import execution_name

    return f"{state_machine_arn.replace(':stateMachine:', ':execution:')}:{execution_name(order_id, attempt)}"


def fetch(sfn: Any, state_machine_arn: str, order_id: str, attempt: int = 1) -> tuple[dict, list[dict]]:
    arn = execution_arn(state_machine_arn, order_id, attempt)
    try:
        execution = sfn.describe_execution(executionArn=arn)
    except sfn.exceptions.ExecutionDoesNotExist as err:
        raise NotFound(f"no execution for order {order_id} ({arn})", order_id=order_id) from err
    events: list[dict] = []
    for page in sfn.get_paginator("get_execution_history").paginate(executionArn=arn):
        events.extend(page["events"])
    return execution, events


def fetch_all(sfn: Any, state_machine_arn: str, order_id: str) -> list[tuple[dict, list[dict]]]:
    """Every execution of the order: the first, then each redrive (``-r2``, ``-r3``...)."""
    runs = [fetch(sfn, state_machine_arn, order_id)]
    attempt = 2
    while True:
        try:
            runs.append(fetch(sfn, state_machine_arn, order_id, attempt))
        except NotFound:
            return runs
        attempt += 1


def _details(event: dict) -> dict:
    for key, value in event.items():
        if key.endswith("EventDetails") and isinstance(value, dict):
            return value
    return {}


def _offset(start: datetime, ts: datetime) -> str:
    return f"+{(ts - start).total_seconds():7.3f}s"


def changes(before: str | None, after: str | None) -> str | None:
    """What a state added to its input: the keys whose values are new or changed."""
    try:
        old, new = json.loads(before or "null"), json.loads(after or "null")
    except ValueError:
        return after
    if isinstance(old, dict) and isinstance(new, dict):
        return json.dumps({k: v for k, v in new.items() if old.get(k) != v})
    return after


def render(order_id: str, execution: dict, events: list[dict], width: int = 110) -> list[str]:
    started = execution["startDate"]
    stopped = execution.get("stopDate")
    took = f", {(stopped - started).total_seconds():.2f}s" if stopped else ", still running"
    lines = [f"order {order_id}: execution {execution['status']} (started {started.isoformat()}{took})",
             f"  {execution['executionArn']}"]
    inputs: dict[str, str | None] = {}
    for event in events:
        kind = event["type"]
        details = _details(event)
        at = _offset(started, event["timestamp"])
        if kind.endswith("StateEntered"):
            inputs[details.get("name", "?")] = details.get("input")
            lines.append(f"{at}  ▶ {details.get('name', '?'):<24} in  {summarize(details.get('input'), width)}")
        elif kind.endswith("StateExited"):
            added = changes(inputs.get(details.get("name", "?")), details.get("output"))
            lines.append(f"{at}  ■ {details.get('name', '?'):<24} out {summarize(added, width)}")
        elif kind.endswith("Failed") or kind.endswith("TimedOut") or kind == "ExecutionAborted":
            cause = details.get("cause")
            try:
                cause = json.loads(cause).get("errorMessage", cause) if cause else ""
            except (ValueError, AttributeError):
                pass
            lines.append(f"{at}  ✗ {kind:<24} {details.get('error', '')}: {summarize(str(cause), width)}")
        elif kind == "ExecutionSucceeded":
            lines.append(f"{at}  ✓ execution succeeded")
        elif kind == "TaskSubmitted" and "waitForTaskToken" in details.get("resource", ""):
            lines.append(f"{at}  … waiting for stock or the shipments (task token kept on the order)")
    return lines
