"""The small AWS adapters the slices and stock sync go through (issue 14: nothing outside orderflow/adapters
imports boto3): the one document store of the settings table, the SQS sends, S3 files, and the workflow's
status read by execution id. Fake clients that record each call: the requests (item shapes, keys,
conditions) are what is pinned, and the service's error codes map to the same domain errors as before.
No AWS, no moto."""

from __future__ import annotations

import io
import json
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.exceptions import ClientError

from orderflow.adapters import aws, documents, queues, s3, stepfunctions
from orderflow.adapters.documents import DocumentStore
from orderflow.adapters.dynamodb import to_item
from orderflow.adapters.queues import SqsQueues
from orderflow.adapters.s3 import S3Files
from orderflow.adapters.stepfunctions import WorkflowGateway
from orderflow.carriers.base import LabelFormat
from orderflow.carriers.storage import S3LabelStore
from orderflow.channels import stock_sync
from orderflow.errors import NotFound, TransientError
from orderflow.queues import STOCK_SYNC


def _error(code: str, status: int = 400) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}},
                       "op")


class FakeClient:
    """Records every call as (operation, kwargs); answers from ``answers`` (a list per operation, taken in
    turn; an exception is raised)."""

    def __init__(self, **answers: Any) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answers = {k: list(v) if isinstance(v, list) else [v] for k, v in answers.items()}

    def __getattr__(self, operation: str) -> Any:
        def call(**kwargs: Any) -> Any:
            self.calls.append((operation, json.loads(json.dumps(kwargs, default=repr))))
            queue = self.answers.get(operation) or [{}]
            answer = queue.pop(0) if len(queue) > 1 else queue[0]
            if isinstance(answer, Exception):
                raise answer
            return answer
        return call


@pytest.fixture
def ddb(monkeypatch):
    def install(**answers: Any) -> FakeClient:
        fake = FakeClient(**answers)
        monkeypatch.setattr(documents, "client", lambda name: fake)
        import orderflow.adapters.dynamodb as dynamodb

        monkeypatch.setattr(dynamodb, "client", lambda name: fake)
        return fake
    return install


KEY = {"entity": {"S": "fba_open"}, "id": {"S": "shp_1"}}


# -- the document store -------------------------------------------------------------------------------


def test_documents_are_their_fields_beside_entity_and_id(ddb):
    fake = ddb(get_item={"Item": to_item({"entity": "fba_open", "id": "shp_1", "order_id": "ord_1", "n": 2})})
    store = DocumentStore(table="settings")
    store.put("fba_open", "shp_1", {"order_id": "ord_1", "n": 2})
    assert store.get("fba_open", "shp_1") == {"order_id": "ord_1", "n": 2}
    assert fake.calls == [
        ("put_item", {"TableName": "settings", "Item": {**KEY, "order_id": {"S": "ord_1"}, "n": {"N": "2"}}}),
        ("get_item", {"TableName": "settings", "Key": KEY, "ConsistentRead": True}),
    ]


def test_a_missing_document_is_none(ddb):
    ddb(get_item={})
    assert DocumentStore(table="settings").get("fba_open", "shp_1") is None


def test_a_query_reads_every_page_through_the_one_loop(ddb):
    first = {"Items": [to_item({"entity": "e", "id": "a", "x": "1"})], "LastEvaluatedKey": {"k": {"S": "a"}}}
    last = {"Items": [to_item({"entity": "e", "id": "b", "x": "2"})]}
    fake = ddb(query=[first, last])
    assert DocumentStore(table="settings").query("e", consistent=True) == [{"x": "1"}, {"x": "2"}]
    asked = {"TableName": "settings", "KeyConditionExpression": "entity = :e",
             "ExpressionAttributeValues": {":e": {"S": "e"}}, "ConsistentRead": True}
    assert fake.calls == [("query", asked), ("query", {**asked, "ExclusiveStartKey": {"k": {"S": "a"}}})]


def test_documents_by_id_read_every_page(ddb):
    first = {"Items": [to_item({"entity": "e", "id": "a", "x": "1"})], "LastEvaluatedKey": {"k": {"S": "a"}}}
    last = {"Items": [to_item({"entity": "e", "id": "b", "x": "2"})]}
    fake = ddb(query=[first, last])
    assert DocumentStore(table="settings").by_id("e") == {"a": {"x": "1"}, "b": {"x": "2"}}
    assert len(fake.calls) == 2


def test_every_skus_levels_in_one_scan_of_every_page(ddb):
    from orderflow.adapters.dynamodb import InventoryRepository

    def level(sku: str, warehouse: str, on_hand: int) -> dict:
        return to_item({"sku": sku, "warehouse_id": warehouse, "on_hand": on_hand, "committed": 1,
                        "available": on_hand - 1})
    first = {"Items": [level("B", "w2", 5), level("A", "w1", 2)], "LastEvaluatedKey": {"k": {"S": "x"}}}
    fake = ddb(scan=[first, {"Items": [level("B", "w1", 4)]}])
    levels = InventoryRepository(SimpleNamespace(inventory_table="inventory", ledger_table="ledger")).all_levels()
    assert list(levels) == ["A", "B"]
    assert [(lv.warehouse_id, lv.on_hand, lv.available) for lv in levels["B"]] == [("w1", 4, 3), ("w2", 5, 4)]
    assert [c for c, _ in fake.calls] == ["scan", "scan"]
    assert fake.calls[1][1]["ExclusiveStartKey"] == {"k": {"S": "x"}}


def test_the_planning_read_answers_units_available_and_learns_each_levels_shard_count(ddb):
    """``available_for``: on hand less committed by warehouse (a sharded level summed over its shards, a shard
    owing units counted as negative), {} for an SKU with no level; and the shard count of every level read,
    1 included, so a short reservation on an unsharded level is refused without reading it again."""
    from orderflow.adapters.dynamodb import InventoryRepository

    def item(sku: str, warehouse: str, on_hand: int, committed: int, **more: int) -> dict:
        return to_item({"sku": sku, "warehouse_id": warehouse, "on_hand": on_hand, "committed": committed, **more})
    fake = ddb(query=[{"Items": [item("A", "w1", 5, 2), item("A", "w2", 10, 1, shards=3)]}, {"Items": []}],
               batch_get_item={"Responses": {"inventory": [item("A#s1", "w2#s1", 4, 6), item("A#s2", "w2#s2", 3, 0)]}})
    inventory = InventoryRepository(SimpleNamespace(inventory_table="inventory", ledger_table="ledger"))
    assert inventory.available_for(["A", "NONE", "A"]) == {"A": {"w1": 3, "w2": 10}, "NONE": {}}
    assert [c for c, _ in fake.calls] == ["query", "query", "batch_get_item"]
    assert inventory._shards == {("A", "w1"): 1, ("A", "w2"): 3}


def test_a_query_reads_eventually_consistent_unless_asked(ddb):
    fake = ddb(query={"Items": []})
    DocumentStore(table="settings").query("e")
    assert "ConsistentRead" not in fake.calls[0][1]


def test_a_throttled_store_is_a_transient_error(ddb):
    ddb(put_item=_error("ProvisionedThroughputExceededException"))
    with pytest.raises(TransientError):
        DocumentStore(table="settings").put("e", "a", {})


def test_a_claim_writes_unless_a_live_one_is_there(ddb):
    fake = ddb()
    store = DocumentStore(table="settings")
    assert store.claim("stock_sync_pending", "SKU-1", {"marker": "m1", "at": "t"}, expiry="stale_after",
                       now=100.0, expires_at=1005.5)
    assert fake.calls == [("put_item", {
        "TableName": "settings",
        "Item": {"entity": {"S": "stock_sync_pending"}, "id": {"S": "SKU-1"}, "marker": {"S": "m1"},
                 "at": {"S": "t"}, "stale_after": {"N": "1005.500"}},
        "ConditionExpression": "attribute_not_exists(id) OR attribute_not_exists(#x) OR #x < :now",
        "ExpressionAttributeNames": {"#x": "stale_after"}, "ExpressionAttributeValues": {":now": {"N": "100.000"}},
    })]
    ddb(put_item=_error("ConditionalCheckFailedException"))
    assert not store.claim("stock_sync_pending", "SKU-1", {}, expiry="stale_after", now=1.0, expires_at=2.0)


def test_a_delete_without_conditions_deletes(ddb):
    fake = ddb()
    assert DocumentStore(table="settings").delete("fba_open", "shp_1")
    assert fake.calls == [("delete_item", {"TableName": "settings", "Key": KEY})]


def test_a_conditional_delete_deletes_only_what_matches(ddb):
    fake = ddb()
    store = DocumentStore(table="settings")
    store.delete("fba_open", "shp_1", where={"seller_fulfillment_order_id": "sfo-2"})
    store.delete("fba_open", "shp_1", where={"marker": "m1"}, expiry="stale_after", expired_before=7.0)
    store.delete("fba_open", "shp_1", expiry="stale_after", expired_before=7.0)
    assert [c[1] for c in fake.calls] == [
        {"TableName": "settings", "Key": KEY, "ConditionExpression": "attribute_not_exists(id) OR (#w0 = :w0)",
         "ExpressionAttributeNames": {"#w0": "seller_fulfillment_order_id"},
         "ExpressionAttributeValues": {":w0": {"S": "sfo-2"}}},
        {"TableName": "settings", "Key": KEY,
         "ConditionExpression": "attribute_not_exists(id) OR (#w0 = :w0 AND (attribute_not_exists(#x) OR #x < :now))",
         "ExpressionAttributeNames": {"#w0": "marker", "#x": "stale_after"},
         "ExpressionAttributeValues": {":w0": {"S": "m1"}, ":now": {"N": "7.000"}}},
        {"TableName": "settings", "Key": KEY,
         "ConditionExpression": "attribute_not_exists(id) OR (attribute_not_exists(#x) OR #x < :now)",
         "ExpressionAttributeNames": {"#x": "stale_after"}, "ExpressionAttributeValues": {":now": {"N": "7.000"}}},
    ]
    ddb(delete_item=_error("ConditionalCheckFailedException"))
    assert not store.delete("fba_open", "shp_1", where={"marker": "m1"})
    ddb(delete_item=_error("AccessDeniedException"))
    with pytest.raises(ClientError):
        store.delete("fba_open", "shp_1")


# -- stock sync on fakes of its ports -----------------------------------------------------------------


class FakeDocuments:
    def __init__(self) -> None:
        self.docs: dict[tuple[str, str], dict[str, Any]] = {}
        self.deleted: list[tuple[str, str, dict | None]] = []

    def claim(self, entity, doc_id, data, *, expiry, now, expires_at):  # noqa: ANN001, ANN201
        live = self.docs.get((entity, doc_id))
        if live is not None and live.get(expiry, 0) >= now:
            return False
        self.docs[(entity, doc_id)] = {**data, expiry: expires_at}
        return True

    def by_id(self, entity):  # noqa: ANN001, ANN201
        return {doc_id: dict(data) for (kind, doc_id), data in self.docs.items() if kind == entity}

    def query(self, entity, *, consistent=False):  # noqa: ANN001, ANN201
        return list(self.by_id(entity).values())

    def delete(self, entity, doc_id, *, where=None, expiry=None, expired_before=None):  # noqa: ANN001, ANN201
        live = self.docs.get((entity, doc_id))
        if live is not None and expiry is not None and expired_before is not None \
                and live.get(expiry, 0) >= expired_before:
            return False  # as DynamoDB's condition: only a marker missing the field or past it goes
        self.deleted.append((entity, doc_id, where))
        self.docs.pop((entity, doc_id), None)
        return True


class FakeQueues:
    def __init__(self, refuse: bool = False) -> None:
        self.sent: list[tuple[str, dict, str | None, str | None]] = []
        self.refuse = refuse

    def url(self, queue):  # noqa: ANN001, ANN201
        return f"https://sqs/{queue.key}"

    def send(self, queue, body, *, group=None, dedup_id=None):  # noqa: ANN001, ANN201
        if self.refuse:
            raise RuntimeError("SQS refused the message")
        self.sent.append((queue.key, body, group, dedup_id))


def _ports(queues_: FakeQueues) -> Any:
    channels = SimpleNamespace(list=lambda: [SimpleNamespace(channel_id="shop", auto_sync_stock=True)])
    return SimpleNamespace(documents=FakeDocuments(), queues=queues_, channels=channels)


def test_a_sync_request_sends_once_per_sku_while_its_marker_lives():
    ports = _ports(FakeQueues())
    assert stock_sync.request_sync(["SKU-1", "SKU-1", "SKU-2"], ports) == ["SKU-1", "SKU-2"]
    assert stock_sync.request_sync(["SKU-1"], ports) == []
    (key, body, group, dedup), _ = ports.queues.sent
    marker = ports.documents.docs[("stock_sync_pending", "SKU-1")]["marker"]
    assert (key, body, group, dedup) == ("stock-sync", {"sku": "SKU-1", "marker": marker}, "SKU-1", marker)


def test_a_refused_send_drops_its_marker():
    ports = _ports(FakeQueues(refuse=True))
    with pytest.raises(RuntimeError):
        stock_sync.request_sync(["SKU-1"], ports)
    assert ports.documents.docs == {}
    assert ports.documents.deleted[0][:2] == ("stock_sync_pending", "SKU-1")
    assert set(ports.documents.deleted[0][2]) == {"marker"}


def test_the_sweep_clears_lost_markers_only_and_pushes_what_a_channel_lacks():
    """Issue 11 item 2: sync_all itself deletes a marker whose message was lost (stale, or left without
    stale_after by an old release) and keeps a live one; every SKU a channel lacks is pushed, and one it
    has (as the pushed records say) is not even read again."""
    from orderflow.models import StockLevel

    ports = _ports(FakeQueues())
    ports.documents.docs = {("stock_sync_pending", "LOST"): {"marker": "m1", "stale_after": 1.0},
                            ("stock_sync_pending", "OLD"): {"marker": "m2"},
                            ("stock_sync_pending", "LIVE"): {"marker": "m3", "stale_after": 2e10},
                            ("stock_sync_pushed", "shop#HAS"): {"channel_id": "shop", "sku": "HAS", "quantity": 3}}
    pushed: list[tuple[str, int]] = []
    client = SimpleNamespace(push_inventory=lambda sku, quantity, **_: pushed.append((sku, quantity)))
    ports.channels.client = lambda channel: client
    ports.settings = SimpleNamespace(warehouses=lambda: [SimpleNamespace(warehouse_id="w", kind="own")],
                                     get_doc=lambda *_: None, put_doc=lambda *_: None)
    read_again: list[str] = []

    def levels(sku: str) -> list[StockLevel]:
        read_again.append(sku)
        return [StockLevel(sku=sku, warehouse_id="w", on_hand=3, committed=0)]

    ports.inventory = SimpleNamespace(
        all_levels=lambda: {sku: [StockLevel(sku=sku, warehouse_id="w", on_hand=3, committed=0)]
                            for sku in ("HAS", "LIVE", "LOST", "OLD")}, levels=levels)
    assert stock_sync.sync_all(ports) == {sku: {"shop": 3} for sku in ("LOST", "OLD", "LIVE")}
    assert sorted(read_again) == ["LIVE", "LOST", "OLD"]  # HAS: the channel has 3 already
    assert {k for k in ports.documents.docs if k[0] == "stock_sync_pending"} == {("stock_sync_pending", "LIVE")}
    assert sorted(pushed) == [("LIVE", 3), ("LOST", 3), ("OLD", 3)]


# -- SQS, S3, the workflow's status, server errors ----------------------------------------------------


def test_a_queue_message_goes_to_the_url_in_the_environment(monkeypatch):
    fake = FakeClient()
    monkeypatch.setattr(queues, "client", lambda name: fake)
    monkeypatch.setenv(STOCK_SYNC.env_var, "https://sqs/q.fifo")
    SqsQueues().send(STOCK_SYNC, {"sku": "S"}, group="S", dedup_id="m")
    assert fake.calls == [("send_message", {"QueueUrl": "https://sqs/q.fifo", "MessageBody": '{"sku": "S"}',
                                            "MessageGroupId": "S", "MessageDeduplicationId": "m"})]
    monkeypatch.delenv(STOCK_SYNC.env_var)
    assert SqsQueues().url(STOCK_SYNC) is None
    with pytest.raises(RuntimeError):
        SqsQueues().send(STOCK_SYNC, {})


def test_label_files_in_s3_keep_their_keys_and_errors(monkeypatch):
    fake = FakeClient(get_object={"Body": io.BytesIO(b"%PDF")})
    monkeypatch.setattr(s3, "client", lambda name: fake)
    store = S3LabelStore("labels-bucket")
    assert store.put("ord_1", "shp_1", LabelFormat.PDF, b"%PDF") == "labels/ord_1/shp_1.pdf"
    assert store.get("labels/ord_1/shp_1.pdf") == b"%PDF"
    assert fake.calls[0] == ("put_object", {"Bucket": "labels-bucket", "Key": "labels/ord_1/shp_1.pdf",
                                            "Body": repr(b"%PDF"), "ContentType": LabelFormat.PDF.content_type})
    fake.answers = {"put_object": [_error("SlowDown", 503)], "get_object": [_error("NoSuchKey", 404)]}
    with pytest.raises(TransientError, match="the label could not be stored; retry"):
        store.put("ord_1", "shp_1", LabelFormat.PDF, b"%PDF")
    with pytest.raises(NotFound, match="the label file is missing from storage") as missing:
        store.get("labels/ord_1/shp_1.pdf")
    assert missing.value.details == {"key": "labels/ord_1/shp_1.pdf"}
    fake.answers = {"get_object": [_error("AccessDenied", 403)]}
    with pytest.raises(ClientError):
        S3Files("labels-bucket").get("k")


def test_an_execution_status_by_its_id(monkeypatch):
    fake = FakeClient(describe_execution={"status": "RUNNING"})
    monkeypatch.setattr(stepfunctions, "client", lambda name: fake)
    gateway = WorkflowGateway(SimpleNamespace(state_machine_arn="arn:aws:states:eu:1:stateMachine:orders"))
    assert gateway.execution_status("arn:aws:states:eu:1:execution:orders:ord_1-r2") == "RUNNING"
    assert fake.calls == [("describe_execution", {"executionArn": "arn:aws:states:eu:1:execution:orders:ord_1-r2"})]
    for code in ("ExecutionDoesNotExist", "InvalidArn"):
        fake.answers = {"describe_execution": [_error(code)]}
        assert gateway.execution_status("arn") is None
    fake.answers = {"describe_execution": [_error("ThrottlingException")]}
    with pytest.raises(TransientError):
        gateway.execution_status("arn")
    with pytest.raises(ClientError):  # the order's own status read answers as before
        gateway.status("ord_1")


def test_server_errors_are_the_services_own_failures():
    assert aws.server_error(_error("InternalFailure", 500))
    assert not aws.server_error(_error("ValidationException", 400))
    assert not aws.server_error(RuntimeError("no"))


def test_a_throttled_resume_is_tried_again_then_handed_to_the_callers_retry(monkeypatch):
    """Issue 11 item 9: a throttled SendTaskSuccess is tried again with a growing wait; still refused after
    the last attempt it is a TransientError (503: the same tracking again, or the reconciler, resumes it)."""
    sleeps: list[float] = []
    monkeypatch.setattr(stepfunctions.time, "sleep", sleeps.append)
    gateway = WorkflowGateway(SimpleNamespace(state_machine_arn="arn:aws:states:eu:1:stateMachine:orders"))
    fake = FakeClient(send_task_success=[_error("ThrottlingException"), _error("InternalFailure", 500), {}])
    monkeypatch.setattr(stepfunctions, "client", lambda name: fake)
    assert gateway.resume("tok", {"tracking": "1Z"}) is True
    assert [c for c, _ in fake.calls] == ["send_task_success"] * 3
    assert fake.calls[-1][1] == {"taskToken": "tok", "output": '{"tracking": "1Z"}'}
    assert sleeps == [stepfunctions.RESUME_BACKOFF_SECONDS, stepfunctions.RESUME_BACKOFF_SECONDS * 2]

    sleeps.clear()
    fake.answers = {"send_task_success": [_error("ThrottlingException")]}
    fake.calls.clear()
    with pytest.raises(TransientError, match="retry the same request"):
        gateway.resume("tok", {}, attempts=4)
    assert len(fake.calls) == 4 and len(sleeps) == 3

    for over in ("TaskDoesNotExist", "TaskTimedOut", "InvalidToken"):  # the wait is over: no retry
        fake.answers, fake.calls = {"send_task_success": [_error(over)]}, []
        assert gateway.resume("tok", {}) is False
        assert len(fake.calls) == 1
    fake.answers, fake.calls = {"send_task_success": [_error("AccessDeniedException")]}, []
    with pytest.raises(ClientError):  # not the service's trouble: raised at once, never retried
        gateway.resume("tok", {})
    assert len(fake.calls) == 1


def test_items_read_back_as_boto3s_deserializer_and_the_plain_numbers_give_them():
    """``from_item`` reads attribute values itself (boto3 is not imported by the functions): the same values
    as ``_plain(TypeDeserializer().deserialize(v))`` for every DynamoDB type, numbers of every shape included."""
    from decimal import Decimal

    from boto3.dynamodb.types import Binary, TypeDeserializer

    from orderflow.adapters.dynamodb import _plain, from_item

    item = {
        "s": {"S": "text"}, "empty": {"S": ""}, "int": {"N": "42"}, "neg": {"N": "-7"}, "zero": {"N": "0"},
        "dec": {"N": "19.99"}, "trailing": {"N": "1.50"}, "integral_dec": {"N": "3.0"}, "exp": {"N": "1E+2"},
        "small": {"N": "1E-7"}, "big": {"N": "1" + "0" * 37}, "t": {"BOOL": True}, "f": {"BOOL": False},
        "null": {"NULL": True}, "map": {"M": {"a": {"N": "1"}, "b": {"L": [{"S": "x"}, {"N": "2.5"}, {"NULL": True}]}}},
        "list": {"L": [{"M": {}}, {"L": []}, {"BOOL": False}]}, "bin": {"B": b"\x00\x01"},
        "ss": {"SS": ["a", "b"]}, "ns": {"NS": ["1", "2.5"]}, "bs": {"BS": [b"x"]},
    }
    expected = {k: _plain(TypeDeserializer().deserialize(v)) for k, v in item.items()}
    assert from_item(item) == expected
    assert type(from_item(item)["integral_dec"]) is int and from_item(item)["trailing"] == "1.50"
    assert from_item(item)["bin"] == Binary(b"\x00\x01") and from_item(item)["ns"] == {Decimal("1"), Decimal("2.5")}
    # and what to_item writes reads back as it was
    plain = {"id": "o1", "n": 3, "price": "9.99", "flag": True, "none": None, "lines": [{"sku": "A", "q": 2}]}
    assert from_item(to_item(plain)) == plain
