"""Sending to the SQS queues (:data:`orderflow.queues.QUEUES`; the :class:`orderflow.ports.Queues` port).
A queue's URL is read from its environment variable (``Queue.env_var``) at each use: CDK sets it on the
functions that send, the local stack after import."""

from __future__ import annotations

import json
import os
from typing import Any

from botocore.exceptions import ClientError

from orderflow.adapters.aws import client
from orderflow.errors import TransientError
from orderflow.queues import Queue


class SqsQueues:
    def url(self, queue: Queue) -> str | None:
        """The queue's URL; None where this function may not send to it."""
        return os.environ.get(queue.env_var) or None

    def send(self, queue: Queue, body: dict[str, Any], *, group: str | None = None,
             dedup_id: str | None = None) -> None:
        """Send one JSON message (``group`` and ``dedup_id``: a FIFO queue's message group and
        deduplication id)."""
        url = self.url(queue)
        if not url:
            raise RuntimeError(f"{queue.env_var} is not set")
        extra = {k: v for k, v in (("MessageGroupId", group), ("MessageDeduplicationId", dedup_id)) if v}
        try:
            client("sqs").send_message(QueueUrl=url, MessageBody=json.dumps(body), **extra)
        except ClientError as err:  # throttled, unavailable (botocore retried already): the caller's retry
            status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            code = err.response.get("Error", {}).get("Code", "")
            if status >= 500 or "Throttl" in code or code in {"RequestThrottled", "ServiceUnavailable"}:
                raise TransientError(f"SQS did not take the message for {queue.key} ({code}); retry",
                                     code=code) from err
            raise
