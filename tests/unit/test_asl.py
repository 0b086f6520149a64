"""Static checks of the state machine definition (it runs for real in tests/integration)."""

import json

from orderflow import asl
from orderflow.errors import BUSINESS_ERROR_NAMES

DEFINITION = json.loads(asl.read())


def all_states(states=None):
    for name, state in (states or DEFINITION["States"]).items():
        yield name, state
        inner = state.get("ItemProcessor") or state.get("Iterator")
        if inner:
            yield from all_states(inner["States"])


def test_placeholders_are_exactly_the_functions_and_tables_we_fill():
    assert asl.placeholders(asl.read()) == (set(asl.FUNCTION_PLACEHOLDERS) | set(asl.TABLE_PLACEHOLDERS)
                                            | set(asl.QUEUE_PLACEHOLDERS))


#: What each step can raise (orderflow/workflow/steps.py, orderflow/rules/allocation.py): its Catch names
#: exactly these business errors, no more.
RAISES = {
    # a reservation that no longer fits is StockMoved: retried, and the retry plans again
    "Prepare": {"NoWarehouseCanAllocate", "UnknownSku", "UnsupportedFulfillmentRoute"},
    "AwaitFulfilment": set(),
    "CheckOverdue": {"FulfillerSlaExpired"},
}


def test_every_step_ends_closed_orders_and_catches_only_the_business_errors_it_can_raise():
    steps = {n: s for n, s in DEFINITION["States"].items()
             if s["Type"] in {"Task", "Map"} and n != "RecordNeedsAttention"}
    assert set(steps) == set(RAISES)
    assert set().union(*RAISES.values()) == set(BUSINESS_ERROR_NAMES) - {"InsufficientStock"}
    for name, state in steps.items():
        catchers = {tuple(sorted(c["ErrorEquals"])): c["Next"] for c in state["Catch"]}
        assert catchers[("OrderCancelled",)] == "Cancelled", name
        assert catchers[("OrderCompletedOnChannel",)] == "CompletedOnChannel", name
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
        business = {e for c in state["Catch"] if c["Next"] == "ExplainBusinessError" for e in c["ErrorEquals"]}
        assert business == RAISES[name], name


def test_an_order_that_ships_costs_two_state_transitions():
    """Standard workflows are billed per state transition: Prepare, then the one wait, which ends it."""
    states = DEFINITION["States"]
    assert DEFINITION["StartAt"] == "Prepare" and states["Prepare"]["Next"] == "AwaitFulfilment"
    assert states["AwaitFulfilment"].get("End") is True
    assert not [n for n, s in states.items() if s["Type"] in {"Map", "Choice", "Parallel"}]


def test_a_cancelled_or_channel_completed_order_is_not_a_failed_execution():
    states = DEFINITION["States"]
    for name in ("Cancelled", "CompletedOnChannel", "Superseded"):
        assert states[name]["Type"] == "Succeed", name
    assert states["FulfillerRejected"]["Type"] == "Fail"  # the order needs attention: that one did fail
    catchers = {c["ErrorEquals"][0]: c["Next"] for c in states["AwaitFulfilment"]["Catch"]}
    assert catchers["FulfillerRejected"] == "FulfillerRejected" and catchers["ExecutionSuperseded"] == "Superseded"


def test_the_wait_lasts_until_the_nearest_sla_then_an_overdue_shipment_needs_attention():
    states = DEFINITION["States"]
    wait = states["AwaitFulfilment"]
    assert wait["Resource"] == "arn:aws:states:::lambda:invoke.waitForTaskToken"
    assert wait["TimeoutSecondsPath"] == "$.prepared.result.timeout_seconds"
    catchers = {c["ErrorEquals"][0]: c for c in wait["Catch"]}
    assert catchers["States.Timeout"]["Next"] == "CheckOverdue"
    check = states["CheckOverdue"]
    assert check["ResultPath"] == "$.prepared" and check["Next"] == "AwaitFulfilment"


def test_stock_that_arrived_or_moved_is_planned_again():
    wait = {c["ErrorEquals"][0]: c for c in DEFINITION["States"]["AwaitFulfilment"]["Catch"]}
    assert wait["PlanAgain"]["Next"] == "Prepare" and wait["PlanAgain"]["ResultPath"] is None
    retried = {e for r in DEFINITION["States"]["Prepare"]["Retry"] for e in r["ErrorEquals"]}
    assert "StockMoved" in retried


def test_every_lambda_task_retries_transient_errors_with_backoff():
    for name, state in all_states():
        if state["Type"] == "Task" and "lambda:invoke" in state["Resource"]:
            retried = {e for r in state["Retry"] for e in r["ErrorEquals"]}
            assert {"Lambda.ServiceException", "Lambda.TooManyRequestsException", "TransientError"} <= retried, name
            assert all(r["BackoffRate"] > 1 for r in state["Retry"]), name


def test_every_transition_points_at_a_state():
    def check(states):
        for name, state in states.items():
            targets = [state.get("Next"), state.get("Default")]
            targets += [c["Next"] for c in state.get("Choices", []) + state.get("Catch", [])]
            for target in filter(None, targets):
                assert target in states, f"{name} -> {target}"
            inner = state.get("ItemProcessor")
            if inner:
                check(inner["States"])

    check(DEFINITION["States"])


def test_substitute_refuses_a_missing_value():
    import pytest

    with pytest.raises(KeyError, match="OrdersTableName"):
        asl.substitute(asl.read(), dict.fromkeys(asl.FUNCTION_PLACEHOLDERS, "x"))
