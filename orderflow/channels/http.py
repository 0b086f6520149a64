"""The HTTP layer every channel client uses: httpx with a base URL, retries by orderflow's one retry
policy (:mod:`orderflow.outbound_retry`: 429 and 5xx, ``Retry-After`` honoured, exponential backoff with
jitter), an optional token bucket for channels with a published rate (Amazon), and a deadline so a run
stops cleanly before its Lambda timeout.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from orderflow import outbound_retry
from orderflow.channels.base import ChannelAuthError, ChannelError, ChannelUnavailable, OutOfTime, RateLimited
from orderflow.outbound_retry import (
    RETRY_ERRORS,
    RETRY_STATUSES,
    RetryPolicy,
    Stop,
    Verdict,
    retry_after_seconds,
)

__all__ = ["RETRY_STATUSES", "ChannelHttp", "Deadline", "RateLimiter", "RetryPolicy", "read_json",
           "retry_after_seconds", "server_time"]

log = logging.getLogger(__name__)


class Deadline(outbound_retry.Deadline):
    """Seconds this run may still spend (:class:`orderflow.outbound_retry.Deadline`); :meth:`check` ends
    the run with :class:`OutOfTime` once they are spent."""

    def check(self, what: str = "this run") -> None:
        if self.left() <= 0:
            raise OutOfTime(f"{what} is close to its time limit; the next run resumes where it stopped")


class RateLimiter:
    """A token bucket (``rate`` requests per second, ``burst`` at most), shared by one channel's calls.

    Its state can be saved with the channel's cursor (:meth:`state` / ``restore``), so the bucket holds
    across Lambda containers: Amazon's searchOrders allows 0.0056 requests per second with a burst of 20.
    """

    def __init__(self, rate: float, burst: float, *, state: dict[str, Any] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be positive and burst at least 1")
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self._lock = threading.Lock()
        self.tokens = float(burst)
        self.at = clock()
        if state:
            self.restore(state)

    def restore(self, state: dict[str, Any]) -> None:
        try:
            self.tokens = min(self.burst, float(state["tokens"]))
            self.at = float(state["at"])
        except (KeyError, TypeError, ValueError):
            pass

    def state(self) -> dict[str, str]:
        with self._lock:
            self._refill()
            return {"tokens": f"{self.tokens:.4f}", "at": f"{self.at:.3f}"}

    def _refill(self) -> None:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + max(0.0, now - self.at) * self.rate)
        self.at = now

    def wait_time(self) -> float:
        """Seconds until a token is free (0 if one is)."""
        with self._lock:
            self._refill()
            return 0.0 if self.tokens >= 1 else (1 - self.tokens) / self.rate

    def take(self) -> None:
        with self._lock:
            self._refill()
            self.tokens -= 1

    def adapt(self, rate: float) -> None:
        """The channel told us its rate for this operation (``x-amzn-RateLimit-Limit``)."""
        if rate > 0 and abs(rate - self.rate) > 1e-9:
            with self._lock:
                self._refill()
                self.rate = rate


def server_time(response: httpx.Response):  # noqa: ANN201 - datetime | None
    """The channel's clock from its ``Date`` header."""
    value = response.headers.get("date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None


def read_json(response: httpx.Response) -> Any:
    """JSON with every non-integer number read as Decimal: money stays exact."""
    try:
        return json.loads(response.content, parse_float=Decimal)
    except ValueError as err:
        raise ChannelError(f"{response.request.method} {response.request.url.path} answered "
                           f"{response.status_code} with a body that is not JSON") from err


#: The shortest wait for one answer, however close the deadline (the request after it is refused).
MIN_REQUEST_SECONDS = 1.0


@dataclass
class ChannelHttp:
    """One channel's HTTP client. Paths are relative to ``base_url``."""

    base_url: str
    channel_id: str
    headers: dict[str, str] = field(default_factory=dict)
    auth: httpx.Auth | tuple[str, str] | None = None
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    deadline: Deadline = field(default_factory=Deadline)
    timeout: float = 30.0
    limiter: RateLimiter | None = None
    #: Header carrying the channel's own rate for the operation (Amazon: ``x-amzn-RateLimit-Limit``).
    rate_header: str | None = None
    #: Called once on a 401/403 to get fresh auth headers (Amazon's LWA token); None: no refresh.
    refresh_auth: Callable[[], dict[str, str]] | None = None

    def __post_init__(self) -> None:
        self.client = httpx.Client(base_url=self.base_url.rstrip("/"), timeout=self.timeout, auth=self.auth,
                                   headers={"User-Agent": "orderflow/0.1", **self.headers},
                                   follow_redirects=False)
        self.requests = 0

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Send with retries. Returns any 2xx response; raises a :class:`ChannelError` otherwise."""
        refreshed = False
        attempt = 0
        while True:
            attempt += 1
            self.deadline.check(f"importing from {self.channel_id}")
            self._wait_for_token()
            # a slow answer must not carry the run past its deadline (the Lambda would be killed holding
            # the channel's lease): no request waits longer than the run has left
            timeout = min(self.timeout, max(self.deadline.left(), MIN_REQUEST_SECONDS))
            try:
                response = self.client.request(method, path, timeout=timeout, **kwargs)
                self.requests += 1
            except RETRY_ERRORS as err:
                verdict = self.retry.decide(attempt, deadline=self.deadline)
                if verdict.stop is Stop.ATTEMPTS:
                    raise ChannelUnavailable(f"{self.channel_id}: {method} {path} failed: {type(err).__name__}",
                                             channel_id=self.channel_id) from err
                self._wait(verdict, type(err).__name__)
                continue
            self._note_rate(response)
            status = response.status_code
            if status < 300:
                return response
            if status in (401, 403) and self.refresh_auth is not None and not refreshed:
                refreshed = True
                self.client.headers.update(self.refresh_auth())
                attempt -= 1
                continue
            if self.retry.retries(status):
                asked = retry_after_seconds(response.headers.get("retry-after"))
                # throttled with no word on how long: at least the interval of the channel's published rate
                floor = 1.0 / self.limiter.rate if status == 429 and self.limiter is not None else 0.0
                verdict = self.retry.decide(attempt, retry_after=asked, at_least=floor, deadline=self.deadline)
                if verdict.stop is Stop.RETRY_AFTER or verdict.stop is Stop.ATTEMPTS:
                    raise self._gave_up(verdict, status, f"{method} {path}", attempt, asked)
                self._wait(verdict, f"HTTP {status}", rate_limited=status == 429)
                continue
            detail = _error_text(response)
            if status in (401, 403):
                raise ChannelAuthError(f"{self.channel_id} refused our credentials ({status}): {detail}",
                                       channel_id=self.channel_id, status=status)
            raise ChannelError(f"{self.channel_id}: {method} {path} answered {status}: {detail}",
                               channel_id=self.channel_id, status=status)

    def pause(self, seconds: float, why: str, *, rate_limited: bool = False) -> None:
        """Wait before a retry, unless that would pass the deadline (then stop this run cleanly)."""
        self._wait(Verdict(seconds, Stop.DEADLINE if seconds > self.deadline.left() else None), why,
                   rate_limited=rate_limited)

    def _wait(self, verdict: Verdict, why: str, *, rate_limited: bool = False) -> None:
        """Sleep the policy's wait; a wait past the deadline stops this run cleanly instead."""
        if verdict.stop is Stop.DEADLINE:
            if rate_limited:
                raise RateLimited(f"{self.channel_id} is rate limiting; waiting {verdict.wait:.1f}s would pass the "
                                  "time limit of this run", retry_after=verdict.wait, channel_id=self.channel_id)
            raise OutOfTime(f"{self.channel_id}: retrying after {why} would pass the time limit of this run")
        log.info("channel %s: %s, retrying in %.2fs", self.channel_id, why, verdict.wait)
        self.retry.wait(verdict)

    def _gave_up(self, verdict: Verdict, status: int, what: str, attempt: int, asked: float | None) -> ChannelError:
        if status == 429 and verdict.stop is Stop.RETRY_AFTER:
            return RateLimited(f"{self.channel_id} asks us to wait {verdict.wait:.0f}s", retry_after=verdict.wait,
                               channel_id=self.channel_id)
        if status == 429:
            return RateLimited(f"{self.channel_id} kept answering 429 after {attempt} attempts",
                               retry_after=asked or self.retry.max_delay, channel_id=self.channel_id)
        if verdict.stop is Stop.RETRY_AFTER:
            return ChannelUnavailable(f"{self.channel_id}: {what} answered {status} and asks us to wait "
                                      f"{verdict.wait:.0f}s", channel_id=self.channel_id, status=status)
        return ChannelUnavailable(f"{self.channel_id}: {what} answered {status} {attempt} times",
                                  channel_id=self.channel_id, status=status)

    def _wait_for_token(self) -> None:
        if self.limiter is None:
            return
        wait = self.limiter.wait_time()
        if wait > 0:
            if wait > self.deadline.left() or wait > self.retry.max_retry_after:
                raise RateLimited(f"{self.channel_id}: the channel's rate limit allows the next request in "
                                  f"{wait:.0f}s", retry_after=wait, channel_id=self.channel_id)
            self.retry.sleep(wait)
        self.limiter.take()

    def _note_rate(self, response: httpx.Response) -> None:
        if self.limiter is None or not self.rate_header:
            return
        value = response.headers.get(self.rate_header)
        if value:
            try:
                self.limiter.adapt(float(value))
            except ValueError:
                pass


def _error_text(response: httpx.Response, limit: int = 300) -> str:
    """The channel's error message, short (error bodies carry no secrets of ours)."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:limit]
    if isinstance(body, dict):
        if isinstance(body.get("errors"), list) and body["errors"]:
            first = body["errors"][0]
            if isinstance(first, dict):
                return str(first.get("message") or first.get("code") or first)[:limit]
        for key in ("message", "errors", "error"):
            if key in body:
                return str(body[key])[:limit]
    return json.dumps(body)[:limit]
