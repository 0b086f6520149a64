"""Amazon FBA through the real ASL on the local stack: the workflow's wait (AwaitFulfilment) sends the shipment to the
fba-orders queue, the local poller hands it to functions.forward_fba (createFulfillmentOrder on a sandbox FBA
server over real sockets), the poll reads Amazon's tracking and resumes the execution.

Each test has its own sandbox FBA server, Amazon channel, FBA warehouse and SKU; the sandbox moves an order a
step every 50 ms (Received, Planning, Processing, Complete) unless a test holds it.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import httpx
import pytest

from orderflow import service
from orderflow.adapters.aws import client
from orderflow.adapters.channel_store import ChannelStore, default_credentials
from orderflow.errors import Conflict
from orderflow.fba import tracking
from orderflow.fba.accounts import RETRY_BASE_ENV, FbaAccount, FbaStore
from orderflow.fba.cancellation import recall_fba_shipments
from orderflow.fba.forwarding import forward
from orderflow.fulfillment import ForwardMessage
from orderflow.models import Allocation, Order, OrderStatus, Shipment, ShipmentStatus
from orderflow.wiring import default_ports
from orderflow_local.lambda_binding import LocalLambdaContext
from orderflow_local.queues import sqs_event
from orderflow_local.sandbox.fba import FbaSandbox
from tests.integration.conftest import add_warehouse, final_state, make_order, wait_for

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def fba_runtime(stack):
    """The fba-orders queue's poller and the poll job (an hour apart: the tests poll themselves)."""
    return stack.start_fba(poll_every=3600)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch):
    monkeypatch.setenv(RETRY_BASE_ENV, "0.01")


@dataclass
class Fba:
    sandbox: FbaSandbox
    warehouse_id: str
    channel_id: str
    sku: str
    ports: object
    address: dict

    def order(self, quantity: int = 2) -> Order:
        order, _ = service.create_order(make_order([(self.sku, quantity)], self.address), self.ports)
        return order

    def forwarded(self, order_id: str) -> Order:
        return wait_for(self.ports, order_id, OrderStatus.IN_FULFILLMENT, OrderStatus.NEEDS_ATTENTION)

    def poll(self) -> tracking.PollReport:
        return tracking.poll(self.ports, warehouse_id=self.warehouse_id)

    def poll_until(self, order_id: str, *statuses: OrderStatus, timeout: float = 30) -> Order:
        deadline = time.monotonic() + timeout
        while True:
            self.poll()
            order = self.ports.orders.get(order_id)
            if order.status in statuses:
                return order
            if time.monotonic() > deadline:
                raise AssertionError(f"{order_id} is {order.status}: {[(e.type, e.detail) for e in order.events]}")
            time.sleep(0.05)

    def open(self) -> list:
        return FbaStore(default_ports().documents).open_orders(self.warehouse_id)


@pytest.fixture
def fba(stack, ports, uid, address, fba_runtime):
    sandbox = FbaSandbox(step_seconds=0.05).start()
    channel_id = f"amz-{uid}"
    config, credentials = sandbox.channel(channel_id)
    default_credentials().put(channel_id, credentials)
    ChannelStore().put(config)
    warehouse_id = f"fba-{uid}"
    add_warehouse(ports, warehouse_id, kind="fba", sla_hours=0.5)
    sku = f"SKU-{uid}"
    ports.inventory.set_on_hand(sku, warehouse_id, 10)
    FbaStore(default_ports().documents).put_account(FbaAccount(warehouse_id=warehouse_id, channel_id=channel_id))
    yield Fba(sandbox, warehouse_id, channel_id, sku, ports, address)
    sandbox.stop()
    ChannelStore().delete(channel_id)


def ledger(ports, sku):
    return sorted(e["kind"] for e in ports.inventory.ledger_for(sku, limit=100) if e["kind"] != "set_on_hand")


def execution(stack, order_id, attempt=1, until=("SUCCEEDED", "FAILED", "ABORTED"), timeout=40) -> dict:
    from orderflow.adapters.stepfunctions import execution_name

    arn = f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:{execution_name(order_id, attempt)}"
    deadline = time.monotonic() + timeout
    while True:
        desc = client("stepfunctions").describe_execution(executionArn=arn)
        if desc["status"] in until or time.monotonic() > deadline:
            return desc
        time.sleep(0.1)


def message_of(order: Order, stack) -> ForwardMessage:
    shipment = order.shipments[0]
    return ForwardMessage(order_id=order.order_id, shipment_id=shipment.shipment_id, warehouse_id=shipment.warehouse_id,
                          method="fba", task_token=order.fulfilment_token or "no-token",
                          execution_id=f"{stack.state_machine_arn.replace(':stateMachine:', ':execution:')}:"
                                       f"{order.order_id}")


def forward_handler(stack, messages: list[ForwardMessage], same_id: bool = False) -> dict:
    """functions.forward_fba as Lambda's event source mapping calls it, with these messages as a batch."""
    from functions.forward_fba.handler import lambda_handler

    queue_arn = client("sqs").get_queue_attributes(QueueUrl=stack.queue_urls["fba-orders"],
                                                   AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    raw = [{"MessageId": f"m-{i}", "ReceiptHandle": f"r-{i}", "Body": m.model_dump_json()}
           for i, m in enumerate(messages)]
    return lambda_handler(sqs_event(queue_arn, raw), LocalLambdaContext("orderflow-forward-fba"))


def stored_order(fba: Fba, status: OrderStatus = OrderStatus.NEW) -> Order:
    """An order with one FBA shipment, stored without a workflow (for the forwarder called directly)."""
    new = make_order([(fba.sku, 1)], fba.address)
    order = Order.from_new(new)
    plan = Allocation(rule_set="test", lines=[{"line_no": 1, "sku": fba.sku, "quantity": 1,
                                                "warehouse_id": fba.warehouse_id}], status="reserved")
    order.allocations = [plan]
    order.shipments = [Shipment(shipment_id=f"{order.order_id}-1", warehouse_id=fba.warehouse_id, method="fba",
                                lines=plan.lines)]
    order.status = status
    fba.ports.orders.create(order)
    return order


# -- the whole path --------------------------------------------------------------------------------------------


def test_an_fba_shipment_goes_to_amazon_and_its_tracking_completes_the_order(stack, fba):
    order = fba.order(quantity=2)
    forwarded = fba.forwarded(order.order_id)
    assert forwarded.status == OrderStatus.IN_FULFILLMENT, forwarded.attention_reason
    shipment = forwarded.shipments[0]
    assert shipment.status == ShipmentStatus.FORWARDED and shipment.fulfiller_ref == shipment.shipment_id
    sent = fba.sandbox.calls("create")
    assert [r["status"] for r in sent] == [200]
    body = sent[0]["json"]
    assert body["sellerFulfillmentOrderId"] == shipment.shipment_id
    assert body["items"] == [{"sellerSku": fba.sku, "sellerFulfillmentOrderItemId": "line-1", "quantity": 2,
                              "perUnitDeclaredValue": {"currencyCode": "USD", "value": "10.00"}}]
    assert body["destinationAddress"]["postalCode"] == fba.address["postal_code"]
    assert [r.shipment_id for r in fba.open()] == [shipment.shipment_id]

    done = fba.poll_until(order.order_id, OrderStatus.COMPLETED)
    package = fba.sandbox.fulfillment_orders[shipment.shipment_id].packages[0]
    assert (done.shipments[0].carrier, done.shipments[0].tracking_number) == (package["carrierCode"],
                                                                             package["trackingNumber"])
    assert execution(stack, order.order_id)["status"] == "SUCCEEDED"
    assert ledger(fba.ports, fba.sku) == ["reserve", "ship"]  # the stock left once
    level = fba.ports.inventory.levels(fba.sku)[0]
    assert (level.on_hand, level.committed) == (8, 0)
    assert [e.type for e in done.events if e.type in ("forwarded", "tracking_added", "completed")] == [
        "forwarded", "tracking_added", "completed"]
    assert fba.open() == []


def test_the_same_message_delivered_twice_creates_one_fulfillment_order(stack, fba):
    order = fba.order()
    forwarded = fba.forwarded(order.order_id)
    message = message_of(forwarded, stack)
    result = forward_handler(stack, [message, message])
    assert result == {"batchItemFailures": []}
    assert len(fba.sandbox.fulfillment_orders) == 1
    assert [r["status"] for r in fba.sandbox.calls("create")] == [200]
    again = fba.ports.orders.get(order.order_id)
    assert [e.type for e in again.events].count("forwarded") == 1
    done = fba.poll_until(order.order_id, OrderStatus.COMPLETED)
    assert ledger(fba.ports, fba.sku) == ["reserve", "ship"]
    assert done.shipments[0].tracking_number


def test_two_forwarders_at_once_make_one_fulfillment_order(fba):
    order = stored_order(fba)
    message = ForwardMessage(order_id=order.order_id, shipment_id=order.shipments[0].shipment_id,
                             warehouse_id=fba.warehouse_id, method="fba", task_token="token-not-waited-on")
    outcomes: list[str] = []
    threads = [threading.Thread(target=lambda: outcomes.append(forward(message, fba.ports))) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(outcomes) in (["created", "existing"], ["created", "created"])
    assert list(fba.sandbox.fulfillment_orders) == [order.shipments[0].shipment_id]
    assert [r["status"] for r in fba.sandbox.calls("create")].count(200) == 1
    assert fba.ports.orders.get(order.order_id).status == OrderStatus.IN_FULFILLMENT


def test_a_poll_run_twice_or_twice_at_once_completes_the_order_once(stack, fba):
    order = fba.order()
    fba.forwarded(order.order_id)
    fba.sandbox.hold()
    shipment_id = f"{order.order_id}-1"
    fba.sandbox.set_status(shipment_id, "Complete")
    reports: list[tracking.PollReport] = []
    threads = [threading.Thread(target=lambda: reports.append(fba.poll())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    third = fba.poll()
    assert third.checked == 0  # nothing open any more
    done = wait_for(fba.ports, order.order_id, OrderStatus.COMPLETED)
    assert [e.type for e in done.events].count("tracking_added") == 1
    assert [e.type for e in done.events].count("completed") == 1
    assert execution(stack, order.order_id)["status"] == "SUCCEEDED"
    assert ledger(fba.ports, fba.sku) == ["reserve", "ship"]
    assert sum(r.shipped for r in reports) >= 1


def test_several_packages_and_what_amazon_could_not_ship_are_on_the_completed_order(stack, fba, ports, uid):
    other = f"OTHER-{uid}"
    ports.inventory.set_on_hand(other, fba.warehouse_id, 10)
    fba.sandbox.packages = 2
    fba.sandbox.partial_skus.add(other)
    order, _ = service.create_order(make_order([(fba.sku, 2), (other, 1)], fba.address), ports)
    fba.forwarded(order.order_id)
    done = fba.poll_until(order.order_id, OrderStatus.COMPLETED)
    packages = fba.sandbox.fulfillment_orders[f"{order.order_id}-1"].packages
    assert done.shipments[0].tracking_number == packages[0]["trackingNumber"]
    note = [e.detail for e in done.events if e.type == "fba_shipped"]
    assert note == [f"{order.order_id}-1 ({order.order_id}-1): 2 packages: "
                    f"{packages[0]['carrierCode']} {packages[0]['trackingNumber']}, "
                    f"{packages[1]['carrierCode']} {packages[1]['trackingNumber']}; "
                    f"not shipped: 1 x {other} unfulfillable"]


def test_throttling_and_server_errors_from_amazon_are_retried(stack, fba):
    fba.sandbox.inject(status=429, count=2, retry_after=0.01, path_prefix="/fba/")
    fba.sandbox.inject(status=500, count=2, path_prefix="/fba/")
    order = fba.order()
    forwarded = fba.forwarded(order.order_id)
    assert forwarded.status == OrderStatus.IN_FULFILLMENT
    statuses = [r["status"] for r in fba.sandbox.api_requests("/fba/")]
    assert statuses.count(429) == 2 and statuses.count(500) == 2
    assert len(fba.sandbox.fulfillment_orders) == 1
    fba.sandbox.inject(status=503, count=2, path_prefix="/fba/")
    fba.poll_until(order.order_id, OrderStatus.COMPLETED)
    assert ledger(fba.ports, fba.sku) == ["reserve", "ship"]


def test_amazon_down_longer_than_the_retries_fails_the_record_for_sqs_to_retry(stack, fba):
    from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError

    order = stored_order(fba)
    message = ForwardMessage(order_id=order.order_id, shipment_id=order.shipments[0].shipment_id,
                             warehouse_id=fba.warehouse_id, method="fba", task_token="token-not-waited-on")
    cancelled = stored_order(fba, status=OrderStatus.CANCELLED)  # needs no call to Amazon: it goes through
    other = ForwardMessage(order_id=cancelled.order_id, shipment_id=cancelled.shipments[0].shipment_id,
                           warehouse_id=fba.warehouse_id, method="fba", task_token="token-not-waited-on")
    fba.sandbox.inject(status=500, count=1000, path_prefix="/fba/")
    assert forward_handler(stack, [message, other]) == {"batchItemFailures": [{"itemIdentifier": "m-0"}]}
    with pytest.raises(BatchProcessingError):  # a batch that failed whole is retried whole, as on Lambda
        forward_handler(stack, [message])
    assert fba.sandbox.fulfillment_orders == {}
    fba.sandbox.faults.clear()
    assert forward_handler(stack, [message]) == {"batchItemFailures": []}  # the redelivery goes through
    assert list(fba.sandbox.fulfillment_orders) == [order.shipments[0].shipment_id]


# -- Amazon will not ship it ------------------------------------------------------------------------------------


def test_an_unfulfillable_order_needs_attention_with_amazons_reason(stack, fba):
    fba.sandbox.unfulfillable_skus.add(fba.sku)
    order = fba.order(quantity=3)
    fba.forwarded(order.order_id)
    stuck = fba.poll_until(order.order_id, OrderStatus.NEEDS_ATTENTION)
    assert stuck.attention_reason == (f"Amazon FBA reported fulfillment order {order.order_id}-1 as unfulfillable "
                                      f"(Amazon has no sellable units for it): 3 x {fba.sku} unfulfillable")
    assert execution(stack, order.order_id)["status"] != "RUNNING"
    assert wait_for(fba.ports, order.order_id, OrderStatus.NEEDS_ATTENTION).attention_reason == stuck.attention_reason
    assert ledger(fba.ports, fba.sku) == ["reserve"]  # nothing shipped; the units stay committed to it
    assert fba.open() == []


def test_after_the_seller_fixes_it_a_redrive_ships_it_as_a_new_fulfillment_order(stack, fba):
    fba.sandbox.unfulfillable_skus.add(fba.sku)
    order = fba.order()
    fba.forwarded(order.order_id)
    fba.poll_until(order.order_id, OrderStatus.NEEDS_ATTENTION)
    execution(stack, order.order_id)
    fba.sandbox.unfulfillable_skus.clear()  # the seller sent Amazon more units
    service.redrive_order(order.order_id, fba.ports, reason="stock sent to Amazon")
    forwarded = wait_for(fba.ports, order.order_id, OrderStatus.IN_FULFILLMENT)
    assert forwarded.shipments[0].fulfiller_ref == f"{order.order_id}-1-a2"
    assert sorted(fba.sandbox.fulfillment_orders) == [f"{order.order_id}-1", f"{order.order_id}-1-a2"]
    fba.poll_until(order.order_id, OrderStatus.COMPLETED)
    assert execution(stack, order.order_id, attempt=2)["status"] == "SUCCEEDED"
    assert ledger(fba.ports, fba.sku) == ["reserve", "ship"]


def test_amazon_cancelling_by_itself_needs_attention(stack, fba):
    order = fba.order()
    fba.forwarded(order.order_id)
    fba.sandbox.hold()
    fba.sandbox.set_status(f"{order.order_id}-1", "Cancelled")
    stuck = fba.poll_until(order.order_id, OrderStatus.NEEDS_ATTENTION)
    assert "as cancelled by Amazon (orderflow did not ask for it)" in stuck.attention_reason
    assert execution(stack, order.order_id)["status"] != "RUNNING"


def test_an_order_amazon_refuses_needs_attention_at_once(stack, fba):
    fba.sandbox.skus = {"SOME-OTHER-SKU"}
    order = fba.order()
    stuck = wait_for(fba.ports, order.order_id, OrderStatus.NEEDS_ATTENTION)
    assert f"Amazon refused fulfillment order {order.order_id}-1" in stuck.attention_reason
    assert "The SellerSKU for Item Id: line-1 is invalid" in stuck.attention_reason
    assert fba.open() == [] and fba.sandbox.fulfillment_orders == {}
    assert execution(stack, order.order_id)["status"] != "RUNNING"


def test_an_fba_warehouse_without_an_account_needs_attention(stack, ports, uid, address, fba_runtime):
    add_warehouse(ports, f"bare-{uid}", kind="fba")
    ports.inventory.set_on_hand(f"BARE-{uid}", f"bare-{uid}", 5)
    order, _ = service.create_order(make_order([(f"BARE-{uid}", 1)], address), ports)
    stuck = wait_for(ports, order.order_id, OrderStatus.NEEDS_ATTENTION)
    assert stuck.attention_reason == (f"Amazon FBA: warehouse bare-{uid} has no FBA account; connect one with "
                                      f"PUT /fba/bare-{uid}")


def test_a_message_of_a_cancelled_order_is_acknowledged_and_creates_nothing(stack, fba):
    order = stored_order(fba, status=OrderStatus.CANCELLED)
    message = ForwardMessage(order_id=order.order_id, shipment_id=order.shipments[0].shipment_id,
                             warehouse_id=fba.warehouse_id, method="fba", task_token="token-of-a-cancelled-order")
    assert forward_handler(stack, [message]) == {"batchItemFailures": []}
    assert fba.sandbox.calls("create") == [] and fba.sandbox.fulfillment_orders == {}


# -- cancelling -------------------------------------------------------------------------------------------------


def test_cancelling_after_forwarding_asks_amazon_to_cancel_first(stack, fba):
    fba.sandbox.hold()  # Amazon keeps it at Received: still cancellable
    order = fba.order()
    forwarded = fba.forwarded(order.order_id)
    shipment_id = forwarded.shipments[0].shipment_id
    assert recall_fba_shipments(forwarded, fba.ports) == {shipment_id}
    assert [r["status"] for r in fba.sandbox.calls("cancel")] == [200]
    assert fba.sandbox.status_of(shipment_id) == "Cancelled"
    assert fba.open()[0].cancel_requested_at
    report = fba.poll()  # the Cancelled Amazon shows now was ours: not a reason for attention
    assert [i.outcome for i in report.items] == ["waiting"]
    assert fba.ports.orders.get(order.order_id).status == OrderStatus.IN_FULFILLMENT


def test_cancel_after_forwarding_to_fba_cancels_at_amazon_and_brings_the_stock_back_once(stack, fba):
    fba.sandbox.hold()
    order = fba.order(quantity=3)
    fba.forwarded(order.order_id)
    cancelled = service.cancel_order(order.order_id, fba.ports, reason="customer changed their mind")
    assert (fba.sandbox.fulfillment_orders[f"{order.order_id}-1"].forced or "").lower() == "cancelled"
    assert cancelled.status == OrderStatus.CANCELLED
    assert execution(stack, order.order_id)["status"] == "SUCCEEDED"  # ended in the workflow's Cancelled state
    assert final_state(stack, order.order_id) == "Cancelled"
    level = fba.ports.inventory.levels(fba.sku)[0]
    assert (level.on_hand, level.committed) == (10, 0)
    assert ledger(fba.ports, fba.sku) == ["release", "reserve"]
    report = fba.poll()
    assert [i.outcome for i in report.items] in ([], ["closed"])
    assert fba.open() == []
    assert len(fba.sandbox.fulfillment_orders) == 1  # the retried task created nothing new


def test_a_cancel_amazon_refuses_is_a_conflict_and_changes_nothing(stack, fba):
    fba.sandbox.hold()
    order = fba.order()
    forwarded = fba.forwarded(order.order_id)
    fba.sandbox.set_status(f"{order.order_id}-1", "Processing")
    with pytest.raises(Conflict, match="cannot be cancelled"):
        recall_fba_shipments(forwarded, fba.ports)
    with pytest.raises(Conflict, match="cannot be cancelled"):
        service.cancel_order(order.order_id, fba.ports)
    assert fba.open()[0].cancel_requested_at is None
    assert fba.ports.orders.get(order.order_id).status == OrderStatus.IN_FULFILLMENT


# -- the API and the local stack's schedule ---------------------------------------------------------------------


def test_the_fba_routes(stack, fba, ports, uid):
    api = httpx.Client(base_url=stack.api_url, headers={"Authorization": "Bearer test-token"}, timeout=20)
    body = {"channel_id": fba.channel_id, "shipping_speed": "Priority", "comment": "Thanks!"}
    updated = api.put(f"/fba/{fba.warehouse_id}", json=body)
    assert updated.status_code == 200, updated.text
    assert updated.json()["shipping_speed"] == "Priority"
    assert updated.json()["channel"] == {"exists": True, "credentials_stored": True,
                                         "marketplace_id": fba.sandbox.marketplace_id}
    add_warehouse(ports, f"fba2-{uid}", kind="fba")
    created = api.put(f"/fba/fba2-{uid}", json={"channel_id": fba.channel_id})
    assert created.status_code == 201 and created.json()["shipping_speed"] == "Standard"
    assert api.get(f"/fba/fba2-{uid}").json()["open_fulfillment_orders"] == []
    assert f"fba2-{uid}" in [a["warehouse_id"] for a in api.get("/fba").json()["accounts"]]

    add_warehouse(ports, f"own-{uid}")
    assert api.put(f"/fba/own-{uid}", json=body).status_code == 409
    assert api.put(f"/fba/nowhere-{uid}", json=body).status_code == 404
    unknown = api.put(f"/fba/{fba.warehouse_id}", json={"channel_id": f"nope-{uid}"})
    assert unknown.status_code == 422 and unknown.json()["error"]["details"]["field"] == "channel_id"
    plain = api.put(f"/fba/{fba.warehouse_id}", json={**body, "endpoint": "http://example.com"})
    assert plain.status_code == 422
    assert api.put(f"/fba/{fba.warehouse_id}", json={**body, "shipping_speed": "Overnight"}).status_code == 422
    assert api.get(f"/fba/own-{uid}").status_code == 404

    order = fba.order()
    fba.forwarded(order.order_id)
    listed = api.get(f"/fba/{fba.warehouse_id}").json()["open_fulfillment_orders"]
    assert [o["seller_fulfillment_order_id"] for o in listed] == [f"{order.order_id}-1"]
    request = fba.sandbox.calls("create")[-1]["json"]
    assert request["shippingSpeedCategory"] == "Priority" and request["displayableOrderComment"] == "Thanks!"
    deadline = time.monotonic() + 30
    while fba.ports.orders.get(order.order_id).status != OrderStatus.COMPLETED:
        report = api.post(f"/fba/{fba.warehouse_id}/poll")
        assert report.status_code == 200 and report.json()["warehouse_id"] == fba.warehouse_id
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert api.post(f"/fba/own-{uid}/poll").status_code == 404


def test_the_local_stack_runs_the_poll_on_its_schedule(stack, fba):
    order = fba.order()
    fba.forwarded(order.order_id)
    deadline = time.monotonic() + 30
    while fba.ports.orders.get(order.order_id).status != OrderStatus.COMPLETED:
        result = stack.scheduler.run_now(stack.schedules.job_name("poll_fba"))  # the job functions.poll_fba runs as, every poll_every s
        assert set(result) >= {"checked", "shipped", "waiting", "needs_attention", "failed"}
        assert time.monotonic() < deadline
        time.sleep(0.05)


def test_a_woocommerce_order_shipped_by_amazon_fba_has_amazons_tracking_told_to_the_store(stack, fba):
    from decimal import Decimal

    from orderflow_local.sandbox.woocommerce import WooCommerceSandbox

    with WooCommerceSandbox(catalog={fba.sku: Decimal("10.00")}).start() as store:
        config, credentials = store.channel(f"woo-{fba.channel_id}")
        default_credentials().put(config.channel_id, credentials)
        ChannelStore().put(config)
        try:
            external_id = store.add_order(lines=[(fba.sku, 1)])
            order, _ = service.create_order(make_order([(fba.sku, 1)], fba.address, channel=config.channel_id,
                                                       external_id=external_id), fba.ports)
            assert fba.forwarded(order.order_id).status == OrderStatus.IN_FULFILLMENT
            done = fba.poll_until(order.order_id, OrderStatus.COMPLETED)
            number = done.shipments[0].tracking_number
            deadline = time.monotonic() + 30
            while store.orders[external_id].status != "fulfilled" and time.monotonic() < deadline:
                time.sleep(0.1)
            notes = [f["note"] for f in store.fulfillments if "note" in f]
            assert len(notes) == 1 and number in notes[0]  # Amazon's tracking number, in the customer's note
            assert store.orders[external_id].status == "fulfilled"  # and the order completed on the store
        finally:
            ChannelStore().delete(config.channel_id)
