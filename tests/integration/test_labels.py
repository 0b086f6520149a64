"""Buying labels through the real ASL on the local stack: paid -> label -> completed, exactly once."""

from __future__ import annotations

import threading
import time

import pytest

from orderflow import service
from orderflow.carriers import labels
from orderflow.carriers.accounts import CarrierAccount
from orderflow.carriers.base import CarrierUnavailable, LabelInProgress, Parcel
from orderflow.carriers.easypost import EasyPostClient
from orderflow.carriers.labels import LabelIn
from orderflow.errors import Conflict, NotFound, ValidationFailed
from orderflow.models import Address, OrderStatus, ShipmentLabel, ShipmentStatus, Warehouse
from tests.integration.conftest import execution_status, make_order, wait_for

DOCK = Address(name="Ship Dept", line1="5 Dock Rd", city="Newark", region="NJ", postal_code="07102", country="US")
BOX = {"weight_oz": 14, "length_in": 9, "width_in": 6, "height_in": 4}


def paid_order(ports, uid, address, quantity=2, *, with_address=True):
    sku, warehouse_id = f"LBL-{uid}", f"dock-{uid}"
    ports.settings.put_warehouse(Warehouse(warehouse_id=warehouse_id, name="Dock", priority=1,
                                           address=DOCK if with_address else None))
    ports.inventory.set_on_hand(sku, warehouse_id, 10)
    order, _ = service.create_order(make_order([(sku, quantity)], address), ports)
    return wait_for(ports, order.order_id, OrderStatus.PAID), sku, warehouse_id


def sales_for(stack, shipment_id):
    return [s for s in stack.sandbox_carrier.sales if s["reference"] == shipment_id]


def test_a_paid_order_gets_its_label_and_completes_with_stock_shipped_once(stack, ports, uid, address):
    order, sku, warehouse_id = paid_order(ports, uid, address)
    sid = order.shipments[0].shipment_id

    result = labels.buy_label(order.order_id, LabelIn(parcel=Parcel(**BOX)), ports, idempotency_key=f"k-{uid}")
    assert result.created
    label = result.shipment.label
    assert label.status == "purchased" and label.carrier_id == "sandbox" and label.carrier == "USPS"
    assert result.shipment.status == ShipmentStatus.SHIPPED
    assert result.shipment.tracking_number == label.tracking_number and result.shipment.carrier == "USPS"
    assert label.download_path == f"/orders/{order.order_id}/labels/{sid}"
    assert label.storage_key == f"labels/{order.order_id}/{sid}.pdf"
    [sale] = sales_for(stack, sid)
    assert sale["tracking_code"] == label.tracking_number and str(label.cost) == sale["rate"]

    done = wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    assert execution_status(stack, order.order_id)["status"] == "SUCCEEDED"
    assert [e.type for e in done.events][-3:] == ["label_bought", "tracking_added", "completed"]
    level = next(lv for lv in ports.inventory.levels(sku) if lv.warehouse_id == warehouse_id)
    assert (level.on_hand, level.committed) == (8, 0)
    kinds = sorted(e["kind"] for e in ports.inventory.ledger_for(sku) if e.get("order_id") == order.order_id)
    assert kinds == ["reserve", "ship"]

    data, fmt = labels.label_file(order.order_id, sid, ports)
    assert data.startswith(b"%PDF-") and fmt.value == "pdf"
    assert (stack.state_dir / "labels" / label.storage_key.split("/", 1)[1]).exists()

    # retried, with the same key or none: the same label, nothing bought
    for key in (f"k-{uid}", None):
        again = labels.buy_label(order.order_id, LabelIn(parcel=Parcel(**BOX)), ports, idempotency_key=key)
        assert not again.created and again.shipment.label.tracking_number == label.tracking_number
    assert len(sales_for(stack, sid)) == 1


def test_two_requests_at_once_buy_one_label(stack, ports, uid, address):
    order, *_ = paid_order(ports, uid, address)
    sid = order.shipments[0].shipment_id
    gate = stack.sandbox_carrier.hold("buy")
    results, errors = [], []

    def first():
        try:
            results.append(labels.buy_label(order.order_id, LabelIn(parcel=Parcel(**BOX)), ports))
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert gate.entered.wait(20), "the first purchase never reached the carrier"
        with pytest.raises(LabelInProgress) as err:  # the shipment is claimed while the carrier sells
            labels.buy_label(order.order_id, LabelIn(parcel=Parcel(**BOX)), ports)
        assert err.value.http_status == 409 and err.value.code == "label_in_progress"
    finally:
        gate.release()
        thread.join(30)
    assert not errors and results[0].created
    assert len(sales_for(stack, sid)) == 1
    again = labels.buy_label(order.order_id, LabelIn(parcel=Parcel(**BOX)), ports)
    assert again.shipment.label.tracking_number == results[0].shipment.label.tracking_number


def test_a_cancel_while_the_label_is_being_bought_is_refused_so_no_label_is_wasted(stack, ports, uid, address):
    """Before, the cancel went through and the purchase bought the label anyway (to be voided by hand)."""
    order, sku, warehouse_id = paid_order(ports, uid, address)
    gate = stack.sandbox_carrier.hold("buy")
    outcome = []

    def buy():
        try:
            outcome.append(labels.buy_label(order.order_id, LabelIn(parcel=Parcel(**BOX)), ports))
        except Exception as err:  # noqa: BLE001 - checked below
            outcome.append(err)

    thread = threading.Thread(target=buy)
    thread.start()
    try:
        assert gate.entered.wait(20)
        with pytest.raises(Conflict) as refused:
            service.cancel_order(order.order_id, ports, reason="customer changed their mind")
        assert "being bought" in refused.value.message
    finally:
        gate.release()
        thread.join(30)
    [result] = outcome
    assert not isinstance(result, Exception), result
    done = wait_for(ports, order.order_id, OrderStatus.COMPLETED)  # the label it paid for ships the order
    assert done.shipments[0].label.status == "purchased"
    assert len(sales_for(stack, done.shipments[0].shipment_id)) == 1
    level = next(lv for lv in ports.inventory.levels(sku) if lv.warehouse_id == warehouse_id)
    assert (level.on_hand, level.committed) == (8, 0)


def test_a_failed_purchase_frees_the_claim_and_the_retry_finishes_the_same_carrier_shipment(stack, ports, uid,
                                                                                             address):
    order, *_ = paid_order(ports, uid, address)
    sid = order.shipments[0].shipment_id
    ports.carriers.accounts.put(CarrierAccount(carrier_id=f"flaky-{uid}", type="sandbox", max_attempts=1,
                                               base_url=stack.sandbox_carrier.url))
    body = LabelIn(parcel=Parcel(**BOX), carrier_id=f"flaky-{uid}", service="Priority")
    stack.sandbox_carrier.fail(500, count=1, on="buy")
    with pytest.raises(CarrierUnavailable) as err:
        labels.buy_label(order.order_id, body, ports)
    assert err.value.http_status == 503
    failed = ports.orders.get(order.order_id).shipment(sid)
    assert failed.label.status == "failed" and "HTTP 500" in failed.label.error
    assert failed.label.provider_shipment_id.startswith("shp_") and failed.status != ShipmentStatus.SHIPPED

    creates_before = sum(1 for r in stack.sandbox_carrier.requests if r["path"] == "/v2/shipments")
    result = labels.buy_label(order.order_id, body, ports)
    assert result.created and result.shipment.label.service == "Priority"
    assert result.shipment.label.provider_shipment_id == failed.label.provider_shipment_id  # resumed, not re-created
    assert sum(1 for r in stack.sandbox_carrier.requests if r["path"] == "/v2/shipments") == creates_before
    assert len(sales_for(stack, sid)) == 1
    wait_for(ports, order.order_id, OrderStatus.COMPLETED)


def test_a_dead_requests_claim_is_taken_over_after_its_lease_and_its_purchase_recovered(stack, ports, uid,
                                                                                        address):
    order, *_ = paid_order(ports, uid, address)
    sid = order.shipments[0].shipment_id
    # A request bought the label, then died before recording it: only its claim is left.
    carrier = EasyPostClient("sandbox", stack.sandbox_carrier.url)
    bought = carrier.buy_label(labels.LabelRequest(reference=sid, from_address=DOCK, to_address=order.shipping_address,
                                                   parcel=Parcel(**BOX)))
    now = int(time.time())

    def orphan(o):
        o.shipment(sid).label = ShipmentLabel(status="purchasing", carrier_id="sandbox", claim_id="lbl_dead",
                                              claimed_at=now, provider_shipment_id=bought.provider_shipment_id)

    ports.orders.update(order.order_id, orphan)
    with pytest.raises(LabelInProgress):  # still within its lease
        labels.buy_label(order.order_id, LabelIn(parcel=Parcel(**BOX)), ports, clock=lambda: now + 10)

    result = labels.buy_label(order.order_id, LabelIn(parcel=Parcel(**BOX)), ports,
                              clock=lambda: now + labels.LEASE_SECONDS + 1)
    assert result.created and result.shipment.label.tracking_number == bought.tracking_number
    assert len(sales_for(stack, sid)) == 1  # found at the carrier, not bought again
    wait_for(ports, order.order_id, OrderStatus.COMPLETED)


def test_refusals(stack, ports, uid, address):
    body = LabelIn(parcel=Parcel(**BOX))
    # not paid yet: it waits for stock
    sku = f"NONE-{uid}"
    ports.settings.put_warehouse(Warehouse(warehouse_id=f"empty-{uid}", name="Empty", priority=1, address=DOCK))
    ports.inventory.set_on_hand(sku, f"empty-{uid}", 0)
    waiting, _ = service.create_order(make_order([(sku, 1)], address), ports)
    wait_for(ports, waiting.order_id, OrderStatus.AWAITING_STOCK)
    with pytest.raises(Conflict) as err:
        labels.buy_label(waiting.order_id, body, ports)
    assert err.value.http_status == 409 and err.value.details["status"] == "awaiting_stock"

    with pytest.raises(NotFound):
        labels.buy_label("ord_missing", body, ports)

    order, *_ = paid_order(ports, uid + "b", address, with_address=False)
    with pytest.raises(ValidationFailed) as err:  # no ship-from address anywhere
        labels.buy_label(order.order_id, body, ports)
    assert err.value.details["field"] == "from_address"
    with pytest.raises(NotFound) as err:
        labels.buy_label(order.order_id, LabelIn(parcel=Parcel(**BOX), carrier_id="no-such-carrier"), ports)
    assert err.value.details["field"] == "carrier_id"
    with pytest.raises(NotFound):
        labels.buy_label(order.order_id, LabelIn(parcel=Parcel(**BOX), shipment_id="nope"), ports)
    with pytest.raises(NotFound):
        labels.label_file(order.order_id, order.shipments[0].shipment_id, ports)  # no label yet

    # tracking entered by hand first: the shipment has left, no label to buy
    service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1Z999AA1"), ports)
    with pytest.raises(Conflict) as err:
        labels.buy_label(order.order_id, body, ports)
    assert "already shipped" in err.value.message
    assert ports.orders.get(order.order_id).shipments[0].label is None


def test_on_aws_labels_go_to_s3_and_keys_to_secrets_manager(stack, ports, uid, address):
    """The AWS adapters against the stack's moto: an S3 bucket for the files, Secrets Manager for the key."""
    from pydantic import SecretStr

    from orderflow.adapters.aws import client
    from orderflow.carriers.accounts import SecretsManagerKeys
    from orderflow.carriers.hub import Carriers
    from orderflow.carriers.storage import S3LabelStore

    bucket = f"orderflow-labels-{uid}"
    client("s3").create_bucket(Bucket=bucket)
    keys = SecretsManagerKeys(prefix=f"test-{uid}/carriers/")
    carrier_id = f"ep-{uid}"
    ref = keys.put(carrier_id, SecretStr("EZTK_in_secrets_manager"))
    assert ref == f"secretsmanager:test-{uid}/carriers/{carrier_id}"
    secret = client("secretsmanager").get_secret_value(SecretId=f"test-{uid}/carriers/{carrier_id}")
    assert secret["SecretString"] == '{"api_key": "EZTK_in_secrets_manager"}'
    assert keys.get(carrier_id).get_secret_value() == "EZTK_in_secrets_manager"

    order, *_ = paid_order(ports, uid, address)
    sid = order.shipments[0].shipment_id
    local_carriers = ports.carriers  # the shared ports, with the AWS adapters for this test only
    ports.carriers = Carriers(ports.settings, keys=keys, store=S3LabelStore(bucket))
    try:
        # an EasyPost account (the key is required and sent), pointed at the sandbox: it speaks EasyPost's API
        ports.carriers.accounts.put(CarrierAccount(carrier_id=carrier_id, type="easypost",
                                                   base_url=stack.sandbox_carrier.url))
        body = LabelIn(parcel=Parcel(**BOX), carrier_id=carrier_id, format="zpl")
        result = labels.buy_label(order.order_id, body, ports)
        assert result.created and result.shipment.label.storage_key == f"labels/{order.order_id}/{sid}.zpl"
        stored = client("s3").get_object(Bucket=bucket, Key=result.shipment.label.storage_key)
        assert stored["ContentType"] == "application/zpl" and stored["Body"].read().startswith(b"^XA")
        assert labels.label_file(order.order_id, sid, ports)[0].startswith(b"^XA")
    finally:
        ports.carriers = local_carriers

    items = client("dynamodb").scan(TableName=ports.settings.table)["Items"]
    assert "EZTK_in_secrets_manager" not in str(items)  # the table never holds a key
    assert any(i["id"]["S"] == carrier_id for i in items)
    wait_for(ports, order.order_id, OrderStatus.COMPLETED)
