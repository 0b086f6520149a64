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


#: What each step can raise (orderflow/workflow/steps.py, orderflow/rules/allocation.py, the Map's Fail
#: states): its Catch names exactly these business errors, no more.
RAISES = {
    "Allocate": {"NoWarehouseCanAllocate", "UnknownSku"},
    "WaitForStock": set(),
    "ReduceInventory": set(),  # a reservation that no longer fits is StockMoved: planned again
    "RouteFulfillment": {"UnsupportedFulfillmentRoute"},
    "FulfillShipments": {"FulfillerSlaExpired", "UnsupportedFulfillmentRoute"},
    "Complete": set(),
}


def test_every_step_ends_closed_orders_and_catches_only_the_business_errors_it_can_raise():
    steps = {n: s for n, s in DEFINITION["States"].items()
             if s["Type"] in {"Task", "Map"} and n != "RecordNeedsAttention"}
    assert set(steps) == set(RAISES)
    assert set().union(*RAISES.values()) == set(BUSINESS_ERROR_NAMES) - {"InsufficientStock"}
    for name, state in steps.items():  # (inside the Map, the Map's own Catch handles what its branches raise)
        catchers = {tuple(sorted(c["ErrorEquals"])): c["Next"] for c in state["Catch"]}
        assert state["Catch"][0]["ErrorEquals"] == ["OrderCancelled"], name
        assert catchers[("OrderCancelled",)] == "Cancelled", name
        assert catchers[("OrderCompletedOnChannel",)] == "CompletedOnChannel", name
        assert state["Catch"][-1]["ErrorEquals"] == ["States.ALL"], name
        business = {e for c in state["Catch"] if c["Next"] == "ExplainBusinessError" for e in c["ErrorEquals"]}
        assert business == RAISES[name], name


def test_a_cancelled_or_channel_completed_order_is_not_a_failed_execution():
    states = DEFINITION["States"]
    for name in ("Cancelled", "CompletedOnChannel", "Superseded"):
        assert states[name]["Type"] == "Succeed", name
    assert states["FulfillerRejected"]["Type"] == "Fail"  # the order needs attention: that one did fail
    catchers = {c["ErrorEquals"][0]: c["Next"] for c in states["FulfillShipments"]["Catch"]}
    assert catchers["FulfillerRejected"] == "FulfillerRejected" and catchers["ExecutionSuperseded"] == "Superseded"


def test_a_self_shipment_that_never_ships_needs_attention_with_a_named_reason():
    branch = DEFINITION["States"]["FulfillShipments"]["ItemProcessor"]["States"]
    task = branch["WaitForSelfShipment"]
    assert task["Catch"] == [{"ErrorEquals": ["States.Timeout"], "Next": "SelfShipMissedSla"}]
    missed = branch["SelfShipMissedSla"]
    assert missed["Type"] == "Fail" and missed["Error"] == "FulfillerSlaExpired"
    assert "90 days" in json.loads(missed["Cause"])["errorMessage"]


def test_forwarded_shipments_wait_for_the_fulfillers_sla_then_need_attention():
    branch = DEFINITION["States"]["FulfillShipments"]["ItemProcessor"]["States"]
    routes = {c.get("StringEquals") or "dropship|3pl": c["Next"] for c in branch["ChooseRoute"]["Choices"]}
    assert routes == {"self_ship": "WaitForSelfShipment", "dropship|3pl": "ForwardToSupplier", "fba": "ForwardToFba"}
    for name in ("ForwardToSupplier", "ForwardToFba"):
        task = branch[name]
        assert task["Resource"] == "arn:aws:states:::sqs:sendMessage.waitForTaskToken"
        assert task["TimeoutSecondsPath"] == "$.shipment.sla_seconds"
        missed = branch[task["Catch"][0]["Next"]]
        assert task["Catch"][0]["ErrorEquals"] == ["States.Timeout"]
        assert missed["Type"] == "Fail" and missed["Error"] in BUSINESS_ERROR_NAMES
        assert json.loads(missed["Cause"])["errorMessage"]  # ExplainBusinessError reads it as the reason


def test_stock_that_moved_is_planned_again():
    catchers = {c["ErrorEquals"][0]: c["Next"] for c in DEFINITION["States"]["ReduceInventory"]["Catch"]}
    assert catchers["StockMoved"] == "Allocate"
    assert DEFINITION["States"]["WaitForStock"]["Next"] == "Allocate"


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
