"""The HTTP layer every channel client uses: httpx with a base URL, retries that honour 429 and
``Retry-After`` with exponential backoff and jitter, an optional token bucket for channels with a
published rate (Amazon), and a deadline so a run stops cleanly before its Lambda timeout.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from email.utils import parsedate_to_datetime
from typing import Any

import httpx

from orderflow.channels.base import ChannelAuthError, ChannelError, ChannelUnavailable, OutOfTime, RateLimited

log = logging.getLogger(__name__)

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})


@dataclass
class RetryPolicy:
    """How often and how long to retry. Tests pass tiny delays; nothing here sleeps in a test for long."""

    max_attempts: int = 6
    base_delay: float = 1.0
    max_delay: float = 60.0
    #: ``Retry-After`` is obeyed up to this many seconds; beyond, the run stops and the next one resumes.
    max_retry_after: float = 120.0
    jitter: bool = True
    sleep: Callable[[float], None] = time.sleep

    def backoff(self, attempt: int) -> float:
        """Full-jitter exponential backoff for the ``attempt``-th retry (1-based)."""
        cap = min(self.max_delay, self.base_delay * (2 ** (attempt - 1)))
        return random.uniform(0, cap) if self.jitter else cap  # noqa: S311 - jitter, not crypto


@dataclass
class Deadline:
    """Seconds this run may still spend (a Lambda's remaining time minus a margin to save its place)."""

    remaining: Callable[[], float] | None = None
    margin: float = 0.0

    @classmethod
    def after(cls, seconds: float, margin: float = 0.0) -> Deadline:
        end = time.monotonic() + seconds
        return cls(remaining=lambda: end - time.monotonic(), margin=margin)

    @classmethod
    def of_lambda(cls, context: Any, margin: float = 15.0) -> Deadline:
        get = getattr(context, "get_remaining_time_in_millis", None)
        if get is None:
            return cls()
        return cls(remaining=lambda: get() / 1000.0, margin=margin)

    def left(self) -> float:
        if self.remaining is None:
            return float("inf")
        return self.remaining() - self.margin

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


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """``Retry-After`` as seconds: delta-seconds (Shopify sends ``2.0``) or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - (now if now is not None else time.time()))


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
            except httpx.TransportError as err:
                if attempt >= self.retry.max_attempts:
                    raise ChannelUnavailable(f"{self.channel_id}: {method} {path} failed: {type(err).__name__}",
                                             channel_id=self.channel_id) from err
                self.pause(self.retry.backoff(attempt), f"{type(err).__name__}")
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
            if status in RETRY_STATUSES:
                wait = retry_after_seconds(response.headers.get("retry-after"))
                if status == 429 and wait is not None and wait > self.retry.max_retry_after:
                    raise RateLimited(f"{self.channel_id} asks us to wait {wait:.0f}s", retry_after=wait,
                                      channel_id=self.channel_id)
                if attempt >= self.retry.max_attempts:
                    if status == 429:
                        raise RateLimited(f"{self.channel_id} kept answering 429 after {attempt} attempts",
                                          retry_after=wait or self.retry.max_delay, channel_id=self.channel_id)
                    raise ChannelUnavailable(f"{self.channel_id}: {method} {path} answered {status} "
                                             f"{attempt} times", channel_id=self.channel_id, status=status)
                if wait is None:
                    wait = self.retry.backoff(attempt)
                    if status == 429 and self.limiter is not None:
                        wait = max(wait, 1.0 / self.limiter.rate)
                self.pause(wait, f"HTTP {status}", rate_limited=status == 429)
                continue
            detail = _error_text(response)
            if status in (401, 403):
                raise ChannelAuthError(f"{self.channel_id} refused our credentials ({status}): {detail}",
                                       channel_id=self.channel_id, status=status)
            raise ChannelError(f"{self.channel_id}: {method} {path} answered {status}: {detail}",
                               channel_id=self.channel_id, status=status)

    def pause(self, seconds: float, why: str, *, rate_limited: bool = False) -> None:
        """Wait before a retry, unless that would pass the deadline (then stop this run cleanly)."""
        if seconds > self.deadline.left():
            if rate_limited:
                raise RateLimited(f"{self.channel_id} is rate limiting; waiting {seconds:.1f}s would pass the "
                                  "time limit of this run", retry_after=seconds, channel_id=self.channel_id)
            raise OutOfTime(f"{self.channel_id}: retrying after {why} would pass the time limit of this run")
        log.info("channel %s: %s, retrying in %.2fs", self.channel_id, why, seconds)
        if seconds > 0:
            self.retry.sleep(seconds)

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
