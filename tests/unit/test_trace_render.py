import json
from datetime import UTC, datetime, timedelta

from orderflow.trace import execution_arn, render, summarize

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def ev(kind, seconds, **details):
    key = {"StateEntered": "stateEnteredEventDetails", "StateExited": "stateExitedEventDetails",
           "TaskFailed": "taskFailedEventDetails", "TaskSubmitted": "taskSubmittedEventDetails"}.get(
        kind.removeprefix("Task") if kind.endswith(("Entered", "Exited")) else kind)
    event = {"type": kind, "timestamp": T0 + timedelta(seconds=seconds), "id": 1}
    if key:
        event[key] = details
    return event


def test_render_shows_states_in_and_out_failures_and_masks_tokens():
    execution = {"status": "FAILED", "startDate": T0, "stopDate": T0 + timedelta(seconds=2),
                 "executionArn": "arn:aws:states:r:1:execution:sm:ord_1"}
    events = [
        ev("ExecutionStarted", 0),
        ev("TaskStateEntered", 0.01, name="Allocate", input=json.dumps({"order_id": "ord_1"})),
        ev("TaskFailed", 0.5, error="UnknownSku", cause=json.dumps({"errorMessage": "unknown SKU(s): Z"})),
        ev("TaskStateEntered", 1, name="Wait", input=json.dumps({"task_token": "AAAA-secret"})),
        ev("TaskStateExited", 1.5, name="Allocate",
           output=json.dumps({"order_id": "ord_1", "allocation": {"warehouses": ["east"]}})),
    ]
    text = "\n".join(render("ord_1", execution, events))
    assert "execution FAILED" in text and "2.00s" in text
    assert "▶ Allocate" in text
    assert "UnknownSku: unknown SKU(s): Z" in text
    assert "AAAA-secret" not in text
    # what a state added, not the whole state again
    assert '■ Allocate' in text and '{"allocation":{"warehouses":["east"]}}' in text


def test_summaries_are_cut_to_width():
    assert len(summarize(json.dumps({"x": "y" * 500}), width=40)) == 40


def test_execution_arn_is_named_after_the_order():
    sm = "arn:aws:states:us-east-1:123:stateMachine:orderflow-order-workflow"
    assert execution_arn(sm, "ord_9") == "arn:aws:states:us-east-1:123:execution:orderflow-order-workflow:ord_9"
