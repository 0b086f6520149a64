"""The local stack's direct JSON for moto's DynamoDB item operations writes what moto's serializer writes.

Every item operation is run against moto with items holding every attribute type; each result moto
produced is then written both ways and the documents compared.
"""

from __future__ import annotations

import json
from decimal import Decimal

import boto3
import pytest
from moto import mock_aws

from orderflow_local import moto_dynamodb_wire

ALL_TYPES = {
    "pk": {"S": "a"}, "sk": {"N": "1"}, "s": {"S": "text ü €"}, "n": {"N": "12.50"}, "b": {"B": b"\x00\xffbytes"},
    "ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [b"\x01", b"\x02"]},
    "m": {"M": {"inner": {"S": "v"}, "deep": {"M": {"l": {"L": [{"N": "1"}, {"B": b"\x03"}]}}}}},
    "l": {"L": [{"S": "x"}, {"BOOL": True}, {"NULL": True}]}, "t": {"BOOL": False}, "z": {"NULL": True},
}


@pytest.fixture
def recorded(monkeypatch):
    """(operation, result, moto's own body) for every DynamoDB result moto wrote during a session."""
    from moto.dynamodb.responses import DynamoResult

    seen: list[tuple[str, object, str, dict, list[str]]] = []
    original = DynamoResult.execute_result

    def record(self, context):  # noqa: ANN001, ANN202
        status, headers, body = original(self, context)
        seen.append((context.operation_model.name, self.result, body, headers,
                     list(context.operation_model.output_shape.members)))
        return status, headers, body

    monkeypatch.setattr(DynamoResult, "execute_result", record)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1")
        db.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"},
                                   {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "N"}])
        seen.clear()
        db.put_item(TableName="t", Item=ALL_TYPES, ReturnConsumedCapacity="TOTAL")
        db.put_item(TableName="t", Item={**ALL_TYPES, "sk": {"N": "2"}}, ReturnValues="ALL_OLD")
        db.put_item(TableName="t", Item={**ALL_TYPES, "sk": {"N": "2"}, "s": {"S": "new"}}, ReturnValues="ALL_OLD")
        db.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "1"}}, ConsistentRead=True)
        db.get_item(TableName="t", Key={"pk": {"S": "missing"}, "sk": {"N": "1"}})
        db.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "1"}}, ProjectionExpression="b, m.deep")
        db.update_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "1"}}, UpdateExpression="SET n = n + :d",
                       ExpressionAttributeValues={":d": {"N": "1"}}, ReturnValues="ALL_NEW")
        db.update_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "1"}}, UpdateExpression="SET s = :s",
                       ExpressionAttributeValues={":s": {"S": "u"}})
        db.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}})
        db.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}},
                 Limit=1, ReturnConsumedCapacity="INDEXES")
        db.query(TableName="t", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": {"S": "a"}},
                 Select="COUNT")
        db.scan(TableName="t", Limit=1)
        db.scan(TableName="t")
        db.batch_get_item(RequestItems={"t": {"Keys": [{"pk": {"S": "a"}, "sk": {"N": "1"}},
                                                       {"pk": {"S": "a"}, "sk": {"N": "9"}}]}})
        db.batch_write_item(RequestItems={"t": [{"PutRequest": {"Item": {**ALL_TYPES, "sk": {"N": "3"}}}}]})
        db.transact_get_items(TransactItems=[{"Get": {"TableName": "t", "Key": {"pk": {"S": "a"}, "sk": {"N": "1"}}}}])
        db.transact_write_items(TransactItems=[{"Put": {"TableName": "t", "Item": {**ALL_TYPES, "sk": {"N": "4"}}}}])
        db.delete_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "4"}}, ReturnValues="ALL_OLD")
        db.describe_table(TableName="t")
    return seen


def test_every_item_operation_is_written_as_moto_writes_it(recorded) -> None:
    operations = {op for op, *_ in recorded}
    assert moto_dynamodb_wire.ITEM_OPERATIONS <= operations, operations
    for operation, result, body, headers, members in recorded:
        if operation not in moto_dynamodb_wire.ITEM_OPERATIONS:
            continue
        direct = moto_dynamodb_wire.body_of(result, members)
        assert direct is not None, operation
        assert json.loads(direct) == json.loads(body), operation
        assert headers["Content-Type"] == moto_dynamodb_wire.CONTENT_TYPE


def test_a_value_json_cannot_write_goes_to_moto() -> None:
    assert moto_dynamodb_wire.body_of({"Count": Decimal("1")}, ["Count"]) is None
    assert moto_dynamodb_wire.body_of({"Item": {"b": {"B": b"\x00"}}, "Legacy": 1}, ["Item"]) == \
        '{"Item": {"b": {"B": "AA=="}}}'
    assert moto_dynamodb_wire.body_of(["not", "a", "dict"], ["Item"]) is None


def test_the_local_stack_uses_it_and_boto3_reads_it(monkeypatch) -> None:
    from moto.dynamodb.responses import DynamoResult

    monkeypatch.setattr(DynamoResult, "execute_result", DynamoResult.execute_result)
    monkeypatch.delattr(DynamoResult, "_direct_json", raising=False)
    moto_dynamodb_wire.install()
    assert DynamoResult._direct_json
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    with mock_aws():
        db = boto3.client("dynamodb", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
        db.create_table(TableName="t", BillingMode="PAY_PER_REQUEST",
                        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                              {"AttributeName": "sk", "AttributeType": "N"}])
        db.put_item(TableName="t", Item=ALL_TYPES)
        item = db.get_item(TableName="t", Key={"pk": {"S": "a"}, "sk": {"N": "1"}})["Item"]
    assert item == ALL_TYPES
