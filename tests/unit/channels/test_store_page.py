"""A page of channel orders stored in few round trips (importing.store_page) on in-memory ports: the new
orders written together, each once, their workflows started; stored ones, failures and crashes."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from orderflow import service
from orderflow.channels.base import ChannelOrder, ChannelState
from orderflow.channels.importing import store_page
from orderflow.models import NewOrder, Order, OrderStatus, channel_order_id, new_id
from tests.unit.memory_ports import MemoryOrders, memory_ports

CHANNEL = "shop-1"


def channel_order(external_id: str, state: ChannelState = ChannelState.READY, *, malformed: bool = False
                  ) -> ChannelOrder:
    new = None if malformed else NewOrder.model_validate({
        "channel": CHANNEL, "external_id": external_id,
        "lines": [{"sku": "MUG", "quantity": 1, "unit_price": "9.50"}],
        "shipping_address": {"name": "Ada Lovelace", "line1": "12 Analytical St", "city": "London",
                             "postal_code": "N1 9GU", "country": "GB"}})
    return ChannelOrder(external_id=external_id, state=state, state_detail=f"status {state.value}",
                        updated_at=datetime.now(UTC), raw={"id": external_id}, order=new,
                        problem="lines[0].sku: missing" if malformed else None)


class CountingOrders(MemoryOrders):
    """Memory orders that count the round trips: one per create_many, one per create."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[list[str]] = []
        self.singles: list[str] = []

    def create_many(self, orders: list[Order]) -> list[tuple[Order, bool] | None]:
        self.batches.append([o.external_id for o in orders])
        return [MemoryOrders.create(self, order) for order in orders]

    def create(self, order: Order) -> tuple[Order, bool]:
        self.singles.append(order.external_id)
        return MemoryOrders.create(self, order)


@pytest.fixture
def ports():
    bundle = memory_ports()
    bundle.orders = CountingOrders()
    return bundle


def store(ports, page, known=None, workers: int = 4):
    if known is None:
        known = {co.external_id: o for co in page
                 if (o := ports.orders.find_by_channel_ref(CHANNEL, co.external_id)) is not None}
    with ThreadPoolExecutor(workers) as pool:
        return store_page(CHANNEL, "shopify", page, known, ports, pool)


def stored(ports) -> dict[str, list[str]]:
    """external id -> the ids of the orders stored for it (one each when all is well)."""
    found: dict[str, list[str]] = {}
    for order_id in ports.orders.items:
        order = ports.orders.get(order_id)
        found.setdefault(order.external_id, []).append(order.order_id)
    return found


def test_the_new_orders_of_a_page_are_written_in_one_batch_and_the_ready_ones_started(ports):
    page = [channel_order(f"10{i}") for i in range(5)] + [
        channel_order("200", ChannelState.UNPAID), channel_order("300", malformed=True),
        channel_order("400", ChannelState.CANCELLED)]
    outcomes = store(ports, page)
    assert [(o.external_id, o.kind) for o in outcomes] == [
        *((f"10{i}", "new") for i in range(5)), ("200", "new"), ("300", "failed"), ("400", "skipped")]
    assert ports.orders.batches == [["100", "101", "102", "103", "104", "200", "300"]]
    assert ports.orders.singles == []  # nothing written alone
    for outcome in outcomes[:7]:
        assert outcome.order_id == channel_order_id(CHANNEL, outcome.external_id)
    assert sorted(ports.workflow.started) == sorted(o.order_id for o in outcomes[:5])  # not held, not attention
    assert outcomes[5].detail == "held: unpaid" and ports.orders.get(outcomes[5].order_id).hold_reason
    assert ports.orders.get(outcomes[6].order_id).status == OrderStatus.NEEDS_ATTENTION
    assert all(len(ids) == 1 for ids in stored(ports).values()) and "400" not in stored(ports)


def test_orders_stored_before_are_not_written_again_whatever_their_id(ports):
    # one stored before ids were derived (a random id), one with its derived id
    old = Order.from_new(channel_order("1").order, order_id=new_id("ord"))
    ports.orders.create(old)
    ports.orders.create(Order.from_new(channel_order("2").order))
    ports.orders.singles.clear()
    page = [channel_order(e) for e in ("1", "2", "3")]
    outcomes = store(ports, page)
    assert [(o.external_id, o.kind) for o in outcomes] == [("1", "skipped"), ("2", "skipped"), ("3", "new")]
    assert outcomes[0].order_id == old.order_id
    assert ports.orders.batches == [["3"]] and ports.orders.singles == []
    assert all(len(ids) == 1 for ids in stored(ports).values())


def test_an_order_stored_after_the_look_up_is_taken_as_stored_not_written_twice(ports):
    page = [channel_order(e) for e in ("1", "2")]
    # a webhook stores order 2 between the page's look-up (which found nothing) and its write
    webhook, _ = ports.orders.create(Order.from_new(page[1].order))
    outcomes = store(ports, page, known={})
    assert [(o.external_id, o.kind, o.order_id) for o in outcomes] == [
        ("1", "new", channel_order_id(CHANNEL, "1")), ("2", "skipped", webhook.order_id)]
    assert all(len(ids) == 1 for ids in stored(ports).values())
    assert webhook.order_id in ports.workflow.started  # started (again: a no-op when the webhook did)


def test_the_same_order_twice_in_one_page_is_stored_once(ports):
    outcomes = store(ports, [channel_order("7"), channel_order("8"), channel_order("7")])
    assert [(o.external_id, o.kind) for o in outcomes] == [("7", "new"), ("8", "new"), ("7", "skipped")]
    assert ports.orders.batches == [["7", "8"]]
    assert stored(ports) == {"7": [channel_order_id(CHANNEL, "7")], "8": [channel_order_id(CHANNEL, "8")]}


class RefusingOrders(CountingOrders):
    """The page's transaction is refused (as DynamoDB refuses one holding an item it will not take), and
    so is the single write of ``bad``: the others are written alone."""

    def __init__(self, bad: str | None) -> None:
        super().__init__()
        self.bad = bad

    def create_many(self, orders: list[Order]) -> list[tuple[Order, bool] | None]:
        if any(o.external_id == self.bad for o in orders):
            self.batches.append([o.external_id for o in orders])
            return [None] * len(orders)
        return super().create_many(orders)

    def create(self, order: Order) -> tuple[Order, bool]:
        if order.external_id == self.bad:
            self.singles.append(order.external_id)
            raise RuntimeError("ValidationException: Item size has exceeded the maximum allowed size")
        return super().create(order)


def test_one_order_that_cannot_be_written_loses_and_duplicates_none_of_the_others(ports):
    ports.orders = RefusingOrders(bad="3")
    page = [channel_order(str(i)) for i in range(1, 6)]
    with pytest.raises(RuntimeError, match="ValidationException"):
        store(ports, page)  # raised once every other order of the page was done
    assert sorted(ports.orders.singles) == ["1", "2", "3", "4", "5"]  # each written alone after the refusal
    assert sorted(stored(ports)) == ["1", "2", "4", "5"]
    assert sorted(ports.workflow.started) == sorted(channel_order_id(CHANNEL, e) for e in ("1", "2", "4", "5"))
    ports.orders.bad = None  # the fault is fixed: the next run reads the page again
    outcomes = store(ports, page)
    assert [(o.external_id, o.kind) for o in outcomes] == [
        ("1", "skipped"), ("2", "skipped"), ("3", "new"), ("4", "skipped"), ("5", "skipped")]
    assert all(len(ids) == 1 for ids in stored(ports).values()) and len(stored(ports)) == 5
    assert sorted(set(ports.workflow.started)) == sorted(channel_order_id(CHANNEL, str(i)) for i in range(1, 6))


@pytest.mark.parametrize("recovery", ["next run", "reconciler"])
def test_a_crash_between_storing_and_starting_still_ends_with_each_workflow_started(ports, recovery):
    page = [channel_order(str(i)) for i in range(1, 4)]
    real_start = ports.workflow.start

    def killed(order_id, attempt=1):
        raise RuntimeError("the Lambda was killed")

    ports.workflow.start = killed
    with pytest.raises(RuntimeError, match="killed"):
        store(ports, page)
    ids = [channel_order_id(CHANNEL, co.external_id) for co in page]
    assert sorted(stored(ports)) == ["1", "2", "3"] and ports.workflow.started == []  # stored, never started
    assert all(ports.orders.get(i).status == OrderStatus.NEW for i in ids)
    ports.workflow.start = real_start
    if recovery == "next run":  # the cursor did not move: the page is read again
        outcomes = store(ports, page)
        assert [o.kind for o in outcomes] == ["skipped"] * 3
        assert sorted(ports.workflow.started) == sorted(ids)
    else:  # the reconciler finds new orders whose workflow is not running, and redrives them
        redriven = service.reconcile(ports, older_than_seconds=0)
        assert sorted(redriven) == sorted(ids)
        assert sorted(ports.workflow.started) == sorted(f"{i}-r2" for i in ids)
    assert all(len(v) == 1 for v in stored(ports).values())
