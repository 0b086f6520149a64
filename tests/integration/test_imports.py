"""Imports from each sandbox channel into the local stack (moto, the real ASL, our handlers), over real
sockets: paging, exactly once, cursor resume, 429s, malformed, cancelled and unpaid orders, concurrency."""

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
from orderflow.channels.http import Deadline, RetryPolicy
from orderflow.channels.importing import ImportOptions, import_channel
from orderflow.models import OrderStatus
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
