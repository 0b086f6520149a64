"""Manual orders (POST /orders) made idempotent with an Idempotency-Key, held in DynamoDB so it holds
across Lambda containers: same key and body, same order and answer; another body, a 422."""

from __future__ import annotations

import threading
import uuid

import httpx
import pytest

from orderflow import service
from orderflow.adapters.idempotency import IdempotencyKeys
from tests.integration.conftest import add_warehouse, make_order


@pytest.fixture
def api(stack):
    with httpx.Client(base_url=stack.api_url, headers={"Authorization": "Bearer test-token"}, timeout=30) as http:
        yield http


@pytest.fixture
def sku(ports, uid):
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(f"SKU-{uid}", f"w-{uid}", 100)
    return f"SKU-{uid}"


def body(sku: str, address: dict, quantity: int = 1) -> dict:
    return {"lines": [{"sku": sku, "quantity": quantity, "unit_price": "12.50"}], "shipping_address": address}


def test_the_same_key_and_body_give_the_same_order_and_answer(api, sku, address):
    key = str(uuid.uuid4())
    first = api.post("/orders", json=body(sku, address), headers={"Idempotency-Key": key})
    second = api.post("/orders", json=body(sku, address), headers={"Idempotency-Key": key})
    assert first.status_code == second.status_code == 201, first.text
    assert first.json()["order_id"] == second.json()["order_id"]
    assert (first.headers["Idempotent-Replayed"], second.headers["Idempotent-Replayed"]) == ("false", "true")
    lower = api.post("/orders", json=body(sku, address), headers={"idempotency-key": key})  # header case
    assert lower.json()["order_id"] == first.json()["order_id"]
    other = api.post("/orders", json=body(sku, address), headers={"Idempotency-Key": str(uuid.uuid4())})
    assert other.json()["order_id"] != first.json()["order_id"]


def test_the_same_key_with_another_body_is_refused(api, sku, address):
    key = str(uuid.uuid4())
    assert api.post("/orders", json=body(sku, address), headers={"Idempotency-Key": key}).status_code == 201
    reused = api.post("/orders", json=body(sku, address, quantity=2), headers={"Idempotency-Key": key})
    assert reused.status_code == 422
    assert reused.json()["error"]["code"] == "idempotency_key_reused"
    assert reused.json()["error"]["details"]["field"] == "Idempotency-Key"


def test_a_bad_key_or_an_unknown_sku_is_a_4xx_and_burns_no_key(api, sku, address, uid):
    assert api.post("/orders", json=body(sku, address), headers={"Idempotency-Key": "has space"}).status_code == 422
    key = str(uuid.uuid4())
    unknown = api.post("/orders", json=body(f"NOPE-{uid}", address), headers={"Idempotency-Key": key})
    assert unknown.status_code == 422 and f"NOPE-{uid}" in unknown.text
    assert api.post("/orders", json=body(sku, address), headers={"Idempotency-Key": key}).status_code == 201


def test_the_same_key_sent_at_once_from_many_clients_makes_one_order(ports, sku, address):
    key = str(uuid.uuid4())
    new = make_order([(sku, 1)], address)
    results, errors = [], []
    go = threading.Barrier(6)

    def send():
        go.wait()
        try:
            results.append(service.create_order_once(new, ports, key, IdempotencyKeys()))
        except Exception as exc:  # a request that finds the first still working is told to retry (409)
            errors.append(exc)

    threads = [threading.Thread(target=send) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) + len(errors) == 6
    assert len({order.order_id for order, _, _ in results}) == 1
    assert all(getattr(e, "http_status", None) == 409 for e in errors)
    order, status, replayed = service.create_order_once(new, ports, key, IdempotencyKeys())
    assert order.order_id == results[0][0].order_id and (status, replayed) == (201, True)


def test_a_request_that_died_after_claiming_its_key_is_finished_by_the_retry_with_the_same_order(ports, sku,
                                                                                                  address):
    key = str(uuid.uuid4())
    keys = IdempotencyKeys()
    new = make_order([(sku, 1)], address)
    import hashlib
    import json

    fingerprint = hashlib.sha256(json.dumps(new.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()
    claimed = keys.claim(key, fingerprint, "ord_claimed_then_died")
    assert claimed.mine
    # the first request's lease runs out (it died): the retry takes over and writes the same order id
    from orderflow.adapters.aws import client

    client("dynamodb").update_item(TableName=keys.table, Key={"order_id": {"S": f"idem#{key}"}},
                                   UpdateExpression="SET lease_until = :past",
                                   ExpressionAttributeValues={":past": {"N": "1"}})
    order, status, replayed = service.create_order_once(new, ports, key, keys)
    assert (order.order_id, status, replayed) == ("ord_claimed_then_died", 201, False)


def test_channel_and_external_id_make_a_manual_order_idempotent_too(api, sku, address, uid):
    ref = {"channel": "manual", "external_id": f"po-{uid}"}
    first = api.post("/orders", json={**body(sku, address), **ref})
    second = api.post("/orders", json={**body(sku, address), **ref})
    assert (first.status_code, second.status_code) == (201, 200)
    assert first.json()["order_id"] == second.json()["order_id"]


def test_a_request_that_failed_after_writing_its_order_is_resumed_by_the_retry_never_a_second_order(
        ports, sku, address, monkeypatch):
    """StartExecution throttled after the order was written (the API answers 503): the client's retry
    with the same key finishes that same order; it does not get a new order id (two orders would ship)."""
    from orderflow.errors import TransientError

    key = str(uuid.uuid4())
    new = make_order([(sku, 1)], address)
    real_start = ports.workflow.start
    throttled = []

    def throttled_start(order_id, attempt=1):
        throttled.append(order_id)
        raise TransientError("StartExecution was throttled")

    monkeypatch.setattr(ports.workflow, "start", throttled_start)
    with pytest.raises(TransientError):
        service.create_order_once(new, ports, key, IdempotencyKeys())
    written = ports.orders.get(throttled[0])  # the order was written before the start failed
    monkeypatch.setattr(ports.workflow, "start", real_start)
    order, status, replayed = service.create_order_once(new, ports, key, IdempotencyKeys())
    assert order.order_id == written.order_id and (status, replayed) == (201, False)
    again, status, replayed = service.create_order_once(new, ports, key, IdempotencyKeys())
    assert (again.order_id, status, replayed) == (written.order_id, 201, True)
