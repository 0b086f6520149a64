"""Orders through the real ASL on moto's Step Functions interpreter, with our handlers."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import pytest

from orderflow import service
from orderflow.adapters.aws import client
from orderflow.errors import TransientError
from orderflow.models import Order, OrderStatus, ShipmentStatus
from orderflow.trace import execution_arn
from orderflow_local import lambda_binding, sfn_hub
from orderflow_local.stack import function_name
from tests.integration.conftest import add_warehouse, execution_status, final_state, make_order, wait_for


def history(stack, order_id):
    events = []
    for page in client("stepfunctions").get_paginator("get_execution_history").paginate(
            executionArn=execution_arn(stack.state_machine_arn, order_id)):
        events.extend(page["events"])
    return events


def ledger_entries(ports, sku):
    return [e for e in ports.inventory.ledger_for(sku, limit=100) if e["kind"] != "set_on_hand"]


def test_happy_path_allocates_reserves_waits_for_tracking_and_completes(stack, ports, uid, address):
    sku = f"SKU-{uid}"
    add_warehouse(ports, f"far-{uid}", priority=50)
    add_warehouse(ports, f"near-{uid}", priority=5)
    ports.inventory.set_on_hand(sku, f"far-{uid}", 10)
    ports.inventory.set_on_hand(sku, f"near-{uid}", 10)

    order, created = service.create_order(make_order([(sku, 3)], address), ports)
    assert created
    paid = wait_for(ports, order.order_id, OrderStatus.PAID)
    assert paid.allocation.warehouses() == [f"near-{uid}"]
    assert any(c["kept"] for c in paid.allocation.candidates)
    assert paid.shipments[0].status == ShipmentStatus.AWAITING_TRACKING
    assert paid.fulfilment_token  # the waiting execution's one token is kept on the order
    near = {lv.warehouse_id: lv for lv in ports.inventory.levels(sku)}[f"near-{uid}"]
    assert (near.on_hand, near.committed, near.available) == (10, 3, 7)

    service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1Z999AA1"), ports)
    done = wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    assert done.shipments[0].tracking_number == "1Z999AA1"
    assert execution_status(stack, order.order_id)["status"] == "SUCCEEDED"
    near = {lv.warehouse_id: lv for lv in ports.inventory.levels(sku)}[f"near-{uid}"]
    assert (near.on_hand, near.committed, near.available) == (7, 0, 7)
    kinds = sorted(e["kind"] for e in ledger_entries(ports, sku))
    assert kinds == ["reserve", "ship"]  # each stock change exactly once
    assert [e.type for e in done.events] == ["created", "allocated", "stock_reserved", "routed", "paid",
                                             "tracking_added", "completed"]


def lasting_threads() -> list[threading.Thread]:
    """The process's threads but those that serve one request or call at a time and end or idle
    (the embedded server's request threads, the hub's pool of I/O threads)."""
    return [t for t in threading.enumerate()
            if not t.name.startswith("sfn-io") and "process_request_thread" not in t.name]


def test_waiting_executions_hold_no_os_threads(stack, ports, uid, address):
    """Every paid order's execution waits for its shipment (a task token, possibly for days). On the
    embedded stack that wait is a few parked greenlets (orderflow_local/sfn_hub.py), not the six OS threads
    per order moto's interpreter holds on its own, so a stack that has seen thousands of orders does not
    hold thousands of threads (issue 10, item 7)."""
    assert sfn_hub.installed()
    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 100)
    before = lasting_threads()
    orders = [service.create_order(make_order([(sku, 1)], address), ports)[0] for _ in range(20)]
    for order in orders:
        wait_for(ports, order.order_id, OrderStatus.PAID, timeout=180)
    interpreter_threads = [t.name for t in threading.enumerate()
                           if "_execution_logic" in t.name or "WaitForTaskToken" in t.name or "(eval)" in t.name]
    assert interpreter_threads == []
    # 20 waiting orders held 120 more threads before; now none (a few may come and go: a poller's batch)
    assert len(lasting_threads()) - len(before) <= 5, sorted(t.name for t in set(lasting_threads()) - set(before))
    for i, order in enumerate(orders):
        service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number=f"1Z{uid}{i:04d}"),
                             ports)
    for order in orders:
        assert wait_for(ports, order.order_id, OrderStatus.COMPLETED, timeout=180).status == OrderStatus.COMPLETED


def test_unknown_sku_lands_in_needs_attention_with_the_reason(stack, ports, uid, address):
    order, _ = ports.orders.create(Order.from_new(make_order([(f"GHOST-{uid}", 1)], address)))
    ports.workflow.start(order.order_id)
    stuck = wait_for(ports, order.order_id, OrderStatus.NEEDS_ATTENTION)
    assert stuck.attention_reason == f"unknown SKU(s): GHOST-{uid} (no warehouse stocks them)"
    assert stuck.events[-1].type == "needs_attention"
    desc = execution_status(stack, order.order_id)
    assert desc["status"] == "FAILED"
    assert desc.get("error") == "UnknownSku"


def test_short_stock_waits_for_a_purchase_order_that_releases_it(stack, ports, uid, address):
    from orderflow.purchasing import PurchaseOrderStatus, ReceiptIn, ReorderRule

    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 1)
    ports.purchasing.put_rule(ReorderRule(sku=sku, supplier=f"acme-{uid}", warehouse_id=f"w-{uid}", multiple=6))
    order, _ = service.create_order(make_order([(sku, 2)], address), ports)
    waiting = wait_for(ports, order.order_id, OrderStatus.AWAITING_STOCK)
    assert waiting.allocation.status == "waiting"
    assert [(b.sku, b.quantity) for b in waiting.allocation.backordered] == [(sku, 2)]  # lines are not split
    assert ledger_entries(ports, sku) == []  # nothing was taken while it waits

    # the shortfall was drafted onto the supplier's purchase order, rounded to the pack size
    # (the allocate step drafts it right after it records the plan the status comes from: wait for it)
    deadline = __import__("time").monotonic() + 20
    while True:
        drafts = [po for po in ports.purchasing.list() if po.supplier == f"acme-{uid}"]
        if (drafts and drafts[0].lines) or __import__("time").monotonic() > deadline:
            break
        __import__("time").sleep(0.05)
    assert len(drafts) == 1 and drafts[0].status == PurchaseOrderStatus.DRAFT
    assert [(ln.sku, ln.quantity) for ln in drafts[0].lines] == [(sku, 6)]
    po = ports.purchasing.submit(drafts[0].po_id)
    deadline = __import__("time").monotonic() + 20
    while not ports.orders.get(order.order_id).stock_wait_token:
        assert __import__("time").monotonic() < deadline
        __import__("time").sleep(0.05)
    po, _ = ports.purchasing.receive(po.po_id, ReceiptIn(lines=[{"sku": sku, "quantity": 6}], receipt_id="r1"))
    assert service.release_waiting_orders(ports) == [order.order_id]
    paid = wait_for(ports, order.order_id, OrderStatus.PAID)
    assert [p.status for p in paid.allocations] == ["waiting", "reserved"]
    level = ports.inventory.levels(sku)[0]
    assert (level.on_hand, level.committed) == (7, 2)
    # the same receipt again changes nothing
    again, new = ports.purchasing.receive(po.po_id, ReceiptIn(lines=[{"sku": sku, "quantity": 6}], receipt_id="r1"))
    assert new is False and ports.inventory.levels(sku)[0].on_hand == 7


@pytest.fixture
def flaky_allocate(stack):
    """Make the prepare function fail with a transient error a given number of times."""
    from functions.prepare.handler import lambda_handler as real

    state = {"failures_left": 0, "calls": 0}

    def flaky(event, context):
        state["calls"] += 1
        if state["failures_left"] > 0:
            state["failures_left"] -= 1
            raise TransientError("DynamoDB is busy (ThrottlingException); retry")
        return real(event, context)

    lambda_binding.bind(function_name("prepare"), flaky)
    yield state
    lambda_binding.bind(function_name("prepare"), real)


def test_a_transient_error_is_retried_with_backoff_and_the_order_goes_on(stack, ports, uid, address,
                                                                        flaky_allocate):
    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    flaky_allocate["failures_left"] = 1
    order, _ = service.create_order(make_order([(sku, 1)], address), ports)
    paid = wait_for(ports, order.order_id, OrderStatus.PAID)
    assert paid.attention_reason is None
    assert flaky_allocate["calls"] == 2
    failed = [e for e in history(stack, order.order_id) if e["type"] == "TaskFailed"]
    assert [e["taskFailedEventDetails"]["error"] for e in failed] == ["TransientError"]


def test_an_unexpected_crash_is_not_retried_blindly_and_needs_attention(stack, ports, uid, address):
    from functions.prepare.handler import lambda_handler as real

    def crash(event, context):
        raise KeyError("bug")

    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    lambda_binding.bind(function_name("prepare"), crash)
    try:
        order, _ = service.create_order(make_order([(sku, 1)], address), ports)
        stuck = wait_for(ports, order.order_id, OrderStatus.NEEDS_ATTENTION)
    finally:
        lambda_binding.bind(function_name("prepare"), real)
    assert stuck.attention_reason.startswith("KeyError")


def test_replayed_steps_and_a_second_start_change_stock_once(stack, ports, uid, address):
    from functions.prepare.handler import lambda_handler as prepare_handler
    from orderflow_local.lambda_binding import LocalLambdaContext

    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    order, _ = service.create_order(make_order([(sku, 2)], address), ports)
    wait_for(ports, order.order_id, OrderStatus.PAID)

    # Step Functions retrying a step that had succeeded, and a second start of the same order:
    prepare_handler({"order_id": order.order_id}, LocalLambdaContext(function_name="replay"))
    again = ports.workflow.start(order.order_id)  # same name and input: AWS hands back the same execution
    assert again in (None, execution_arn(stack.state_machine_arn, order.order_id))
    runs = client("stepfunctions").list_executions(stateMachineArn=stack.state_machine_arn)["executions"]
    assert [e["name"] for e in runs].count(order.order_id) == 1
    # the same order created again through the idempotent path starts nothing new either
    level = ports.inventory.levels(sku)[0]
    assert (level.on_hand, level.committed) == (5, 2)
    assert [e["kind"] for e in ledger_entries(ports, sku)] == ["reserve"]


def test_the_same_channel_order_twice_is_one_order(stack, ports, uid, address):
    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    new = make_order([(sku, 1)], address, channel="manual", external_id=f"ext-{uid}")
    first, created_first = service.create_order(new, ports)
    second, created_second = service.create_order(new, ports)
    assert (created_first, created_second) == (True, False)
    assert second.order_id == first.order_id


def test_manual_completion_resumes_the_workflow(stack, ports, uid, address):
    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    order, _ = service.create_order(make_order([(sku, 2)], address), ports)
    wait_for(ports, order.order_id, OrderStatus.PAID)
    service.complete_manually(order.order_id, ports)
    done = wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    assert "completed_manually" in [e.type for e in done.events]
    level = ports.inventory.levels(sku)[0]
    assert (level.on_hand, level.committed) == (3, 0)


def test_trace_reads_the_execution_history(stack, ports, uid, address):
    from orderflow import trace

    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    order, _ = service.create_order(make_order([(sku, 1)], address), ports)
    wait_for(ports, order.order_id, OrderStatus.PAID)
    deadline = time.monotonic() + 60
    while True:  # the order is paid inside the wait's Lambda; its TaskSubmitted event follows the Lambda's return
        execution, events = trace.fetch(client("stepfunctions"), stack.state_machine_arn, order.order_id)
        text = "\n".join(trace.render(order.order_id, execution, events, width=2000))
        if "waiting for stock or the shipments" in text or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    for state in ("Prepare", "AwaitFulfilment"):
        assert f"▶ {state}" in text
    # the one Prepare task says what it did: the plan, the reservation, the route
    assert '"allocated":' in text and '"reserved":true' in text and '"routed":' in text
    assert "waiting for stock or the shipments" in text


def test_orders_racing_for_the_last_units_never_oversell(stack, ports, uid, address):
    from concurrent.futures import ThreadPoolExecutor

    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    with ThreadPoolExecutor(6) as pool:
        orders = list(pool.map(lambda _: service.create_order(make_order([(sku, 1)], address), ports)[0],
                               range(12)))
    final = [wait_for(ports, o.order_id, OrderStatus.PAID, OrderStatus.AWAITING_STOCK) for o in orders]
    paid = [o for o in final if o.status == OrderStatus.PAID]
    level = ports.inventory.levels(sku)[0]
    assert len(paid) == 5
    assert all(o.status == OrderStatus.AWAITING_STOCK for o in final if o not in paid)
    assert (level.on_hand, level.committed, level.available) == (5, 5, 0)
    assert len([e for e in ledger_entries(ports, sku) if e["kind"] == "reserve"]) == 5


def test_cancel_stops_the_workflow_and_releases_stock_exactly_once(stack, ports, uid, address):
    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    order, _ = service.create_order(make_order([(sku, 2)], address), ports)
    wait_for(ports, order.order_id, OrderStatus.PAID)

    cancelled = service.cancel_order(order.order_id, ports, reason="customer changed their mind")
    again = service.cancel_order(order.order_id, ports, reason="clicked twice")
    assert cancelled.status == again.status == OrderStatus.CANCELLED
    desc = execution_status(stack, order.order_id)
    assert desc["status"] == "SUCCEEDED" and final_state(stack, order.order_id) == "Cancelled"  # not a failure
    level = ports.inventory.levels(sku)[0]
    assert (level.on_hand, level.committed, level.available) == (5, 0, 5)
    assert sorted(e["kind"] for e in ledger_entries(ports, sku)) == ["release", "reserve"]
    types = [e.type for e in ports.orders.get(order.order_id).events]
    assert types.count("cancelled") == 1 and types.count("stock_released") == 1


def test_a_completed_order_cannot_be_cancelled(stack, ports, uid, address):
    from orderflow.errors import Conflict

    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    order, _ = service.create_order(make_order([(sku, 1)], address), ports)
    wait_for(ports, order.order_id, OrderStatus.PAID)
    service.complete_manually(order.order_id, ports)
    wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    with pytest.raises(Conflict):
        service.cancel_order(order.order_id, ports)
    level = ports.inventory.levels(sku)[0]
    assert (level.on_hand, level.committed) == (4, 0)


def test_the_workflow_of_a_cancelled_order_ends_cancelled_and_leaves_its_status(stack, ports, uid, address):
    order, _ = ports.orders.create(Order.from_new(make_order([(f"GHOST-{uid}", 1)], address)))

    def cancel(o):
        o.status = OrderStatus.CANCELLED

    ports.orders.update(order.order_id, cancel)
    ports.workflow.start(order.order_id)
    desc = execution_status(stack, order.order_id)
    assert desc["status"] == "SUCCEEDED" and final_state(stack, order.order_id) == "Cancelled"
    assert ports.orders.get(order.order_id).status == OrderStatus.CANCELLED


def test_an_order_larger_than_one_dynamodb_transaction_reserves_and_ships_every_line_once(stack, ports, uid,
                                                                                        address):
    skus = [f"BULK-{uid}-{i:02d}" for i in range(60)]  # 60 lines: more than one 100-item transaction
    add_warehouse(ports, f"w-{uid}")
    for sku in skus:
        ports.inventory.set_on_hand(sku, f"w-{uid}", 3)
    order, _ = service.create_order(make_order([(sku, 2) for sku in skus], address), ports)
    wait_for(ports, order.order_id, OrderStatus.PAID)
    assert all(ports.inventory.levels(sku)[0].committed == 2 for sku in skus)
    service.complete_manually(order.order_id, ports)
    wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    levels = [ports.inventory.levels(sku)[0] for sku in skus]
    assert all((lv.on_hand, lv.committed) == (1, 0) for lv in levels)


def test_a_dropship_shipment_is_forwarded_through_its_queue_and_tracking_resumes_it(stack, ports, uid, address):
    from orderflow.fulfillment import ForwardMessage
    from orderflow.orders import accept_forwarded

    sku = f"SKU-{uid}"
    add_warehouse(ports, f"sup-{uid}", kind="dropship")
    ports.inventory.set_on_hand(sku, f"sup-{uid}", 5)
    received = []

    def forwarder(event, context):  # stands in for the supplier forwarder: accept what arrives
        for record in event["Records"]:
            message = ForwardMessage.model_validate_json(record["body"])
            if message.order_id == order.order_id:
                received.append(message)
                accept_forwarded(message, f"ORD_{message.shipment_id}.csv", ports)
        return {"batchItemFailures": []}

    # the supplier-orders queue's event source mapping hands it to this stand-in for the forwarder
    real = lambda_binding.bound(function_name("forward_supplier")).handler
    lambda_binding.bind(function_name("forward_supplier"), forwarder)
    try:
        order, _ = service.create_order(make_order([(sku, 2)], address), ports)
        deadline = __import__("time").monotonic() + 20
        while not received and __import__("time").monotonic() < deadline:
            __import__("time").sleep(0.05)
    finally:
        lambda_binding.bind(function_name("forward_supplier"), real)
    assert [m.method for m in received] == ["dropship"]
    forwarded = wait_for(ports, order.order_id, OrderStatus.IN_FULFILLMENT)
    assert forwarded.shipments[0].status == ShipmentStatus.FORWARDED
    assert forwarded.shipments[0].fulfiller_ref.startswith("ORD_")

    service.add_tracking(order.order_id, service.TrackingIn(carrier="FedEx", tracking_number="7712345678"), ports)
    done = wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    assert [e.type for e in done.events if e.type in ("forwarded", "tracking_added", "completed")] == [
        "forwarded", "tracking_added", "completed"]
    assert ports.inventory.levels(sku)[0].on_hand == 3


def test_a_supplier_that_never_confirms_within_its_sla_needs_attention(stack, ports, uid, address):
    sku = f"SKU-{uid}"
    add_warehouse(ports, f"slow-{uid}", kind="3pl", sla_hours=0.0008)  # about 3 seconds
    ports.inventory.set_on_hand(sku, f"slow-{uid}", 5)
    order, _ = service.create_order(make_order([(sku, 1)], address), ports)
    stuck = wait_for(ports, order.order_id, OrderStatus.NEEDS_ATTENTION)
    assert stuck.attention_reason.startswith("the supplier or 3PL did not confirm the shipment within the SLA (")
    assert execution_status(stack, order.order_id)["error"] == "FulfillerSlaExpired"


def test_after_the_fault_clears_redrive_finishes_the_order_without_doing_anything_twice(stack, ports, uid,
                                                                                       address):
    from functions.fulfill.handler import lambda_handler as real_fulfill

    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)

    def crash(event, context):  # the route step crashes after stock was reserved
        raise ConnectionError("fulfilment backend unreachable")

    lambda_binding.bind(function_name("fulfill"), crash)
    try:
        order, _ = service.create_order(make_order([(sku, 2)], address), ports)
        stuck = wait_for(ports, order.order_id, OrderStatus.NEEDS_ATTENTION)
    finally:
        lambda_binding.bind(function_name("fulfill"), real_fulfill)
    assert stuck.attention_reason.startswith("ConnectionError")
    assert ports.inventory.levels(sku)[0].committed == 2

    redriven = service.redrive_order(order.order_id, ports, reason="backend is back")
    assert redriven.attempt == 2 and redriven.attention_reason is None
    paid = wait_for(ports, order.order_id, OrderStatus.PAID)
    assert len(paid.allocations) == 1 and len(paid.shipments) == 1  # the plan stood; nothing was redone
    assert ports.inventory.levels(sku)[0].committed == 2
    assert [e["kind"] for e in ledger_entries(ports, sku)] == ["reserve"]
    assert execution_status(stack, order.order_id)["status"] == "FAILED"  # the first run stays in the history
    from orderflow import trace

    runs = trace.fetch_all(client("stepfunctions"), stack.state_machine_arn, order.order_id)
    assert [ex["name"] for ex, _ in runs] == [order.order_id, f"{order.order_id}-r2"]

    from orderflow.errors import Conflict

    with pytest.raises(Conflict, match="running"):
        service.redrive_order(order.order_id, ports)


def test_the_reconciler_redrives_an_order_whose_workflow_is_not_running(stack, ports, uid, address):
    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    # an order stored but never started (the API died between the write and StartExecution), two hours
    # ago: the reconciler's window can then take it and none of the shared stack's younger orders (other
    # tests' orders, some stuck on purpose, would be redriven too, and each looked up: minutes in CI)
    two_hours_ago = (datetime.now(UTC) - timedelta(hours=2)).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    stuck = Order.from_new(make_order([(sku, 1)], address)).model_copy(
        update={"created_at": two_hours_ago, "updated_at": two_hours_ago})
    order, _ = ports.orders.create(stuck)
    assert order.order_id not in service.reconcile(ports, older_than_seconds=3 * 3600)  # too fresh to touch
    assert order.order_id in service.reconcile(ports, older_than_seconds=3600)
    paid = wait_for(ports, order.order_id, OrderStatus.PAID)
    assert paid.attempt == 2 and "redriven" in [e.type for e in paid.events]
    # running now: what the reconciler asks says so, and it leaves the order alone (the memory-port tests
    # go through that branch: test_domain_on_memory_ports.py)
    assert ports.workflow.status(order.order_id, paid.attempt) == "RUNNING"


def _throttled_resume(monkeypatch, ports):
    def throttled(task_token, output, **_):
        raise TransientError("Step Functions did not take the shipment (ThrottlingException)")

    monkeypatch.setattr(ports.workflow, "resume", throttled)


def test_tracking_whose_resume_was_throttled_is_finished_by_the_same_request_again(stack, ports, uid, address,
                                                                                    monkeypatch):
    """The tracking is saved, SendTaskSuccess is throttled (503): the client's retry of the same tracking
    hands it over (before, it got 409 and the execution waited for 90 days)."""
    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    order, _ = service.create_order(make_order([(sku, 1)], address), ports)
    wait_for(ports, order.order_id, OrderStatus.PAID)
    tracking = service.TrackingIn(carrier="UPS", tracking_number=f"1Z{uid.upper()}")
    real_resume = ports.workflow.resume
    _throttled_resume(monkeypatch, ports)
    with pytest.raises(TransientError):
        service.add_tracking(order.order_id, tracking, ports)
    monkeypatch.setattr(ports.workflow, "resume", real_resume)
    service.add_tracking(order.order_id, tracking, ports)  # the retry: no 409, the execution gets it
    wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    with pytest.raises(Exception) as other:  # other tracking for a shipped shipment is still refused
        service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1ZOTHER"), ports)
    assert getattr(other.value, "http_status", None) == 409


def test_the_reconciler_resumes_a_shipped_shipment_whose_execution_still_waits(stack, ports, uid, address,
                                                                               monkeypatch):
    sku = f"SKU-{uid}"
    add_warehouse(ports, f"w-{uid}")
    ports.inventory.set_on_hand(sku, f"w-{uid}", 5)
    order, _ = service.create_order(make_order([(sku, 1)], address), ports)
    wait_for(ports, order.order_id, OrderStatus.PAID)
    real_resume = ports.workflow.resume
    _throttled_resume(monkeypatch, ports)
    with pytest.raises(TransientError):
        service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number=f"1Z{uid.upper()}"), ports)
    monkeypatch.setattr(ports.workflow, "resume", real_resume)
    stuck = ports.orders.get(order.order_id)
    assert stuck.shipments[0].status == ShipmentStatus.SHIPPED and stuck.status == OrderStatus.PAID
    assert service.resume_shipped(stuck, ports)
    done = wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    assert "resumed" in [e.type for e in done.events]
    assert not service.resume_shipped(done, ports)  # its token is used: nothing to resume twice
