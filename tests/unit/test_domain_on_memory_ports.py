"""The workflow's steps and the API's use cases on in-memory ports: no AWS, no moto. The state machine's
order of steps is played by hand (``Prepare``: allocate, reserve, route; then ``AwaitFulfilment``, the one wait);
what the code that records a shipment does instead of states (complete, tell the channel) is checked here too."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from orderflow import orders, service
from orderflow.adapters.idempotency import Claim
from orderflow.errors import Conflict, IdempotencyKeyReused, OrderCancelled, OrderCompletedOnChannel
from orderflow.models import NewOrder, Order, OrderStatus, ShipmentStatus, Warehouse
from orderflow.workflow import steps
from tests.unit.memory_ports import memory_ports

ADDRESS = {"name": "Ada", "line1": "1 Main St", "city": "Boston", "postal_code": "02110", "country": "US"}


@pytest.fixture
def ports():
    ports = memory_ports(Warehouse(warehouse_id="east", name="East", priority=1),
                         Warehouse(warehouse_id="west", name="West", priority=2))
    ports.inventory.set_on_hand("MUG", "east", 5)
    ports.inventory.set_on_hand("MUG", "west", 5)
    return ports


def new_request(quantity=2, sku="MUG", **extra) -> NewOrder:
    return NewOrder.model_validate({"lines": [{"sku": sku, "quantity": quantity, "unit_price": "9.50"}],
                                    "shipping_address": ADDRESS, **extra})


def new_order(ports, quantity=2, sku="MUG") -> Order:
    new = new_request(quantity, sku)
    order, created = service.create_order(new, ports)
    assert created and ports.workflow.started[-1] == order.order_id
    return order


def to_paid(ports, order_id: str) -> str:
    """The workflow up to its wait for the shipments; returns the waiting task's token."""
    assert steps.prepare(order_id, ports)["wait_for_stock"] is False
    token = ports.workflow.token()
    assert steps.await_fulfilment(steps.AwaitInput(order_id=order_id, task_token=token), ports)["waits_for"] \
        == "shipments"
    return token


def level(ports, warehouse="east"):
    return next(lv for lv in ports.inventory.levels("MUG") if lv.warehouse_id == warehouse)


def test_an_order_is_allocated_reserved_shipped_and_completed_with_its_stock_taken_once(ports):
    order = new_order(ports)
    token = to_paid(ports, order.order_id)
    paid = ports.orders.get(order.order_id)
    assert paid.status == OrderStatus.PAID and paid.shipments[0].warehouse_id == "east"
    assert (level(ports).on_hand, level(ports).committed) == (5, 2)
    done = service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1Z1"), ports)
    assert done.status == OrderStatus.COMPLETED  # recording the last shipment completes the order ...
    assert [t for t, _ in ports.workflow.resumed] == [token]  # ... and ends the workflow's wait
    assert (level(ports).on_hand, level(ports).committed) == (3, 0)
    for _ in range(2):  # settled again (a retried request, the reconciler): nothing more changes
        orders.settle(order.order_id, ports)
    assert (level(ports).on_hand, level(ports).committed) == (3, 0)
    assert [t for t, _ in ports.workflow.resumed] == [token]
    assert ports.queues.sent == []  # an order from no channel: nothing to tell


def test_tracking_that_came_before_the_wait_completes_the_order_when_the_wait_starts(ports):
    order = new_order(ports)
    to_paid(ports, order.order_id)
    ports.orders.update(order.order_id, lambda o: setattr(o, "fulfilment_token", None))  # as after a redrive
    shipped = orders.ship(order.order_id, "UPS", "1Z9", ports)  # no execution waits right now
    assert shipped.status == OrderStatus.PAID and shipped.shipments[0].status == ShipmentStatus.SHIPPED
    token = ports.workflow.token()
    steps.await_fulfilment(steps.AwaitInput(order_id=order.order_id, task_token=token), ports)
    assert ports.orders.get(order.order_id).status == OrderStatus.COMPLETED
    assert ports.workflow.resumed[-1][0] == token


def test_the_same_tracking_again_resumes_again_and_other_tracking_is_refused(ports):
    order = new_order(ports)
    token = to_paid(ports, order.order_id)
    tracking = service.TrackingIn(carrier="UPS", tracking_number="1Z1")
    ports.workflow.waiting.discard(token)  # the first SendTaskSuccess was lost (throttled)
    assert service.add_tracking(order.order_id, tracking, ports).status == OrderStatus.COMPLETED
    ports.workflow.waiting.add(token)
    service.add_tracking(order.order_id, tracking, ports)  # the client's retry hands it over
    assert [t for t, _ in ports.workflow.resumed] == [token]
    with pytest.raises(Conflict):
        service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1Z2"), ports)


def test_cancel_ends_the_wait_and_gives_the_stock_back_exactly_once(ports):
    order = new_order(ports)
    token = to_paid(ports, order.order_id)
    for _ in range(2):
        cancelled = service.cancel_order(order.order_id, ports)
    assert cancelled.status == OrderStatus.CANCELLED
    assert ports.workflow.abandoned == [(token, "OrderCancelled")]
    assert (level(ports).on_hand, level(ports).committed) == (5, 0)
    with pytest.raises(OrderCancelled):  # a step still running sees it and ends the workflow
        steps.await_fulfilment(steps.AwaitInput(order_id=order.order_id, task_token="late"), ports)


def test_a_fulfiller_rejection_needs_attention_and_stops_the_execution(ports):
    order = new_order(ports)
    token = to_paid(ports, order.order_id)
    shipment_id = ports.orders.get(order.order_id).shipments[0].shipment_id
    rejected = orders.fulfiller_rejected(order.order_id, shipment_id, "address not serviceable", ports)
    assert rejected.status == OrderStatus.NEEDS_ATTENTION and rejected.attention_reason == "address not serviceable"
    assert ports.workflow.stopped == [(order.order_id, "FulfillerRejected")]
    assert ports.workflow.abandoned == [(token, "FulfillerRejected")]  # the workflow's FulfillerRejected state
    redriven = service.redrive_order(order.order_id, ports, reason="fixed the address")
    assert redriven.status == OrderStatus.NEW and ports.workflow.started[-1] == f"{order.order_id}-r2"


def test_short_stock_waits_and_a_receipt_resumes_the_oldest_waiting_order(ports):
    order = new_order(ports, quantity=12)  # 10 in stock over two warehouses, no line split
    assert steps.prepare(order.order_id, ports)["wait_for_stock"] is True
    assert ports.orders.get(order.order_id).status == OrderStatus.AWAITING_STOCK
    token = ports.workflow.token()
    assert steps.await_fulfilment(steps.AwaitInput(order_id=order.order_id, task_token=token), ports)["waits_for"] \
        == "stock"
    assert ports.workflow.abandoned == []
    ports.inventory.set_on_hand("MUG", "east", 20)
    assert service.release_waiting_orders(ports) == [order.order_id]
    assert ports.workflow.abandoned == [(token, "PlanAgain")]  # the workflow's Catch: back to Prepare
    assert steps.prepare(order.order_id, ports)["wait_for_stock"] is False


def test_a_storefront_completion_marks_the_shipment_on_the_channel_and_resumes_it(ports):
    order = new_order(ports)
    token = to_paid(ports, order.order_id)
    assert service.complete_from_channel(order.order_id, ports, detail="fulfilled on Shopify")
    done = ports.orders.get(order.order_id)
    shipped = done.shipments[0]
    assert (shipped.status, shipped.channel_update) == (ShipmentStatus.SHIPPED, "on_channel")
    assert done.status == OrderStatus.COMPLETED and [t for t, _ in ports.workflow.resumed] == [token]
    assert ports.queues.sent == []  # never echoed back
    assert not service.complete_from_channel(order.order_id, ports, detail="again")  # idempotent


def test_the_reconciler_resumes_a_shipped_shipment_whose_execution_still_waits(ports):
    order = new_order(ports)
    token = to_paid(ports, order.order_id)
    shipment_id = ports.orders.get(order.order_id).shipments[0].shipment_id

    def lost(o):  # the request that recorded the tracking died before it settled the order
        o.shipments[0].status = ShipmentStatus.SHIPPED
        o.status = OrderStatus.PARTIALLY_SHIPPED
    ports.orders.update(order.order_id, lost)
    assert service.resume_shipped(ports.orders.get(order.order_id), ports)
    settled = ports.orders.get(order.order_id)
    assert "resumed" in [e.type for e in settled.events] and settled.status == OrderStatus.COMPLETED
    assert [t for t, _ in ports.workflow.resumed] == [token] and shipment_id


# -- the reconciler ---------------------------------------------------------------------------------


def reconcile_now(ports) -> list[str]:
    """Every order counts as untouched for long enough (the cutoff is a minute ahead)."""
    return service.reconcile(ports, older_than_seconds=-60)


def test_the_reconciler_redrives_an_order_whose_workflow_is_not_running(ports):
    order = new_order(ports)
    ports.workflow.running.clear()  # the start was lost, or the local stack was killed
    assert reconcile_now(ports) == [order.order_id]
    redriven = ports.orders.get(order.order_id)
    assert redriven.attempt == 2 and ports.workflow.started[-1] == f"{order.order_id}-r2"
    assert redriven.events[-1].type == "redriven" and "reconciler" in redriven.events[-1].detail
    assert reconcile_now(ports) == []  # its new execution runs


def test_the_reconciler_leaves_running_held_recent_and_finished_orders_alone(ports):
    running = new_order(ports)
    to_paid(ports, running.order_id)  # running, waiting for its shipment: nothing to hand over
    held = new_order(ports)
    ports.orders.update(held.order_id, lambda o: setattr(o, "hold_reason", "unpaid"))
    done = new_order(ports)
    service.cancel_order(done.order_id, ports)
    ports.workflow.running.discard(held.order_id)
    ports.workflow.running.discard(done.order_id)
    assert reconcile_now(ports) == []
    stuck = new_order(ports)
    ports.workflow.running.discard(stuck.order_id)
    assert service.reconcile(ports, older_than_seconds=300) == []  # touched just now: it may be starting
    assert ports.orders.get(held.order_id).attempt == 1


def test_the_reconciler_hands_a_running_execution_its_lost_tracking(ports):
    order = new_order(ports)
    token = to_paid(ports, order.order_id)

    def lost(o):  # the tracking was saved; the request died before it settled the order
        o.shipments[0].status = ShipmentStatus.SHIPPED
        o.status = OrderStatus.PARTIALLY_SHIPPED
    ports.orders.update(order.order_id, lost)
    assert reconcile_now(ports) == [order.order_id]
    assert [t for t, _ in ports.workflow.resumed] == [token]
    assert ports.orders.get(order.order_id).attempt == 1  # resumed, not redriven


# -- completing by hand and on the channel --------------------------------------------------------------


def test_complete_manually_ships_every_open_shipment_and_the_workflow_completes_it(ports):
    order = new_order(ports)
    with pytest.raises(Conflict, match="once it is paid"):
        service.complete_manually(order.order_id, ports)
    token = to_paid(ports, order.order_id)
    done = service.complete_manually(order.order_id, ports)
    assert [s.status for s in done.shipments] == [ShipmentStatus.SHIPPED]
    assert done.shipments[0].tracking_number is None
    assert [e.type for e in done.events][-2:] == ["completed_manually", "completed"]
    assert [t for t, _ in ports.workflow.resumed] == [token]
    assert done.status == OrderStatus.COMPLETED and done.events[-1].detail == "no tracking"
    assert (level(ports).on_hand, level(ports).committed) == (3, 0)
    with pytest.raises(Conflict, match="already completed"):
        service.complete_manually(order.order_id, ports)


def test_an_order_the_channel_fulfilled_before_it_was_routed_is_completed_without_our_stock(ports):
    order = new_order(ports, quantity=12)  # waits for stock
    steps.prepare(order.order_id, ports)
    token = ports.workflow.token()
    steps.await_fulfilment(steps.AwaitInput(order_id=order.order_id, task_token=token), ports)
    for _ in range(2):  # the second import of the same state changes nothing
        noted = service.note_channel_fulfilled(order.order_id, ports, "fulfilled on Shopify")
        assert noted is (_ == 0)
    closed = ports.orders.get(order.order_id)
    assert closed.status == OrderStatus.COMPLETED and closed.shipments == []
    assert closed.events[-1].type == "completed_on_channel"
    assert ports.workflow.abandoned == [(token, "OrderCompletedOnChannel")]
    assert (level(ports).on_hand, level(ports).committed) == (5, 0)
    with pytest.raises(OrderCompletedOnChannel):  # a step still running ends the workflow
        steps.allocate_order(order.order_id, ports)


def test_stock_reserved_before_the_channel_fulfilled_it_goes_back_once(ports):
    order = new_order(ports)
    steps.allocate_order(order.order_id, ports)
    steps.reduce_inventory(order.order_id, ports)
    assert level(ports).committed == 2
    assert service.note_channel_fulfilled(order.order_id, ports, "fulfilled on Shopify")
    assert (level(ports).on_hand, level(ports).committed) == (5, 0)
    assert [e.type for e in ports.orders.get(order.order_id).events].count("stock_released") == 1
    with pytest.raises(OrderCompletedOnChannel):
        steps.route_fulfillment(order.order_id, ports)


def test_an_order_that_shipped_here_in_part_is_only_noted_once_when_the_channel_fulfilled_it(ports):
    order = new_order(ports)
    to_paid(ports, order.order_id)
    ports.orders.update(order.order_id, lambda o: setattr(o, "status", OrderStatus.NEEDS_ATTENTION))
    assert service.note_channel_fulfilled(order.order_id, ports, "fulfilled on Shopify") is False
    assert service.note_channel_fulfilled(order.order_id, ports, "fulfilled on Shopify") is False
    noted = ports.orders.get(order.order_id)
    assert noted.status == OrderStatus.NEEDS_ATTENTION
    assert [e.type for e in noted.events].count("channel_fulfilled") == 1
    paid = new_order(ports)
    to_paid(ports, paid.order_id)  # paid: the storefront completion's (complete_from_channel), not this
    assert service.note_channel_fulfilled(paid.order_id, ports, "fulfilled on Shopify") is False
    assert ports.orders.get(paid.order_id).status == OrderStatus.PAID


# -- creating an order once per Idempotency-Key -----------------------------------------------------------


class MemoryIdempotencyKeys:
    """orderflow.adapters.idempotency.IdempotencyKeys' contract: a key is claimed once; a released key (its
    request failed) is taken over by the retry, which writes the same order id."""

    def __init__(self) -> None:
        self.items: dict[str, dict] = {}

    def claim(self, key: str, fingerprint: str, order_id: str) -> Claim:
        item = self.items.get(key)
        if item is None:
            self.items[key] = {"fingerprint": fingerprint, "order_id": order_id, "state": "pending", "leased": True}
            return Claim(mine=True, order_id=order_id, fingerprint=fingerprint, done=False)
        claim = Claim(mine=False, order_id=item["order_id"], fingerprint=item["fingerprint"],
                      done=item["state"] == "done", status_code=item.get("status_code"))
        if not claim.done and claim.fingerprint == fingerprint and not item["leased"]:
            item["leased"] = claim.mine = claim.resumed = True
        return claim

    def finish(self, key: str, order_id: str, status_code: int) -> None:
        self.items[key].update(state="done", order_id=order_id, status_code=status_code, leased=False)

    def release(self, key: str) -> None:
        if self.items[key]["state"] == "pending":
            self.items[key]["leased"] = False


def test_the_same_key_and_body_answer_the_same_order_and_another_body_is_refused(ports):
    keys = MemoryIdempotencyKeys()
    order, status, replayed = service.create_order_once(new_request(), ports, "k1", keys)
    assert (status, replayed) == (201, False) and ports.workflow.started == [order.order_id]
    again, status, replayed = service.create_order_once(new_request(), ports, "k1", keys)
    assert (again.order_id, status, replayed) == (order.order_id, 201, True)
    assert len(ports.orders.items) == 1
    with pytest.raises(IdempotencyKeyReused):
        service.create_order_once(new_request(quantity=3), ports, "k1", keys)
    other, _, _ = service.create_order_once(new_request(), ports, "k2", keys)
    assert other.order_id != order.order_id


def test_a_request_still_running_with_the_key_answers_conflict(ports):
    keys = MemoryIdempotencyKeys()
    service.create_order_once(new_request(), ports, "k1", keys)
    keys.items["k1"].update(state="pending", leased=True)  # as if the first request were still running
    with pytest.raises(Conflict, match="still being processed"):
        service.create_order_once(new_request(), ports, "k1", keys)


def test_a_retry_after_a_failed_start_writes_the_same_order_and_starts_it(ports):
    keys = MemoryIdempotencyKeys()
    start = ports.workflow.start

    def throttled(order_id: str, attempt: int = 1) -> str | None:
        raise RuntimeError("StartExecution throttled")

    ports.workflow.start = throttled
    with pytest.raises(RuntimeError):
        service.create_order_once(new_request(), ports, "k1", keys)
    [written] = ports.orders.items  # the order was written before the start failed
    ports.workflow.start = start
    order, status, replayed = service.create_order_once(new_request(), ports, "k1", keys)
    assert (order.order_id, status, replayed) == (written, 201, False)
    assert ports.workflow.started == [written] and len(ports.orders.items) == 1


def test_a_channel_order_with_a_key_is_found_by_its_channel_reference(ports):
    keys = MemoryIdempotencyKeys()
    first, created = service.create_order(new_request(channel="shop", external_id="1001"), ports)
    order, status, replayed = service.create_order_once(new_request(channel="shop", external_id="1001"), ports,
                                                        "k1", keys)
    assert (order.order_id, status, replayed) == (first.order_id, 200, False)
    assert keys.items["k1"]["status_code"] == 200


# -- telling the sales channel ----------------------------------------------------------------------------


class OneChannel:
    def __init__(self, channel_id: str) -> None:
        self.channel_id = channel_id

    def list(self, **kwargs) -> list:
        return [SimpleNamespace(channel_id=self.channel_id)]

    def find(self, channel_id: str):
        return SimpleNamespace(channel_id=channel_id) if channel_id == self.channel_id else None

    def client(self, config, **options):
        raise AssertionError("nothing is sent to the channel here")


def test_shipments_are_told_to_the_channel_only_of_a_connected_channel_order(ports):
    ports.channels = OneChannel("shop")
    manual = new_order(ports)
    connected, _ = service.create_order(new_request(channel="shop", external_id="1001"), ports)
    gone, _ = service.create_order(new_request(channel="old-shop", external_id="7"), ports)
    no_ref = manual.model_copy(update={"channel": "shop"})  # a channel but no order of it to update
    assert [orders.tells_channel(o, ports) for o in (manual, connected, gone, no_ref)] == [False, True, False, False]
    for order in (manual, connected, gone):
        to_paid(ports, order.order_id)
        service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number=f"1Z{order.order_id[-8:]}"),
                             ports)
    shipment_id = ports.orders.get(connected.order_id).shipments[0].shipment_id
    assert ports.queues.sent == [("channel-updates", {"order_id": connected.order_id, "shipment_id": shipment_id})]


def test_forwarded_shipments_go_to_their_forwarders_queue_with_the_orders_wait_token(ports):
    ports.settings.put_warehouse(Warehouse(warehouse_id="acme", name="Acme", priority=0, kind="dropship"))
    ports.inventory.set_on_hand("MUG", "acme", 5)
    order = new_order(ports)
    token = to_paid(ports, order.order_id)
    steps.await_fulfilment(steps.AwaitInput(order_id=order.order_id, task_token=token), ports)  # a retried step
    (queue, body), again = ports.queues.sent  # sent again until the forwarder has it (it forwards once)
    assert queue == "supplier-orders" and again == (queue, body)
    assert (body["order_id"], body["warehouse_id"], body["method"], body["task_token"]) == \
        (order.order_id, "acme", "dropship", token)
    waiting = ports.orders.get(order.order_id)
    assert waiting.status == OrderStatus.NEW and waiting.shipments[0].due_at  # in_fulfillment once forwarded


def test_a_backordered_rest_is_planned_again_once_what_was_routed_has_shipped():
    from orderflow.rules.allocation import AllocationPolicy

    ports = memory_ports(Warehouse(warehouse_id="east", name="East", priority=1),
                         policy=AllocationPolicy(backorder="ship_available"))
    ports.inventory.set_on_hand("MUG", "east", 3)
    ports.inventory.set_on_hand("CUP", "east", 0)
    order, _ = service.create_order(NewOrder.model_validate({
        "lines": [{"sku": "MUG", "quantity": 2, "unit_price": "9.50"}, {"sku": "CUP", "quantity": 1, "unit_price": "4"}],
        "shipping_address": ADDRESS}), ports)
    prepared = steps.prepare(order.order_id, ports)
    assert prepared["wait_for_stock"] is False and prepared["backordered"] is True
    token = ports.workflow.token()
    steps.await_fulfilment(steps.AwaitInput(order_id=order.order_id, task_token=token), ports)
    shipped = service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1Z1"), ports)
    assert shipped.status == OrderStatus.PARTIALLY_SHIPPED
    assert ports.workflow.abandoned == [(token, "PlanAgain")] and ports.workflow.resumed == []
    assert steps.prepare(order.order_id, ports)["wait_for_stock"] is True  # nothing left for the rest yet


def test_the_wait_lasts_until_the_nearest_sla_and_an_overdue_shipment_needs_attention(ports):
    from orderflow.errors import FulfillerSlaExpired

    ports.settings.put_warehouse(Warehouse(warehouse_id="acme", name="Acme", priority=0, kind="3pl", sla_hours=2))
    ports.inventory.set_on_hand("MUG", "acme", 5)
    order = new_order(ports)
    prepared = steps.prepare(order.order_id, ports)
    assert 7100 <= prepared["timeout_seconds"] <= 7200
    assert 7100 <= steps.check_overdue(order.order_id, ports)["timeout_seconds"] <= 7200  # not yet: wait on
    ports.orders.update(order.order_id, lambda o: o.shipments[0].__setattr__("due_at", "2020-01-01T00:00:00.000Z"))
    with pytest.raises(FulfillerSlaExpired, match="supplier or 3PL did not confirm"):
        steps.check_overdue(order.order_id, ports)
    # the order needs attention; once the seller sorted it out, a redrive gives the 3PL its SLA again
    ports.orders.update(order.order_id, lambda o: setattr(o, "status", OrderStatus.NEEDS_ATTENTION))
    service.redrive_order(order.order_id, ports, reason="the 3PL has it now")
    assert 7100 <= steps.prepare(order.order_id, ports)["timeout_seconds"] <= 7200
    assert ports.orders.get(order.order_id).shipments[0].due_at > "2026"


def test_an_order_costs_two_order_writes_to_prepare_and_no_extra_reads_to_settle(ports, monkeypatch):
    """Prepare writes the order twice (the plan; the reservation with its routed shipments), and the code that
    records the last shipment completes the order from its own write, without reading it again."""
    order = new_order(ports)
    counts = {"get": 0, "save": 0}
    get, save = ports.orders.get, ports.orders.save
    saving = []  # the memory store's save reads the stored order itself: not a read of the code under test

    def counted_get(order_id):
        counts["get"] += not saving
        return get(order_id)

    def counted_save(order):
        counts["save"] += 1
        saving.append(1)
        try:
            return save(order)
        finally:
            saving.pop()

    monkeypatch.setattr(ports.orders, "get", counted_get)
    monkeypatch.setattr(ports.orders, "save", counted_save)
    steps.prepare(order.order_id, ports)
    assert counts == {"get": 1, "save": 2}
    prepared = get(order.order_id)
    kinds = [e.type for e in prepared.events]
    assert kinds[-3:] == ["allocated", "stock_reserved", "routed"] and len(prepared.shipments) == 1
    assert prepared.allocation.status == "reserved"

    counts.update(get=0, save=0)
    steps.await_fulfilment(steps.AwaitInput(order_id=order.order_id, task_token=ports.workflow.token()), ports)
    assert counts == {"get": 1, "save": 1}  # the token kept; settling it reads nothing more

    counts.update(get=0, save=0)
    done = orders.ship(order.order_id, "UPS", "1Z1", ports)
    assert done.status == OrderStatus.COMPLETED
    assert counts == {"get": 1, "save": 2}  # the tracking, then the completion: one read for both
    assert (level(ports).on_hand, level(ports).committed) == (3, 0)
