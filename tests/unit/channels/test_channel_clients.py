"""Each channel client against its sandbox over real sockets: paging, 429s, auth, inventory pushes."""

from __future__ import annotations

import httpx
import pytest

from orderflow.channels.base import ChannelAuthError, ChannelError, ChannelState, RateLimited
from orderflow.channels.http import Deadline
from orderflow_local.sandbox import AmazonSandbox, ShopifySandbox
from tests.unit.channels.conftest import SINCE, connect, fast_retry, read_all, sandbox


def test_paging_reads_every_order_once_across_pages(shop):
    ids = [shop.add_order() for _ in range(8)]
    client = connect(shop, page_size=3)
    orders, pages = read_all(client)
    assert pages == 3
    assert sorted(o.external_id for o in orders) == sorted(ids)
    assert all(o.state == ChannelState.READY and o.order is not None for o in orders)
    assert {line.unit_price for o in orders for line in o.order.lines} <= {
        __import__("decimal").Decimal(p) for p in ("19.99", "12.50", "12.5", "9.00", "9.0", "9")}


def test_paging_follows_the_channels_own_mechanism(shop):
    for _ in range(5):
        shop.add_order()
    read_all(connect(shop, page_size=2))
    api = [r for r in shop.api_requests() if r["path"] != "/auth/o2/token"]
    assert len(api) == 3
    if shop.kind == "woocommerce":
        assert [r["query"]["page"] for r in api] == ["1", "2", "3"]
        assert all(r["query"]["per_page"] == "2" and "modified_after" in r["query"] for r in api)
    elif shop.kind == "amazon":
        assert "paginationToken" not in api[0]["query"] and all("paginationToken" in r["query"] for r in api[1:])
        assert all("lastUpdatedAfter" in r["query"] for r in api)
    else:
        assert all(r["path"] == "/admin/api/2026-04/graphql.json" for r in api)


def test_only_orders_changed_since_the_time_are_read(shop):
    old = shop.add_order(at=shop.clock() - 3600)
    new = shop.add_order()
    from datetime import UTC, datetime, timedelta

    orders, _ = read_all(connect(shop), since=datetime.now(UTC) - timedelta(minutes=5))
    assert [o.external_id for o in orders] == [new]
    assert old not in [o.external_id for o in orders]


def test_429_with_retry_after_is_waited_out_and_retried(shop):
    shop.add_order()
    prefix = "/orders/" if shop.kind == "amazon" else ""
    shop.inject(status=429, count=2, retry_after=0.01, path_prefix=prefix)
    orders, _ = read_all(connect(shop))
    assert len(orders) == 1
    statuses = [r["status"] for r in shop.api_requests(prefix) if r["path"] != "/auth/o2/token"]
    assert statuses == [429, 429, 200]


def test_a_429_that_never_ends_gives_up_as_rate_limited(shop):
    prefix = "/orders/" if shop.kind == "amazon" else ""
    shop.inject(status=429, count=50, retry_after=0.001, path_prefix=prefix)
    with pytest.raises(RateLimited):
        connect(shop, retry=fast_retry(max_attempts=3)).fetch_page(SINCE, None)


def test_a_retry_after_longer_than_the_run_has_left_stops_the_run(shop):
    prefix = "/orders/" if shop.kind == "amazon" else ""
    shop.inject(status=429, count=1, retry_after=30, path_prefix=prefix)
    client = connect(shop, deadline=Deadline.after(5))
    with pytest.raises(RateLimited) as err:
        client.fetch_page(SINCE, None)
    assert err.value.retry_after == pytest.approx(30)


def test_server_errors_are_retried_then_reported(shop):
    shop.add_order()
    prefix = "/orders/" if shop.kind == "amazon" else ""
    shop.inject(status=503, count=1, path_prefix=prefix)
    orders, _ = read_all(connect(shop))
    assert len(orders) == 1
    shop.inject(status=500, count=10, path_prefix=prefix)
    with pytest.raises(ChannelError) as err:
        connect(shop, retry=fast_retry(max_attempts=2)).fetch_page(SINCE, None)
    assert err.value.code == "channel_unavailable"


def test_wrong_credentials_are_refused_plainly(shop):
    client = connect(shop, channel_id=f"wrong-{shop.kind}")  # then the shop changes what it accepts
    if shop.kind == "shopify":
        shop.access_token = "other"
    elif shop.kind == "woocommerce":
        shop.consumer_secret = "other"
    else:
        shop.refresh_token = "other"
    with pytest.raises(ChannelAuthError):
        client.fetch_page(SINCE, None)


def test_push_inventory_reaches_the_shop_and_is_recorded(shop):
    result = connect(shop).push_inventory("MUG-12OZ", 17)
    assert (result.sku, result.quantity) == ("MUG-12OZ", 17)
    assert shop.inventory()["levels"] == {"MUG-12OZ": 17}
    over_http = httpx.get(f"{shop.url}/_sandbox/inventory").json()
    assert over_http["pushes"][-1]["sku"] == "MUG-12OZ" and over_http["pushes"][-1]["quantity"] == 17


def test_push_inventory_for_an_unknown_sku_is_an_error(shop):
    with pytest.raises(ChannelError):
        connect(shop).push_inventory("NO-SUCH-SKU", 3)
    assert shop.inventory()["pushes"] == []


# -- Shopify specifics ------------------------------------------------------------------------------------


def test_shopify_throttled_graphql_waits_for_the_bucket_and_retries():
    with ShopifySandbox() as shop:
        shop.add_order()
        shop.inject(kind="throttled", count=2, retry_after=0.01)
        orders, _ = read_all(connect(shop))
        assert len(orders) == 1
        assert len(shop.api_requests()) == 3


def test_shopify_inventory_push_sends_an_idempotency_key_and_change_from_quantity():
    with ShopifySandbox() as shop:
        client = connect(shop)
        client.push_inventory("POSTER-A2", 5, idempotency_key="k-1")
        client.push_inventory("POSTER-A2", 5, idempotency_key="k-1")  # a retry: applied once
        assert [p["quantity"] for p in shop.pushes] == [5]
        assert shop.pushes[0]["idempotency_key"] == "k-1"
        with pytest.raises(ChannelError, match="IDEMPOTENCY_KEY_PARAMETER_MISMATCH"):
            client.push_inventory("POSTER-A2", 6, idempotency_key="k-1")
        client.push_inventory("POSTER-A2", 8, idempotency_key="k-2", expected_quantity=5)  # compare-and-swap
        with pytest.raises(ChannelError, match="CHANGE_FROM_QUANTITY_STALE"):
            client.push_inventory("POSTER-A2", 9, idempotency_key="k-3", expected_quantity=5)
        assert shop.levels["POSTER-A2"] == 8


def test_shopify_orders_with_many_lines_are_read_in_full():
    with ShopifySandbox(catalog={f"SKU-{i}": __import__("decimal").Decimal("1.00") for i in range(40)}) as shop:
        shop.add_order(lines=[(f"SKU-{i}", 1) for i in range(40)])
        orders, _ = read_all(connect(shop))
        assert len(orders[0].order.lines) == 40


# -- Amazon specifics -------------------------------------------------------------------------------------


def test_amazon_access_token_is_cached_and_refreshed_when_it_expires():
    with AmazonSandbox(settle_seconds=0, rate=50, burst=50) as shop:
        shop.add_order()
        client = connect(shop, channel_id="amz-refresh")
        read_all(client)
        read_all(client)
        assert shop.token_requests == 1  # cached
        shop.expire_tokens()
        orders, _ = read_all(client)
        assert len(orders) == 1
        assert shop.token_requests == 2
        assert [r["status"] for r in shop.api_requests("/orders/")][-2:] == [403, 200]


def test_amazon_rate_limit_bucket_spaces_calls_and_is_saved_between_runs():
    with AmazonSandbox(settle_seconds=0, rate=50.0, burst=50) as shop:
        for _ in range(4):
            shop.add_order()
        client = connect(shop, channel_id="amz-rate", page_size=1)
        client.http.limiter.burst = client.http.limiter.tokens = 2  # our bucket: 2 at once, then spaced
        orders, pages = read_all(client)
        assert pages == 4 and len(orders) == 4
        state = client.rate_state()
        assert set(state) == {"tokens", "at"}  # saved with the channel's cursor after each page
        # A later run restores the bucket; with Amazon's published 0.0056 rps the next call is minutes away,
        # longer than the run has: it stops at once (RateLimited), the run after it continues.
        slow = connect(shop, channel_id="amz-rate", page_size=1, rate_state={"tokens": "0", "at": state["at"]},
                       deadline=Deadline.after(60))
        slow.http.limiter.rate = 0.0056
        with pytest.raises(RateLimited) as err:
            slow.fetch_page(SINCE, None)
        assert err.value.retry_after > 60
        assert len(shop.api_requests("/orders/")) == 4  # nothing was sent


def test_amazon_quota_exceeded_429_is_backed_off_at_the_rate_amazon_announces():
    with AmazonSandbox(settle_seconds=0, rate=5.0, burst=1) as shop:
        shop.add_order()
        shop.add_order()
        client = connect(shop, channel_id="amz-429", page_size=1)
        client.http.limiter.burst = client.http.limiter.tokens = 100  # as if our bucket thought otherwise
        orders, _ = read_all(client)
        assert len(orders) == 2
        assert [r["status"] for r in shop.api_requests("/orders/")] == [200, 429, 200]
        assert client.http.limiter.rate == 5.0  # learnt from x-amzn-RateLimit-Limit


def test_amazon_only_sees_changes_older_than_its_settle_time():
    with AmazonSandbox(settle_seconds=3600, rate=50, burst=50) as shop:
        shop.add_order()
        orders, _ = read_all(connect(shop, channel_id="amz-settle"))
        assert orders == []


def test_a_sandbox_keeps_producing_orders_by_itself():
    shop = sandbox("woocommerce", order_every=0.02)
    try:
        import time

        deadline = time.monotonic() + 5
        while len(shop.orders) < 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert len(shop.orders) >= 5
    finally:
        shop.stop()
