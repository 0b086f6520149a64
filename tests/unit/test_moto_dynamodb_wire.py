"""The local stack's direct JSON for moto's DynamoDB item operations writes what moto's serializer writes.

Every item operation is run against moto with items holding every attribute type; each result moto
produced is then written both ways and the documents compared. moto is reached through the local stack's
in-process transport, in a Region of its own: ``mock_aws`` would reset moto's state, which a local stack
running in the same test process keeps its tables in.
"""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import boto3
import pytest
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from orderflow_local import in_process_transport, moto_dynamodb_wire

NOWHERE = "http://127.0.0.1:9"  # the discard port: nothing listens; the transport answers
REGION = "ap-southeast-4"  # no local stack uses it


@pytest.fixture
def dynamodb():
    """A DynamoDB client on moto (in this process) and a table of its own."""
    in_process_transport.install()
    in_process_transport.TRANSPORT.serve(NOWHERE, DomainDispatcherApplication(create_backend_app))
    session = boto3.session.Session(aws_access_key_id="ak", aws_secret_access_key="sk", region_name=REGION)
    db = session.client("dynamodb", endpoint_url=NOWHERE)
    table = f"wire-{uuid.uuid4().hex[:8]}"
    db.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"},
                                          {"AttributeName": "sk", "AttributeType": "N"}])
    try:
        yield db, table
    finally:
        db.delete_table(TableName=table)
        in_process_transport.TRANSPORT.forget(NOWHERE)

ALL_TYPES = {
    "pk": {"S": "a"}, "sk": {"N": "1"}, "s": {"S": "text ü €"}, "n": {"N": "12.50"}, "b": {"B": b"\x00\xffbytes"},
    "ss": {"SS": ["x", "y"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [b"\x01", b"\x02"]},
    "m": {"M": {"inner": {"S": "v"}, "deep": {"M": {"l": {"L": [{"N": "1"}, {"B": b"\x03"}]}}}}},
    "l": {"L": [{"S": "x"}, {"BOOL": True}, {"NULL": True}]}, "t": {"BOOL": False}, "z": {"NULL": True},
}


@pytest.fixture
def recorded(monkeypatch, dynamodb):
    """(operation, result, moto's own body, headers, output members) for every DynamoDB result moto wrote."""
    from moto.core.responses import ActionResult
    from moto.dynamodb.responses import DynamoResult

    seen: list[tuple[str, object, str, dict, list[str]]] = []

    def record(self, context):  # noqa: ANN001, ANN202
        # moto's own serializer (the base class's), whether or not the direct wire is installed already
        status, headers, body = ActionResult.execute_result(self, context)
        seen.append((context.operation_model.name, self.result, body, headers,
                     list(context.operation_model.output_shape.members)))
        return status, headers, body

    monkeypatch.setattr(DynamoResult, "execute_result", record)
    db, t = dynamodb
    key = {"pk": {"S": "a"}, "sk": {"N": "1"}}
    db.put_item(TableName=t, Item=ALL_TYPES, ReturnConsumedCapacity="TOTAL")
    db.put_item(TableName=t, Item={**ALL_TYPES, "sk": {"N": "2"}}, ReturnValues="ALL_OLD")
    db.put_item(TableName=t, Item={**ALL_TYPES, "sk": {"N": "2"}, "s": {"S": "new"}}, ReturnValues="ALL_OLD")
    db.get_item(TableName=t, Key=key, ConsistentRead=True)
    db.get_item(TableName=t, Key={"pk": {"S": "missing"}, "sk": {"N": "1"}})
    db.get_item(TableName=t, Key=key, ProjectionExpression="b, m.deep")
    db.update_item(TableName=t, Key=key, UpdateExpression="SET n = n + :d",
                   ExpressionAttributeValues={":d": {"N": "1"}}, ReturnValues="ALL_NEW")
    db.update_item(TableName=t, Key=key, UpdateExpression="SET s = :s", ExpressionAttributeValues={":s": {"S": "u"}})
    by_pk = {"KeyConditionExpression": "pk = :p", "ExpressionAttributeValues": {":p": {"S": "a"}}}
    db.query(TableName=t, **by_pk)
    db.query(TableName=t, **by_pk, Limit=1, ReturnConsumedCapacity="INDEXES")
    db.query(TableName=t, **by_pk, Select="COUNT")
    db.scan(TableName=t, Limit=1)
    db.scan(TableName=t)
    db.batch_get_item(RequestItems={t: {"Keys": [key, {"pk": {"S": "a"}, "sk": {"N": "9"}}]}})
    db.batch_write_item(RequestItems={t: [{"PutRequest": {"Item": {**ALL_TYPES, "sk": {"N": "3"}}}}]})
    db.transact_get_items(TransactItems=[{"Get": {"TableName": t, "Key": key}}])
    db.transact_write_items(TransactItems=[{"Put": {"TableName": t, "Item": {**ALL_TYPES, "sk": {"N": "4"}}}}])
    db.delete_item(TableName=t, Key={"pk": {"S": "a"}, "sk": {"N": "4"}}, ReturnValues="ALL_OLD")
    db.describe_table(TableName=t)
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


def test_the_local_stack_uses_it_and_boto3_reads_it(dynamodb) -> None:
    from moto.dynamodb.responses import DynamoResult

    moto_dynamodb_wire.install()
    assert DynamoResult._direct_json
    db, t = dynamodb
    db.put_item(TableName=t, Item=ALL_TYPES)
    assert db.get_item(TableName=t, Key={"pk": {"S": "a"}, "sk": {"N": "1"}})["Item"] == ALL_TYPES
