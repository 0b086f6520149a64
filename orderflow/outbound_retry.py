"""How orderflow retries a call to another company's API: one policy for the channel clients (Shopify,
WooCommerce, Amazon), Amazon's Multi-Channel Fulfillment client and the carrier clients (EasyPost, Shippo).
Where a call may go at all is :mod:`orderflow.outbound`; this module is how often and how long it is tried.

- **What is retried**: HTTP 429, 500, 502, 503 and 504 (:data:`RETRY_STATUSES`) and a connection or read
  that failed (:data:`RETRY_ERRORS`). Everything else is the client's to turn into its own error.
- **How long to wait**: the ``Retry-After`` the server sent (delta-seconds or an HTTP date, read by
  :func:`retry_after_seconds`), else full-jitter exponential backoff (:meth:`RetryPolicy.backoff`).
- **When to stop** (:meth:`RetryPolicy.decide`, a :class:`Verdict` naming why): after ``max_attempts``; when
  ``Retry-After`` asks for longer than ``max_retry_after``; when the waits of one call would add up to more
  than its ``budget``; when a wait would pass the :class:`Deadline` (a Lambda's remaining time).

The policy decides and sleeps (``sleep`` is injectable: tests record the waits instead of waiting); each
client raises its own errors when it stops (channels: ``RateLimited``/``OutOfTime``/``ChannelUnavailable``,
carriers: ``CarrierUnavailable``).
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime
from enum import StrEnum
from typing import Any, Self

import httpx

#: Answers worth asking again: throttled, or the server failed or is overloaded.
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
#: Failures worth trying again: no connection, a connection dropped, no answer in time.
RETRY_ERRORS: tuple[type[Exception], ...] = (httpx.TransportError,)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds from ``now`` (default: the wall clock): delta-seconds (Shopify sends
    ``2.0``) or an HTTP date (one in the past is 0). None when absent or unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return max(0.0, seconds) if seconds == seconds else None  # NaN is not a wait
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT; a zone-less one is read as such
        when = when.replace(tzinfo=UTC)
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


@dataclass
class Deadline:
    """Seconds a run may still spend (a Lambda's remaining time minus a margin to save its place)."""

    remaining: Callable[[], float] | None = None
    margin: float = 0.0

    @classmethod
    def after(cls, seconds: float, margin: float = 0.0, *, clock: Callable[[], float] = time.monotonic) -> Self:
        end = clock() + seconds
        return cls(remaining=lambda: end - clock(), margin=margin)

    @classmethod
    def of_lambda(cls, context: Any, margin: float = 15.0) -> Self:
        get = getattr(context, "get_remaining_time_in_millis", None)
        if get is None:
            return cls()
        return cls(remaining=lambda: get() / 1000.0, margin=margin)

    def left(self) -> float:
        if self.remaining is None:
            return float("inf")
        return self.remaining() - self.margin


class Stop(StrEnum):
    """Why a call is not tried again."""

    #: ``max_attempts`` were made.
    ATTEMPTS = "attempts"
    #: The server asks us to wait longer than ``max_retry_after``.
    RETRY_AFTER = "retry_after"
    #: The waits of this call would add up to more than ``budget``.
    BUDGET = "budget"
    #: The wait would pass the deadline.
    DEADLINE = "deadline"


@dataclass(frozen=True)
class Verdict:
    """What to do after a failed attempt: wait ``wait`` seconds and try again, or stop (``stop`` says why;
    ``wait`` is then the wait that was not taken, for the caller's error: how long the server asked for)."""

    wait: float
    stop: Stop | None = None

    @property
    def again(self) -> bool:
        return self.stop is None


@dataclass
class RetryPolicy:
    """How often and how long one call is tried. Clients keep their own defaults (channels: these; carriers:
    fewer, shorter waits within a budget, the API Lambda having 29 s in all)."""

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    #: ``Retry-After`` is obeyed up to this many seconds; a longer one ends the retries.
    max_retry_after: float = 120.0
    #: Seconds all the waits of one call may add up to (None: no limit but the deadline).
    budget: float | None = None
    jitter: bool = True
    statuses: frozenset[int] = RETRY_STATUSES
    sleep: Callable[[float], None] = time.sleep

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff after the ``attempt``-th attempt (1-based)."""
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(0, cap) if self.jitter else cap  # noqa: S311 - jitter, not crypto

    def retries(self, status: int) -> bool:
        """Is an answer with this HTTP status worth another attempt?"""
        return status in self.statuses

    def decide(self, attempt: int, *, retry_after: float | None = None, at_least: float = 0.0,
               waited: float = 0.0, deadline: Deadline | None = None) -> Verdict:
        """After the ``attempt``-th attempt failed (the server asked for ``retry_after`` seconds, if it did):
        wait how long, or stop. ``at_least`` raises the backoff (a rate limiter's interval); ``waited`` is
        what this call has waited so far (for the budget)."""
        if retry_after is not None and retry_after > self.max_retry_after:
            return Verdict(retry_after, Stop.RETRY_AFTER)
        if attempt >= self.max_attempts:
            return Verdict(retry_after if retry_after is not None else 0.0, Stop.ATTEMPTS)
        wait = retry_after if retry_after is not None else max(self.backoff(attempt), at_least)
        if self.budget is not None and waited + wait > self.budget:
            return Verdict(wait, Stop.BUDGET)
        if deadline is not None and wait > deadline.left():
            return Verdict(wait, Stop.DEADLINE)
        return Verdict(wait)

    def wait(self, verdict: Verdict) -> float:
        """Sleep the verdict's wait; returns the seconds waited."""
        if verdict.wait > 0:
            self.sleep(verdict.wait)
        return verdict.wait
