"""The adapter that runs our handlers at moto's Lambda invoke, and its patches of moto's Step Functions and DynamoDB
(execution names, condition expressions) (moto internals: keep this test)."""

import json
import time

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


def test_a_start_finds_an_execution_of_the_same_name_as_moto_did_without_reading_them_all(stack, uid):
    sfn = client("stepfunctions")

    def machine(name, state):
        return sfn.create_state_machine(name=f"{name}-{uid}", roleArn="arn:aws:iam::123456789012:role/test",
                                        type="STANDARD", definition=json.dumps({"StartAt": "S", "States": {"S": state}}),
                                        )["stateMachineArn"]

    waiting = machine("names", {"Type": "Wait", "Seconds": 30, "End": True})
    first = sfn.start_execution(stateMachineArn=waiting, name="o-1", input='{"order_id": "o-1"}')["executionArn"]
    for i in range(2, 50):
        sfn.start_execution(stateMachineArn=waiting, name=f"o-{i}", input=json.dumps({"order_id": f"o-{i}"}))
    # the same name and input while it runs: the same execution (Step Functions' idempotent start)
    again = sfn.start_execution(stateMachineArn=waiting, name="o-1", input='{"order_id": "o-1"}')
    assert again["executionArn"] == first
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):  # the same name, another input
        sfn.start_execution(stateMachineArn=waiting, name="o-1", input='{"order_id": "other"}')
    assert len(sfn.list_executions(stateMachineArn=waiting)["executions"]) == 49
    done = machine("ended", {"Type": "Succeed"})
    ended = sfn.start_execution(stateMachineArn=done, name="o-1", input="{}")["executionArn"]
    for _ in range(200):
        if sfn.describe_execution(executionArn=ended)["status"] == "SUCCEEDED":
            break
        time.sleep(0.05)
    with pytest.raises(sfn.exceptions.ExecutionAlreadyExists):  # ended: never again, whatever the input
        sfn.start_execution(stateMachineArn=done, name="o-1", input="{}")


def test_conditions_parsed_once_still_check_each_write_against_its_own_values(stack, uid):
    from orderflow.settings import get_settings

    ddb, table = client("dynamodb"), get_settings().settings_table
    key = {"entity": {"S": f"cond-{uid}"}, "id": {"S": "x"}}
    ddb.put_item(TableName=table, Item={**key, "v": {"N": "1"}})
    for attempt in range(2):  # the second time from the parsed expression
        ddb.put_item(TableName=table, Item={**key, "v": {"N": str(attempt + 2)}}, ConditionExpression="#v = :v",
                     ExpressionAttributeNames={"#v": "v"}, ExpressionAttributeValues={":v": {"N": str(attempt + 1)}})
    with pytest.raises(ddb.exceptions.ConditionalCheckFailedException):  # 3 is stored, not 1
        ddb.put_item(TableName=table, Item={**key, "v": {"N": "9"}}, ConditionExpression="#v = :v",
                     ExpressionAttributeNames={"#v": "v"}, ExpressionAttributeValues={":v": {"N": "1"}})
    for _ in range(2):  # an attribute name it does not use is refused each time, as moto refuses it
        with pytest.raises(Exception, match="(?i)unused"):
            ddb.put_item(TableName=table, Item=key, ConditionExpression="attribute_exists(id)",
                         ExpressionAttributeNames={"#unused": "v"})
    assert ddb.get_item(TableName=table, Key=key)["Item"]["v"] == {"N": "3"}
