"""The Multi-Channel Fulfillment client: createFulfillmentOrder, getFulfillmentOrder, cancelFulfillmentOrder.

It *is* the Amazon channel client (:class:`orderflow.channels.amazon.AmazonClient`, subclassed, not
changed): the same Login with Amazon token (cached per refresh token, refreshed once on a 401/403), the
same HTTP layer (:class:`orderflow.channels.http.ChannelHttp` with orderflow's one retry policy,
:mod:`orderflow.outbound_retry`: 429 and 5xx retried with exponential backoff and full jitter,
``Retry-After`` obeyed, a deadline so a Lambda stops in time), plus its own token
bucket for the Fulfillment Outbound usage plan (2 requests per second, burst 30; adapted to
``x-amzn-RateLimit-Limit``).

Idempotency: our shipment id is the ``sellerFulfillmentOrderId``. Amazon refuses a second order with the
same id (400); :meth:`McfClient.create` then reads the order back and, when it is there, reports it as
already created instead of failing, so a retried or redelivered forward is harmless.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from urllib.parse import quote

from orderflow.channels.amazon import AmazonClient
from orderflow.channels.base import ChannelAuthError, ChannelError
from orderflow.channels.config import AmazonConfig, AmazonCredentials
from orderflow.channels.http import ChannelHttp, Deadline, RateLimiter, RetryPolicy, read_json
from orderflow.fba import mcf

log = logging.getLogger(__name__)

#: Fulfillment Outbound's published usage plan for the three operations.
RATE, BURST = 2.0, 30


class McfRejected(ChannelError):
    """Amazon refused the request for good (a 400: invalid SKU or address, not cancellable any more).
    Retrying the same request will not help; the order needs a person."""

    http_status = 409
    code = "fba_rejected"


def is_transient(err: Exception) -> bool:
    """Worth retrying later (throttled, Amazon down, out of time), as opposed to a refusal."""
    if isinstance(err, (McfRejected, ChannelAuthError)):
        return False
    if isinstance(err, ChannelError):
        status = err.details.get("status")
        return status is None or int(status) >= 500 or int(status) == 429
    return True


def _amazon_says(err: ChannelError) -> str:
    """Amazon's own words from the HTTP layer's message (``... answered 400: <message>``)."""
    marker = " answered "
    text = err.message
    if marker in text and ": " in text.split(marker, 1)[1]:
        return text.split(marker, 1)[1].split(": ", 1)[1]
    return text


@dataclass
class Created:
    seller_fulfillment_order_id: str
    #: False: Amazon had it already (a retry); nothing new was created.
    created: bool


class McfClient(AmazonClient):
    def __init__(self, config: AmazonConfig, credentials: AmazonCredentials, *, retry: RetryPolicy | None = None,
                 deadline: Deadline | None = None, timeout: float = 30.0, rate: float = RATE,
                 burst: int = BURST) -> None:
        retry = retry or RetryPolicy()
        deadline = deadline or Deadline()
        super().__init__(config, credentials, retry=retry, deadline=deadline, timeout=timeout)
        self.mcf = ChannelHttp(config.base_url, f"{config.channel_id} (FBA)", headers={"Accept": "application/json"},
                               retry=retry, deadline=deadline, timeout=timeout, limiter=RateLimiter(rate, burst),
                               rate_header="x-amzn-RateLimit-Limit", refresh_auth=self._fresh_auth)

    def close(self) -> None:
        super().close()
        self.mcf.close()

    def _path(self, seller_fulfillment_order_id: str, suffix: str = "") -> str:
        return f"{mcf.BASE_PATH}/{quote(seller_fulfillment_order_id, safe='')}{suffix}"

    def _send(self, method: str, path: str, **kwargs):  # noqa: ANN202 - httpx.Response
        self.mcf.client.headers.update(self._auth())
        return self.mcf.request(method, path, **kwargs)

    # -- the three operations -----------------------------------------------------------------------------

    def create(self, request: mcf.CreateFulfillmentOrderRequest) -> Created:
        """createFulfillmentOrder. A 400 for an id Amazon already has is a success (``created=False``)."""
        order_id = request.sellerFulfillmentOrderId
        try:
            self._send("POST", mcf.BASE_PATH, json=request.body())
            return Created(order_id, True)
        except ChannelError as err:
            if err.details.get("status") != 400 or isinstance(err, ChannelAuthError):
                raise
            refusal = err
        # Amazon's wording for a duplicate id is not part of its model: ask whether the order is there.
        if self.get(order_id) is not None:
            log.info("fulfillment order %s already exists at Amazon", order_id)
            return Created(order_id, False)
        raise McfRejected(f"Amazon refused fulfillment order {order_id}: {_amazon_says(refusal)}",
                          seller_fulfillment_order_id=order_id) from refusal

    def get(self, seller_fulfillment_order_id: str) -> mcf.FulfillmentOrderDetails | None:
        """getFulfillmentOrder; None if Amazon has no such order (404)."""
        try:
            response = self._send("GET", self._path(seller_fulfillment_order_id))
        except ChannelError as err:
            if err.details.get("status") == 404:
                return None
            raise
        body = read_json(response)
        payload = body.get("payload") if isinstance(body, dict) else None
        if not isinstance(payload, dict):
            raise ChannelError(f"{self.channel_id}: getFulfillmentOrder answered without a payload",
                               status=response.status_code)
        return mcf.FulfillmentOrderDetails.model_validate(payload)

    def cancel(self, seller_fulfillment_order_id: str) -> bool:
        """cancelFulfillmentOrder. True when Amazon will not ship it (cancelled now or before, or given up on
        as unfulfillable or invalid), False if it never had it. Raises :class:`McfRejected` when it is too
        late (Amazon is picking or has shipped it)."""
        try:
            self._send("PUT", self._path(seller_fulfillment_order_id, "/cancel"))
            return True
        except ChannelError as err:
            status = err.details.get("status")
            if status == 404:
                return False
            if status != 400 or isinstance(err, ChannelAuthError):
                raise
            refusal = err
        current = self.get(seller_fulfillment_order_id)
        if current is None:
            return False
        if current.status in mcf.DEAD:  # cancelled, unfulfillable, invalid: Amazon will not ship it anyway
            return True
        raise McfRejected(f"Amazon will not cancel fulfillment order {seller_fulfillment_order_id} "
                          f"({current.status}): {_amazon_says(refusal)}",
                          seller_fulfillment_order_id=seller_fulfillment_order_id, amazon_status=current.status)
