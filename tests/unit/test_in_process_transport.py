"""boto3 calls made in the local stack's process reach moto's WSGI application without a socket.

The endpoint here is a port nothing listens on: every answer below came through the transport.
"""

from __future__ import annotations

import uuid

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

from orderflow_local import in_process_transport

NOWHERE = "http://127.0.0.1:9"  # the discard port: no server here
REGION = "ap-southeast-4"  # moto's state is the process's: no local stack uses this Region


@pytest.fixture
def session():
    in_process_transport.install()
    in_process_transport.TRANSPORT.serve(NOWHERE, DomainDispatcherApplication(create_backend_app))
    try:
        yield boto3.session.Session(aws_access_key_id="ak", aws_secret_access_key="sk", region_name=REGION)
    finally:
        in_process_transport.TRANSPORT.forget(NOWHERE)


def test_json_and_query_protocols_round_trip_with_errors_as_aws_gives_them(session) -> None:
    before = in_process_transport.TRANSPORT.calls[NOWHERE]
    table = f"t-{uuid.uuid4().hex[:8]}"
    db = session.client("dynamodb", endpoint_url=NOWHERE)
    db.create_table(TableName=table, BillingMode="PAY_PER_REQUEST",
                    KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
                    AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}])
    item = {"pk": {"S": "a/b c?é"}, "b": {"B": b"\x00\xff"}, "n": {"N": "1.5"}}
    db.put_item(TableName=table, Item=item)
    assert db.get_item(TableName=table, Key={"pk": {"S": "a/b c?é"}})["Item"] == item
    with pytest.raises(ClientError) as missing:
        db.get_item(TableName="nope", Key={"pk": {"S": "x"}})
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400

    sqs = session.client("sqs", endpoint_url=NOWHERE)  # SQS's JSON protocol and a path in the queue URL
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    sqs.send_message(QueueUrl=url, MessageBody='{"order_id": "o-1"}')
    assert sqs.receive_message(QueueUrl=url)["Messages"][0]["Body"] == '{"order_id": "o-1"}'

    sfn = session.client("stepfunctions", endpoint_url=NOWHERE)
    assert "stateMachines" in sfn.list_state_machines()
    assert in_process_transport.TRANSPORT.calls[NOWHERE] - before == 8


def test_other_endpoints_are_left_to_botocore(session) -> None:
    request = type("Request", (), {"url": "http://127.0.0.1:8/", "method": "GET", "headers": {}, "body": None})()
    assert in_process_transport.TRANSPORT(request) is None
