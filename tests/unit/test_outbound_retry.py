"""The one retry policy of outbound calls (orderflow.outbound_retry): Retry-After read once, the waits and
when to stop. A fake clock and a recording sleep: nothing here waits."""

from __future__ import annotations

import httpx
import pytest

from orderflow.outbound_retry import (
    RETRY_ERRORS,
    Deadline,
    RetryPolicy,
    Stop,
    Verdict,
    retry_after_seconds,
)

NOW = 1445412470.0  # Wed, 21 Oct 2015 07:27:50 GMT


class Sleeps(list):
    def __call__(self, seconds: float) -> None:
        self.append(seconds)


class Clock:
    def __init__(self, now: float = 100.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def policy(**overrides) -> RetryPolicy:
    return RetryPolicy(**{"base_delay": 1.0, "max_delay": 8.0, "jitter": False, "sleep": Sleeps(), **overrides})


@pytest.mark.parametrize(("header", "seconds"), [
    ("2", 2.0), ("2.5", 2.5), (" 7 ", 7.0), ("0", 0.0), ("-3", 0.0),
    ("Wed, 21 Oct 2015 07:28:00 GMT", 10.0),  # an HTTP date, from now
    ("Wednesday, 21-Oct-15 07:28:00 GMT", 10.0),  # the obsolete RFC 850 form
    ("Wed Oct 21 07:28:00 2015", 10.0),  # asctime, no zone: GMT
    ("Wed, 21 Oct 2015 07:27:00 GMT", 0.0),  # in the past: now
])
def test_retry_after_is_seconds_or_an_http_date(header, seconds):
    assert retry_after_seconds(header, now=NOW) == pytest.approx(seconds)


@pytest.mark.parametrize("header", [None, "", "soon", "nan", "Wed, 99 Foo 2015"])
def test_an_unreadable_retry_after_is_none(header):
    assert retry_after_seconds(header, now=NOW) is None


def test_backoff_doubles_up_to_the_cap_and_jitter_stays_below_it():
    assert [policy().backoff(n) for n in range(1, 7)] == [1, 2, 4, 8, 8, 8]
    jittered = policy(jitter=True)
    assert all(0 <= jittered.backoff(3) <= 4 for _ in range(200))


def test_which_answers_and_failures_are_retried():
    retry = policy()
    assert [s for s in (200, 400, 401, 404, 409, 422, 429, 500, 501, 502, 503, 504) if retry.retries(s)] == [
        429, 500, 502, 503, 504]
    assert isinstance(httpx.ConnectError("x"), RETRY_ERRORS) and isinstance(httpx.ReadTimeout("x"), RETRY_ERRORS)
    assert not isinstance(ValueError("x"), RETRY_ERRORS)
    assert policy(statuses=frozenset({503})).retries(503) and not policy(statuses=frozenset({503})).retries(429)


def test_the_server_says_how_long_else_the_backoff():
    retry = policy()
    assert retry.decide(1, retry_after=3.0) == Verdict(3.0)
    assert retry.decide(3) == Verdict(4.0)
    assert retry.decide(1, at_least=2.5) == Verdict(2.5)  # a rate limiter's interval raises the backoff
    assert retry.decide(1, retry_after=0.5, at_least=2.5) == Verdict(0.5)  # not what the server asked


def test_it_stops_after_the_last_attempt():
    retry = policy(max_attempts=3)
    assert retry.decide(2).again
    assert retry.decide(3) == Verdict(0.0, Stop.ATTEMPTS)
    assert retry.decide(3, retry_after=2.0) == Verdict(2.0, Stop.ATTEMPTS)


def test_a_retry_after_longer_than_it_may_wait_stops_at_once():
    retry = policy(max_retry_after=10.0)
    assert retry.decide(1, retry_after=10.0).again
    assert retry.decide(1, retry_after=11.0) == Verdict(11.0, Stop.RETRY_AFTER)


def test_the_waits_of_one_call_stay_within_its_budget():
    retry = policy(budget=5.0)
    assert retry.decide(1, waited=4.0) == Verdict(1.0)
    assert retry.decide(2, waited=4.0) == Verdict(2.0, Stop.BUDGET)
    assert policy().decide(6 - 1, waited=1e9).again  # no budget: only attempts and the deadline


def test_no_wait_passes_the_deadline():
    clock = Clock()
    deadline = Deadline.after(5.0, margin=1.0, clock=clock)
    retry = policy()
    assert deadline.left() == 4.0
    assert retry.decide(1, retry_after=4.0, deadline=deadline).again
    assert retry.decide(1, retry_after=4.5, deadline=deadline) == Verdict(4.5, Stop.DEADLINE)
    clock.now += 3.5
    assert retry.decide(1, deadline=deadline) == Verdict(1.0, Stop.DEADLINE)
    assert Deadline().left() == float("inf")


def test_a_lambdas_remaining_time_is_the_deadline():
    class Context:
        millis = 30_000

        def get_remaining_time_in_millis(self):
            return self.millis

    context = Context()
    deadline = Deadline.of_lambda(context, margin=10)
    assert deadline.left() == 20.0
    context.millis = 12_000
    assert deadline.left() == 2.0
    assert Deadline.of_lambda(object()).left() == float("inf")


def test_waiting_sleeps_the_verdicts_wait_only():
    sleeps = Sleeps()
    retry = policy(sleep=sleeps)
    assert retry.wait(Verdict(1.5)) == 1.5
    assert retry.wait(Verdict(0.0)) == 0.0
    assert sleeps == [1.5]


def test_the_clients_use_this_policy_with_their_own_defaults():
    from orderflow.carriers.http import RetryPolicy as CarrierRetry
    from orderflow.channels.http import Deadline as ChannelDeadline
    from orderflow.channels.http import RetryPolicy as ChannelRetry
    from orderflow.channels.http import retry_after_seconds as channel_parser

    assert ChannelRetry is RetryPolicy and channel_parser is retry_after_seconds
    assert issubclass(ChannelDeadline, Deadline)
    carrier = CarrierRetry()
    assert isinstance(carrier, RetryPolicy)
    assert (carrier.max_attempts, carrier.max_retry_after, carrier.budget) == (4, 8.0, 12.0)
    assert (RetryPolicy().max_attempts, RetryPolicy().budget) == (6, None)
