"""Imports from each sandbox channel into the local stack (moto, the real ASL, our handlers), over real
sockets: paging, exactly once, cursor resume, 429s, malformed, cancelled and unpaid orders, concurrency;
a page's orders in few round trips (one batch look-up, one transaction of conditional puts, each order's
id derived from the channel and its external id), orders stored under the older scheme (a random id and
a guard item) recognized, a transaction DynamoDB refuses, a crash between storing and starting."""

from __future__ import annotations

import copy
import dataclasses
import threading
from collections import Counter
from decimal import Decimal

import pytest

from orderflow import service
from orderflow.adapters.aws import client
from orderflow.adapters.channel_store import ChannelStore, default_credentials
from orderflow.adapters.dynamodb import to_item
from orderflow.channels.http import Deadline, RetryPolicy
from orderflow.channels.importing import ImportOptions, import_channel
from orderflow.models import NewOrder, Order, OrderStatus, channel_order_id, new_id
from orderflow_local.sandbox import AmazonSandbox, ShopifySandbox, WooCommerceSandbox
from tests.integration.conftest import add_warehouse, execution_status, wait_for

KINDS = ["shopify", "woocommerce", "amazon"]
#: Where each sandbox serves its order search (to count and fault only those requests).
ORDER_PATHS = {"shopify": "/admin/", "woocommerce": "/wp-json/wc/v3/orders", "amazon": "/orders/"}


def options(**overrides) -> ImportOptions:
    return ImportOptions(**{"retry": RetryPolicy(base_delay=0.01, max_delay=0.05, max_attempts=5), **overrides})


@dataclasses.dataclass
class Channel:
    kind: str
    shop: object
    channel_id: str
    skus: list[str]

    def run(self, ports, **overrides):
        return import_channel(self.channel_id, ports, options=options(**overrides))

    def stored(self, ports, external_id):
        return ports.orders.find_by_channel_ref(self.channel_id, external_id)

    def order_requests(self):
        return self.shop.api_requests(ORDER_PATHS[self.kind])


@pytest.fixture
def connect(ports, uid):
    """Connect a sandbox shop as a channel (config in the settings table, credentials in Secrets Manager),
    with its SKUs stocked in a warehouse of this test."""
    shops = []

    def make(kind: str, page_size: int = 3, stock: int = 1000, **shop_options) -> Channel:
        skus = [f"A-{uid}", f"B-{uid}"]
        catalog = {skus[0]: Decimal("10.00"), skus[1]: Decimal("4.50")}
        cls = {"shopify": ShopifySandbox, "woocommerce": WooCommerceSandbox, "amazon": AmazonSandbox}[kind]
        if kind == "amazon":
            shop_options = {"settle_seconds": 0, "rate": 200.0, "burst": 200, **shop_options}
        shop = cls(catalog=catalog, **shop_options).start()
        shops.append(shop)
        channel_id = f"{kind[:4]}-{uid}-{len(shops)}"
        config, credentials = shop.channel(channel_id, page_size=page_size)
        default_credentials().put(channel_id, credentials)
        ChannelStore().put(config)
        add_warehouse(ports, f"w-{uid}")
        for sku in skus:
            ports.inventory.set_on_hand(sku, f"w-{uid}", stock)
        return Channel(kind, shop, channel_id, skus)

    yield make
    for shop in shops:
        shop.stop()
    store = ChannelStore()
    for config in store.list():
        if uid in config.channel_id:
            store.delete(config.channel_id)


class RecordingWorkflow:
    """Counts workflow starts instead of running the state machine: for tests of the import itself
    (moto's interpreter running every imported order would only slow them down)."""

    def __init__(self) -> None:
        self.starts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def start(self, order_id: str, *args) -> None:
        with self._lock:
            self.starts[order_id] += 1


@pytest.fixture
def quiet(ports):
    """The stack's ports with a :class:`RecordingWorkflow` (``quiet.workflow.starts``)."""
    bundle = copy.copy(ports)  # not dataclasses.replace: Ports.__post_init__ would register listeners again
    bundle.workflow = RecordingWorkflow()
    return bundle


def refs(channel: Channel, external_id: str) -> list[dict]:
    """Every stored order with this (channel, external id): exactly one when all is well."""
    from orderflow.settings import get_settings

    resp = client("dynamodb").query(
        TableName=get_settings().orders_table, IndexName="by_channel_ref",
        KeyConditionExpression="channel_ref = :r",
        ExpressionAttributeValues={":r": {"S": f"{channel.channel_id}#{external_id}"}})
    return resp["Items"]


@pytest.mark.parametrize("kind", KINDS)
def test_paging_imports_each_order_once_and_the_next_poll_skips_them(quiet, connect, kind):
    ports = quiet
    channel = connect(kind, page_size=3)
    ids = [channel.shop.add_order() for _ in range(7)]
    first = channel.run(ports)
    assert (first.new, first.updated, first.skipped, first.failed, first.pages) == (7, 0, 0, 0, 3)
    assert first.more is False and first.watermark
    for external_id in ids:
        assert len(refs(channel, external_id)) == 1
        order = channel.stored(ports, external_id)
        assert order.channel == channel.channel_id and ports.workflow.starts[order.order_id] == 1
    again = channel.run(ports)  # overlap: the last minutes are read again, nothing is stored twice
    assert (again.new, again.skipped) == (0, 7)
    channel.shop.add_order()
    third = channel.run(ports)
    assert third.new == 1
    assert all(len(refs(channel, external_id)) == 1 for external_id in ids)


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_cut_off_by_its_deadline_resumes_from_the_saved_page(quiet, connect, kind):
    ports = quiet
    channel = connect(kind, page_size=2)
    ids = [channel.shop.add_order() for _ in range(7)]
    served = lambda: len([r for r in channel.order_requests() if r["status"] == 200])  # noqa: E731
    cut = channel.run(ports, deadline=Deadline(remaining=lambda: 1000.0 if served() < 2 else 0.0))
    assert (cut.new, cut.pages, cut.more, cut.stopped) == (4, 2, True, "deadline")
    cursor = ChannelStore().cursor(channel.channel_id)
    assert cursor.run is not None and cursor.run.token and cursor.watermark is None  # moved only per page
    before = len(channel.order_requests())
    rest = channel.run(ports)
    assert (rest.new, rest.skipped, rest.pages, rest.more) == (3, 0, 2, False)
    first_of_resumed_run = channel.order_requests()[before]
    if kind == "woocommerce":
        assert first_of_resumed_run["query"]["page"] == "3"
    elif kind == "amazon":
        assert "paginationToken" in first_of_resumed_run["query"]
    else:
        assert first_of_resumed_run["json"]["variables"]["after"]
    assert ChannelStore().cursor(channel.channel_id).run is None
    assert all(len(refs(channel, external_id)) == 1 for external_id in ids)


@pytest.mark.parametrize("kind", KINDS)
def test_a_run_that_crashes_mid_page_stores_nothing_twice_when_it_runs_again(quiet, connect, kind):
    ports = quiet
    channel = connect(kind, page_size=3)
    ids = [channel.shop.add_order() for _ in range(6)]
    real_start, calls = ports.workflow.start, []

    def crash_on_fifth(order_id, *args):
        calls.append(order_id)
        if len(calls) == 5:  # the second page's second order: stored, but its StartExecution never happens
            raise RuntimeError("the Lambda was killed")
        real_start(order_id, *args)

    ports.workflow.start = crash_on_fifth
    with pytest.raises(RuntimeError):
        import_channel(channel.channel_id, ports, options=options(workers=1))
    cursor = ChannelStore().cursor(channel.channel_id)
    assert cursor.run.pages == 1 and cursor.lease_owner is None  # page 1 saved; the lease was given back
    ports.workflow.start = real_start
    rerun = channel.run(ports)
    assert rerun.pages == 1 and rerun.new + rerun.skipped == 3  # page 2 read again, stored at most once
    assert all(len(refs(channel, external_id)) == 1 for external_id in ids)
    never_started = calls[4]
    assert ports.workflow.starts[never_started] == 1  # the rerun started it
    assert all(ports.workflow.starts[channel.stored(ports, external_id).order_id] >= 1 for external_id in ids)


@pytest.mark.parametrize("kind", KINDS)
def test_429s_are_backed_off_and_the_import_completes(quiet, connect, kind):
    ports = quiet
    channel = connect(kind)
    for _ in range(4):
        channel.shop.add_order()
    channel.shop.inject(status=429, count=2, retry_after=0.01, path_prefix=ORDER_PATHS[kind])
    report = channel.run(ports)
    assert report.new == 4 and report.stopped is None
    assert [r["status"] for r in channel.order_requests()][:3] == [429, 429, 200]


@pytest.mark.parametrize("kind", KINDS)
def test_a_long_retry_after_ends_the_run_without_moving_the_cursor(quiet, connect, kind):
    ports = quiet
    channel = connect(kind)
    channel.shop.add_order()
    channel.shop.inject(status=429, count=1, retry_after=3600, path_prefix=ORDER_PATHS[kind])
    report = channel.run(ports)
    assert (report.stopped, report.more, report.new) == ("rate_limited", True, 0)
    assert ChannelStore().cursor(channel.channel_id).watermark is None
    assert channel.run(ports).new == 1


@pytest.mark.parametrize("kind", KINDS)
def test_malformed_orders_are_kept_as_needs_attention_and_never_block_their_page(quiet, connect, kind):
    ports = quiet
    channel = connect(kind, page_size=6)
    first = channel.shop.add_order()
    defects = {"missing_sku": "sku", "bad_price": "unit_price", "bad_country": "country",
               "no_address": "shipping_address"}
    bad = {channel.shop.add_order(malformed=defect): field for defect, field in defects.items()}
    last = channel.shop.add_order()
    report = channel.run(ports)
    assert (report.new, report.failed, report.pages) == (2, 4, 1)
    assert {f["external_id"] for f in report.failures} == set(bad)
    for external_id, field in bad.items():
        stuck = channel.stored(ports, external_id)
        assert stuck.status == OrderStatus.NEEDS_ATTENTION
        assert field in stuck.attention_reason and stuck.events[-1].type == "needs_attention"
        assert external_id in stuck.channel_payload  # the channel's own JSON, for whoever fixes it
        assert ports.workflow.starts[stuck.order_id] == 0
    for good in (first, last):
        assert ports.workflow.starts[channel.stored(ports, good).order_id] == 1
    again = channel.run(ports)
    assert (again.failed, again.skipped) == (0, 6)  # seen again: already kept, not a second time


@pytest.mark.parametrize("kind", KINDS)
def test_an_order_cancelled_on_the_channel_is_cancelled_here_and_its_stock_released(ports, connect, kind):
    channel = connect(kind, stock=10)
    external_id = channel.shop.add_order(lines=[(channel.skus[0], 2)])
    channel.run(ports)
    order = wait_for(ports, channel.stored(ports, external_id).order_id, OrderStatus.PAID)
    assert sum(lv.committed for lv in ports.inventory.levels(channel.skus[0])) == 2
    channel.shop.cancel(external_id)
    report = channel.run(ports)
    assert report.updated == 1
    cancelled = ports.orders.get(order.order_id)
    assert cancelled.status == OrderStatus.CANCELLED
    assert sum(lv.committed for lv in ports.inventory.levels(channel.skus[0])) == 0
    assert channel.run(ports).updated == 0  # cancelled once
    never_seen = channel.shop.add_order()
    channel.shop.cancel(never_seen)
    skipped = channel.run(ports)
    assert skipped.new == 0 and channel.stored(ports, never_seen) is None


@pytest.mark.parametrize("kind", KINDS)
def test_an_unpaid_order_is_held_and_starts_when_it_is_paid(quiet, connect, kind):
    ports = quiet
    channel = connect(kind)
    external_id = channel.shop.add_order(state="pending")
    assert channel.run(ports).new == 1
    held = channel.stored(ports, external_id)
    assert held.status == OrderStatus.NEW and "unpaid" in held.hold_reason
    assert ports.workflow.starts[held.order_id] == 0
    assert channel.run(ports).updated == 0  # still unpaid: still held
    channel.shop.pay(external_id)
    report = channel.run(ports)
    assert report.updated == 1
    paid = ports.orders.get(held.order_id)
    assert paid.hold_reason is None and paid.events[-1].type == "payment_received"
    assert ports.workflow.starts[held.order_id] == 1
    assert channel.run(ports).updated == 0


@pytest.mark.parametrize("kind", KINDS)
def test_two_imports_of_one_channel_at_once_store_each_order_once(quiet, connect, kind):
    ports = quiet
    channel = connect(kind, page_size=2)
    ids = [channel.shop.add_order() for _ in range(10)]
    reports = []
    # lease_seconds ~0: the second import does not wait for the first (as if its lease had run out), so
    # both read the same pages at the same time; only the guard items keep each order single.
    go = threading.Barrier(2)

    def run():
        go.wait()
        reports.append(channel.run(ports, lease_seconds=0.001))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(reports) == 2
    assert all(len(refs(channel, external_id)) == 1 for external_id in ids)
    assert sum(r.new for r in reports) == 10


def test_a_second_import_while_one_holds_the_lease_reports_busy(quiet, connect):
    ports = quiet
    channel = connect("woocommerce")
    channel.shop.add_order()
    store = ChannelStore()
    assert store.acquire(channel.channel_id, "someone-else", lease_seconds=60) is not None
    busy = channel.run(ports)
    assert (busy.stopped, busy.new, busy.more) == ("busy", 0, True)
    store.release(channel.channel_id, "someone-else", {})
    assert channel.run(ports).new == 1


def test_an_imported_order_runs_the_whole_workflow_through_the_real_asl(stack, ports, connect):
    channel = connect("shopify")
    external_id = channel.shop.add_order(lines=[(channel.skus[0], 3)])
    channel.run(ports)
    order = wait_for(ports, channel.stored(ports, external_id).order_id, OrderStatus.PAID)
    assert order.external_id == external_id and order.lines[0].unit_price == Decimal("10.00")
    service.add_tracking(order.order_id, service.TrackingIn(carrier="UPS", tracking_number="1Z999AA1"), ports)
    done = wait_for(ports, order.order_id, OrderStatus.COMPLETED)
    assert execution_status(stack, order.order_id)["status"] == "SUCCEEDED"
    types = [e.type for e in done.events]
    assert types[0] == "created" and "completed" in types


# -- a page in few round trips ---------------------------------------------------------------------
ADDRESS = {"name": "Ada Lovelace", "line1": "12 Analytical St", "city": "London", "postal_code": "N1 9GU",
           "country": "GB"}


def new_order(channel_id: str, external_id: str) -> NewOrder:
    return NewOrder.model_validate({"channel": channel_id, "external_id": external_id, "shipping_address": ADDRESS,
                                    "lines": [{"sku": "MUG", "quantity": 1, "unit_price": "9.50"}]})


def store_old_scheme(ports, new: NewOrder) -> Order:
    """What OrderRepository.create wrote before ids were derived: a random id, and the guard item
    ``ref#<channel>#<external id>`` naming it, in one transaction."""
    order = Order.from_new(new, order_id=new_id("ord"))
    repo = ports.orders
    guard = to_item({"order_id": f"ref#{order.channel}#{order.external_id}", "target": order.order_id})
    client("dynamodb").transact_write_items(TransactItems=[
        {"Put": {"TableName": repo.table, "Item": repo._to_item(order),
                 "ConditionExpression": "attribute_not_exists(order_id)"}},
        {"Put": {"TableName": repo.table, "Item": guard, "ConditionExpression": "attribute_not_exists(order_id)"}}])
    return order


class CallsFor:
    """The DynamoDB calls that name one channel (its order ids, guard items or refs), by operation."""

    def __init__(self, channel_id: str, external_ids: list[str]) -> None:
        self.marks = [channel_id] + [channel_order_id(channel_id, e) for e in external_ids]
        self.calls: Counter[str] = Counter()

    def __enter__(self) -> CallsFor:
        client("dynamodb").meta.events.register("provide-client-params.dynamodb.*", self._seen)
        return self

    def __exit__(self, *_) -> None:
        client("dynamodb").meta.events.unregister("provide-client-params.dynamodb.*", self._seen)

    def _seen(self, params, model, **_) -> None:
        text = repr(params)
        if any(mark in text for mark in self.marks):
            self.calls[model.name] += 1


def test_a_page_of_new_orders_costs_one_transaction_and_a_batch_look_up(quiet, connect):
    channel = connect("woocommerce", page_size=20)
    ids = [channel.shop.add_order() for _ in range(12)]
    with CallsFor(channel.channel_id, ids) as seen:
        report = channel.run(quiet)
    assert (report.new, report.pages) == (12, 1)
    # one read of the derived ids, one of the older scheme's guard items; one write for all twelve
    assert seen.calls["BatchGetItem"] == 2 and seen.calls["TransactWriteItems"] == 1
    assert seen.calls["PutItem"] == 0
    for external_id in ids:
        order = channel.stored(quiet, external_id)
        assert order.order_id == channel_order_id(channel.channel_id, external_id)
        assert len(refs(channel, external_id)) == 1 and quiet.workflow.starts[order.order_id] == 1
    with CallsFor(channel.channel_id, ids) as seen:
        again = channel.run(quiet)  # the overlap read again: found by the look-up, nothing written
    assert (again.new, again.skipped) == (0, 12)
    assert seen.calls["TransactWriteItems"] == 0 and seen.calls["BatchGetItem"] == 1


def test_orders_stored_under_either_scheme_are_recognized_and_only_the_others_stored(quiet, connect):
    channel = connect("shopify", page_size=10)
    ids = [channel.shop.add_order() for _ in range(6)]
    old = store_old_scheme(quiet, new_order(channel.channel_id, ids[1]))  # stored before this change
    derived, created = quiet.orders.create(Order.from_new(new_order(channel.channel_id, ids[4])))  # a webhook
    assert created and derived.order_id == channel_order_id(channel.channel_id, ids[4])
    assert quiet.orders.find_by_channel_ref(channel.channel_id, ids[1]).order_id == old.order_id
    report = channel.run(quiet)
    assert (report.new, report.skipped, report.failed) == (4, 2, 0)
    assert channel.stored(quiet, ids[1]).order_id == old.order_id
    assert channel.stored(quiet, ids[4]).order_id == derived.order_id
    for external_id in ids:
        assert len(refs(channel, external_id)) == 1
    # an order id derived for the old order was never written
    with pytest.raises(Exception, match="not found"):
        quiet.orders.get(channel_order_id(channel.channel_id, ids[1]))


def test_two_imports_writing_the_same_page_at_once_store_each_order_once(quiet, connect):
    channel = connect("woocommerce", page_size=20)
    ids = [channel.shop.add_order() for _ in range(12)]
    both = threading.Barrier(2, timeout=60)

    class Colliding:
        """Both runs write the page only once both have looked it up (and found nothing)."""

        def __init__(self, real) -> None:
            self.real = real

        def create_many(self, orders):
            both.wait()
            return self.real.create_many(orders)

        def __getattr__(self, name):
            return getattr(self.real, name)

    ports = copy.copy(quiet)
    ports.orders = Colliding(quiet.orders)
    reports = []

    def run():
        reports.append(channel.run(ports, lease_seconds=0.001))  # the lease does not keep them apart

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    assert len(reports) == 2
    assert sorted((r.new, r.skipped) for r in reports) == [(0, 12), (12, 0)]
    for external_id in ids:
        assert len(refs(channel, external_id)) == 1
        assert quiet.workflow.starts[channel.stored(quiet, external_id).order_id] >= 1


def test_a_transaction_writes_the_orders_not_stored_yet_and_nothing_when_dynamodb_refuses_one(ports, uid):
    repo = ports.orders
    channel_id = f"tx-{uid}"
    a, b, c = (Order.from_new(new_order(channel_id, e)) for e in ("a", "b", "c"))
    stored_b, _ = repo.create(Order.from_new(new_order(channel_id, "b")))
    results = repo.create_many([a, b, c])
    assert [(o.order_id, created) for o, created in results] == [(a.order_id, True), (b.order_id, False),
                                                                  (c.order_id, True)]
    assert results[1][0].events[0].at == stored_b.events[0].at  # the stored order, not the one sent
    # an item DynamoDB refuses (over 400 KB) cancels its whole transaction: none of the three is written
    d, big, e = (Order.from_new(new_order(channel_id, x)) for x in ("d", "big", "e"))
    big.channel_payload = "x" * 450_000
    assert repo.create_many([d, big, e]) == [None, None, None]
    assert all(repo.find_by_channel_ref(channel_id, x) is None for x in ("d", "big", "e"))
    assert repo.create(d)[1] and repo.create(e)[1]  # written alone, as the importer then does
    with pytest.raises(Exception, match="(?i)size"):
        repo.create(big)
    assert repo.find_by_channel_ref(channel_id, "big") is None


def test_a_crash_after_the_page_is_stored_and_before_its_workflows_start_is_recovered_by_the_next_run(
        quiet, connect):
    channel = connect("amazon", page_size=10)
    ids = [channel.shop.add_order() for _ in range(4)]
    recording = quiet.workflow.start

    def killed(order_id, *args):
        raise RuntimeError("the Lambda was killed")

    quiet.workflow.start = killed
    with pytest.raises(RuntimeError, match="killed"):
        channel.run(quiet)
    stored = [channel.stored(quiet, e) for e in ids]
    assert all(o is not None and o.status == OrderStatus.NEW for o in stored)  # whole orders, never started
    assert not any(quiet.workflow.starts[o.order_id] for o in stored)
    quiet.workflow.start = recording
    rerun = channel.run(quiet)  # the cursor did not move past the page: it is read again
    assert (rerun.new, rerun.skipped) == (0, 4)
    assert all(quiet.workflow.starts[o.order_id] == 1 for o in stored)
    assert all(len(refs(channel, e)) == 1 for e in ids)


def test_an_order_written_in_a_page_transaction_reads_and_saves_like_any_other(quiet, connect):
    channel = connect("woocommerce")
    external_id = channel.shop.add_order(lines=[(channel.skus[0], 3), (channel.skus[1], 1)])
    channel.run(quiet)
    order = channel.stored(quiet, external_id)
    assert [(line.sku, line.quantity, line.unit_price) for line in order.lines] == [
        (channel.skus[0], 3, Decimal("10.00")), (channel.skus[1], 1, Decimal("4.50"))]
    assert [e.type for e in order.events] == ["created"] and order.version == 0
    saved = quiet.orders.update(order.order_id, lambda o: o.record("note", "checked"))
    assert saved.version == 1 and quiet.orders.get(order.order_id).events[-1].type == "note"
