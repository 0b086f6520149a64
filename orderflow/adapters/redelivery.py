"""Retrying an SQS message later: a failed record's visibility is set to a growing delay, so SQS delivers
it again after that long; the last failure makes it visible at once, so the next receive moves it to the
queue's DLQ (its redrive policy) instead of waiting out the visibility timeout."""

from __future__ import annotations

import logging
import os

from botocore.exceptions import ClientError

from orderflow.adapters.aws import client
from orderflow.queues import Queue

log = logging.getLogger(__name__)


def backoff_seconds(receive_count: int, *, env_var: str, default: int, maximum: int = 900) -> int:
    """``base * 2 ** (receive_count - 1)`` capped at ``maximum``; ``base`` from ``env_var`` or ``default``."""
    base = int(os.environ.get(env_var, default))
    return max(0, min(base * 2 ** max(receive_count - 1, 0), maximum))


def redeliver_later(queue: Queue, receipt_handle: str | None, seconds: int, *, last: bool) -> None:
    """Have SQS deliver the message again after ``seconds`` (``last``: at once, on its way to the DLQ)."""
    url = os.environ.get(queue.env_var)
    if not receipt_handle or not url:
        return
    try:
        client("sqs").change_message_visibility(QueueUrl=url, ReceiptHandle=receipt_handle,
                                                VisibilityTimeout=0 if last else seconds)
    except ClientError as exc:
        log.warning("could not delay the redelivery on %s: %s", queue.key, exc.response["Error"]["Code"])
