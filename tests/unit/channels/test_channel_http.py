"""The HTTP layer's pieces that need no socket: Retry-After, backoff, the token bucket, the deadline."""

from __future__ import annotations

import pytest

from orderflow.channels.base import OutOfTime
from orderflow.channels.http import Deadline, RateLimiter, RetryPolicy, retry_after_seconds


def test_retry_after_as_seconds_or_http_date():
    assert retry_after_seconds("2.0") == 2.0
    assert retry_after_seconds("7") == 7.0
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412470.0) == pytest.approx(10.0)
    assert retry_after_seconds("Wed, 21 Oct 2015 07:28:00 GMT", now=1445412490.0) == 0.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None


def test_backoff_is_exponential_capped_and_jittered():
    policy = RetryPolicy(base_delay=1, max_delay=8, jitter=False)
    assert [policy.backoff(n) for n in range(1, 6)] == [1, 2, 4, 8, 8]
    jittered = RetryPolicy(base_delay=1, max_delay=8)
    assert all(0 <= jittered.backoff(4) <= 8 for _ in range(50))


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_allows_the_burst_then_the_rate():
    clock = Clock()
    bucket = RateLimiter(rate=0.5, burst=2, clock=clock)
    for _ in range(2):
        assert bucket.wait_time() == 0
        bucket.take()
    assert bucket.wait_time() == pytest.approx(2.0)
    clock.now += 1
    assert bucket.wait_time() == pytest.approx(1.0)
    clock.now += 1
    assert bucket.wait_time() == 0


def test_token_bucket_state_survives_a_restart():
    clock = Clock()
    bucket = RateLimiter(rate=0.0056, burst=20, clock=clock)
    for _ in range(20):
        bucket.take()
    saved = bucket.state()
    clock.now += 10
    again = RateLimiter(rate=0.0056, burst=20, state=saved, clock=clock)
    assert again.wait_time() == pytest.approx((1 - 10 * 0.0056) / 0.0056)


def test_token_bucket_learns_the_channels_rate():
    clock = Clock()
    bucket = RateLimiter(rate=0.0056, burst=1, clock=clock)
    bucket.take()
    bucket.adapt(2.0)
    assert bucket.wait_time() == pytest.approx(0.5)
    with pytest.raises(ValueError):
        RateLimiter(rate=0, burst=1)


def test_deadline():
    assert Deadline().left() == float("inf")
    with pytest.raises(OutOfTime):
        Deadline(remaining=lambda: 5.0, margin=6.0).check()
    Deadline(remaining=lambda: 5.0, margin=1.0).check()

    class Context:
        def get_remaining_time_in_millis(self):
            return 30_000

    assert Deadline.of_lambda(Context(), margin=10).left() == pytest.approx(20)


def test_no_request_waits_longer_than_the_run_has_left():
    """An API-started import has ~24 s; a 30 s HTTP timeout let one slow answer carry it past the API
    function's 29 s, killed while holding the channel's lease."""
    import httpx

    from orderflow.channels.http import MIN_REQUEST_SECONDS, ChannelHttp

    left = [2.5]
    http = ChannelHttp("https://shop.example", "ch", timeout=30.0, deadline=Deadline(remaining=lambda: left[0]))
    asked: list[float] = []

    def answer(method, path, **kwargs):
        asked.append(kwargs["timeout"])
        return httpx.Response(200, json={}, request=httpx.Request(method, f"https://shop.example{path}"))

    http.client.request = answer
    http.request("GET", "/orders")
    left[0] = 0.2
    http.request("GET", "/orders")
    left[0] = 100.0
    http.request("GET", "/orders")
    assert asked == [2.5, MIN_REQUEST_SECONDS, 30.0]
    http.close()


def test_an_import_with_a_short_deadline_holds_the_channel_only_a_little_longer():
    """The lease of an API-started import ends a minute after its deadline, not 16 minutes later."""
    from types import SimpleNamespace

    from orderflow.channels.importing import LEASE_MARGIN_SECONDS, ImportOptions, import_channel

    leases: list[float] = []

    class Store:
        def get(self, channel_id):
            return SimpleNamespace(channel_id=channel_id, type="shopify")

        def acquire(self, channel_id, owner, lease_seconds):
            leases.append(lease_seconds)
            return None  # busy: nothing else runs

    report = import_channel("ch", ports=None, store=Store(), credentials=object(),
                            options=ImportOptions(deadline=Deadline(remaining=lambda: 24.0)))
    assert report.stopped == "busy"
    import_channel("ch", ports=None, store=Store(), credentials=object(), options=ImportOptions())
    assert leases == [24.0 + LEASE_MARGIN_SECONDS, 960.0]


def _http_answering(answers, **options):
    """A ChannelHttp whose requests get ``answers`` in turn (an int status, a (status, Retry-After) pair or an
    exception), sleeping into a list."""
    import httpx

    from orderflow.channels.http import ChannelHttp

    sleeps: list[float] = []
    retry = RetryPolicy(**{"max_attempts": 4, "base_delay": 1.0, "max_delay": 8.0, "jitter": False,
                           "sleep": sleeps.append, **options.pop("retry", {})})
    http = ChannelHttp("https://shop.example", "ch", retry=retry, **options)
    pending = list(answers)

    def answer(method, path, **kwargs):
        now = pending.pop(0)
        if isinstance(now, Exception):
            raise now
        status, wait = now if isinstance(now, tuple) else (now, None)
        return httpx.Response(status, json={}, headers={"Retry-After": wait} if wait else {},
                              request=httpx.Request(method, f"https://shop.example{path}"))

    http.client.request = answer
    return http, sleeps


def test_the_channel_client_retries_by_the_shared_policy_and_keeps_its_errors():
    import httpx

    from orderflow.channels.base import ChannelUnavailable, RateLimited

    http, sleeps = _http_answering([(429, "3"), 503, httpx.ConnectError("refused"), 200])
    assert http.request("GET", "/orders").status_code == 200
    assert sleeps == [3.0, 2.0, 4.0]  # what the channel asked, then the backoff of attempts 2 and 3

    http, sleeps = _http_answering([503] * 4)
    with pytest.raises(ChannelUnavailable) as unavailable:
        http.request("GET", "/orders")
    assert unavailable.value.details["status"] == 503 and sleeps == [1.0, 2.0, 4.0]

    http, sleeps = _http_answering([(429, "600")])
    with pytest.raises(RateLimited) as limited:
        http.request("GET", "/orders")
    assert limited.value.retry_after == 600 and sleeps == []

    http, sleeps = _http_answering([429] * 4)
    with pytest.raises(RateLimited) as limited:
        http.request("GET", "/orders")
    assert "after 4 attempts" in limited.value.message and sleeps == [1.0, 2.0, 4.0]

    http, sleeps = _http_answering([httpx.ReadTimeout("slow")] * 4)
    with pytest.raises(ChannelUnavailable):
        http.request("GET", "/orders")


def test_a_channel_retry_that_would_pass_the_deadline_ends_the_run():
    import httpx

    from orderflow.channels.base import RateLimited

    http, sleeps = _http_answering([503], deadline=Deadline(remaining=lambda: 0.8))  # the backoff is 1 s
    with pytest.raises(OutOfTime):
        http.request("GET", "/orders")
    http, sleeps = _http_answering([(429, "2")], deadline=Deadline(remaining=lambda: 1.5))
    with pytest.raises(RateLimited) as limited:
        http.request("GET", "/orders")
    assert limited.value.retry_after == 2.0
    http, sleeps = _http_answering([httpx.ConnectError("x")], deadline=Deadline(remaining=lambda: 0.5))
    with pytest.raises(OutOfTime):
        http.request("GET", "/orders")
    assert sleeps == []
