"""The HTTP layer of the carrier clients: httpx with a base URL, timeouts, and retries with backoff.

- 2xx: the parsed JSON;
- 429 and 5xx (and a connection that failed): retried by orderflow's one retry policy
  (:mod:`orderflow.outbound_retry`: full-jitter exponential backoff, ``Retry-After`` honoured) within a
  time budget; then :class:`CarrierUnavailable` (our 503);
- 401/403: :class:`CarrierAuthFailed`; any other 4xx: :class:`CarrierRejected` with the carrier's own
  message (our 422).

Nothing here logs a body, a header or a query string: bodies carry addresses, headers carry keys and
label URLs may be signed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin

import httpx

from orderflow import outbound_retry
from orderflow.carriers.base import (
    CarrierAuthFailed,
    CarrierRejected,
    CarrierUnavailable,
    carrier_code,
    carrier_message,
)
from orderflow.outbound import check_label_url
from orderflow.outbound_retry import RETRY_ERRORS, retry_after_seconds

log = logging.getLogger(__name__)

#: Labels are small (a 4x6 PDF is a few kB); anything this big is not a label.
MAX_LABEL_BYTES = 5 * 1024 * 1024
#: Redirects followed to a label file, each checked like the first URL.
MAX_LABEL_REDIRECTS = 3


@dataclass
class RetryPolicy(outbound_retry.RetryPolicy):
    """orderflow's retry policy with the carriers' defaults: the API Lambda has 29 s in all, so a call's
    waits stay well under it."""

    max_attempts: int = 4
    base_delay: float = 0.25
    max_delay: float = 4.0
    #: ``Retry-After`` is obeyed up to this many seconds; a longer one ends the retries.
    max_retry_after: float = 8.0
    #: Seconds all the waits of one call may add up to.
    budget: float | None = 12.0


def _body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return response.text[:500]


class CarrierHttp:
    """One carrier account's HTTP client (``carrier`` is its display name in errors, e.g. "EasyPost")."""

    def __init__(self, carrier: str, base_url: str, *, auth: httpx.Auth | None = None,
                 headers: dict[str, str] | None = None, timeout: float = 15.0,
                 retry: RetryPolicy | None = None, transport: httpx.BaseTransport | None = None,
                 label_hosts: str = "sandbox") -> None:
        self.carrier = carrier
        #: Whose label hosts (orderflow.outbound.LABEL_HOSTS) a label file may come from.
        self.label_hosts = label_hosts
        self.base_url = base_url.rstrip("/")
        self.retry = retry or RetryPolicy()
        self.timeout = httpx.Timeout(timeout, connect=min(timeout, 5.0))
        self._transport = transport
        self.client = httpx.Client(base_url=self.base_url, auth=auth, headers=headers, timeout=self.timeout,
                                   transport=transport, follow_redirects=False)

    def close(self) -> None:
        self.client.close()

    def request(self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None,
                retry_server_errors: bool = True) -> Any:
        """Send one API call; return its JSON. ``retry_server_errors=False`` for a call that must not be
        repeated after a 5xx whose effect is unknown (429 and refused connections are still retried)."""
        response = self._send(lambda: self.client.request(method, path, json=json, params=params),
                              f"{method} {path}", retry_server_errors)
        return _body(response)

    def download(self, url: str) -> bytes:
        """Fetch a label file. The URL may be on another host (a CDN, signed S3): no credentials go with it,
        and it (and every redirect) must be one of the carrier's label hosts (orderflow.outbound)."""
        def allowed(target: str) -> str:
            try:
                return check_label_url(target, self.label_hosts, self.base_url)
            except ValueError as err:
                raise CarrierRejected(f"{self.carrier}'s label file is not where labels come from: {err}") from None

        def get() -> httpx.Response:
            target = allowed(url)
            with httpx.Client(timeout=self.timeout, transport=self._transport, follow_redirects=False) as plain:
                for _ in range(MAX_LABEL_REDIRECTS):
                    head = plain.send(plain.build_request("GET", target), stream=True)
                    if not head.is_redirect:
                        break
                    head.close()
                    target = allowed(urljoin(target, head.headers.get("location", "")))
                else:
                    raise CarrierRejected(f"{self.carrier}'s label file redirects more than {MAX_LABEL_REDIRECTS} times")
                response = head
                try:
                    chunks, size = [], 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > MAX_LABEL_BYTES:
                            raise CarrierRejected(f"{self.carrier}'s label file is over {MAX_LABEL_BYTES} bytes")
                        chunks.append(chunk)
                    return httpx.Response(response.status_code, headers=response.headers, content=b"".join(chunks),
                                          request=response.request)
                finally:
                    response.close()

        return self._send(get, "GET label file", True, key_errors=False).content

    def _send(self, call: Callable[[], httpx.Response], what: str, retry_server_errors: bool, *,
              key_errors: bool = True) -> httpx.Response:
        policy = self.retry
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            asked: float | None = None
            try:
                response = call()
            except RETRY_ERRORS as err:
                # The request may have arrived: only a connect timeout is known to be harmless.
                if isinstance(err, httpx.TimeoutException):
                    if not isinstance(err, httpx.ConnectTimeout) and not retry_server_errors:
                        raise CarrierUnavailable(f"{self.carrier} did not answer in time ({what})",
                                                 carrier=self.carrier) from err
                    problem, status = f"{self.carrier} did not answer in time", None
                else:
                    problem, status = f"cannot reach {self.carrier} ({type(err).__name__})", None
            else:
                status = response.status_code
                if status < 300:
                    return response
                body = _body(response)
                if status in (401, 403) and key_errors:
                    raise CarrierAuthFailed(
                        f"{self.carrier} refused the carrier account's API key (HTTP {status}: "
                        f"{carrier_message(body)}); check the key with PUT /carriers/{{carrier_id}}",
                        carrier=self.carrier, carrier_status=status)
                if not policy.retries(status) or (status != 429 and not retry_server_errors):
                    if status >= 500:
                        raise CarrierUnavailable(f"{self.carrier} failed (HTTP {status}: {carrier_message(body)})",
                                                 carrier=self.carrier, carrier_status=status)
                    raise CarrierRejected(f"{self.carrier} refused the request: {carrier_message(body)}",
                                          carrier=self.carrier, carrier_status=status,
                                          carrier_code=carrier_code(body))
                problem = f"{self.carrier} answered HTTP {status} ({carrier_message(body, 200)})"
                asked = retry_after_seconds(response.headers.get("Retry-After"))
            log.info("carrier call failed, may retry", extra={"carrier": self.carrier, "call": what,
                                                               "status": status, "attempt": attempt})
            verdict = policy.decide(attempt, retry_after=asked, waited=waited)
            if not verdict.again:  # out of attempts or budget, or the carrier asks for longer than we can wait
                raise CarrierUnavailable(f"{problem}; gave up after {attempt} attempt(s), try again later",
                                         carrier=self.carrier, carrier_status=status, attempts=attempt)
            waited += policy.wait(verdict)
