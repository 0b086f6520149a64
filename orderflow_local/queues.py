"""A local stand-in for Lambda's SQS event source mapping (moto's runs synchronously and ignores
partial batch failures).

It receives batches, hands them to a handler as an SQS event, deletes the messages the handler
did not report in ``batchItemFailures``, and leaves the failed ones to come back after their
visibility timeout; the queue's own redrive policy moves a message that keeps failing to its DLQ.
"""

from __future__ import annotations

import hashlib
import logging
import threading
from collections.abc import Callable
from typing import Any

from orderflow.adapters.aws import client

log = logging.getLogger(__name__)

#: The queue attributes that count messages still to be handled: waiting, delayed, or received and not yet
#: deleted (a batch in the handler, or a failed message waiting out its visibility timeout).
PENDING_ATTRIBUTES = ("ApproximateNumberOfMessages", "ApproximateNumberOfMessagesDelayed",
                      "ApproximateNumberOfMessagesNotVisible")


def sqs_event(queue_arn: str, messages: list[dict[str, Any]]) -> dict[str, Any]:
    return {"Records": [{
        "messageId": m["MessageId"],
        "receiptHandle": m["ReceiptHandle"],
        "body": m["Body"],
        "attributes": m.get("Attributes", {}),
        "messageAttributes": m.get("MessageAttributes", {}),
        "md5OfBody": hashlib.md5(m["Body"].encode()).hexdigest(),  # noqa: S324 - what SQS sends
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    } for m in messages]}


class QueuePoller:
    def __init__(self, queue_url: str, handler: Callable[[dict, Any], dict | None], *, batch_size: int = 10,
                 wait_seconds: int = 1, context_factory: Callable[[], Any] | None = None,
                 report_batch_item_failures: bool = True, workers: int = 1) -> None:
        self.queue_url = queue_url
        self.handler = handler
        self.batch_size = batch_size
        self.wait_seconds = wait_seconds
        #: The mapping's FunctionResponseTypes: without ReportBatchItemFailures a returned list means nothing.
        self.report_batch_item_failures = report_batch_item_failures
        #: Batches handled at once (the mapping's maximum concurrency; one when it sets none).
        self.workers = max(1, workers)
        self.context_factory = context_factory or (lambda: None)
        self.queue_arn = client("sqs").get_queue_attributes(
            QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    def poll_once(self) -> tuple[int, int]:
        """One receive → invoke → delete round. Returns (handled, failed)."""
        resp = client("sqs").receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=self.batch_size, WaitTimeSeconds=self.wait_seconds,
            AttributeNames=["All"], MessageAttributeNames=["All"],
        )
        messages = resp.get("Messages", [])
        if not messages:
            return 0, 0
        try:
            result = self.handler(sqs_event(self.queue_arn, messages), self.context_factory()) or {}
            reported = result.get("batchItemFailures", []) if self.report_batch_item_failures else []
            failed = {f["itemIdentifier"] for f in reported}
        except Exception as exc:  # noqa: BLE001 - the whole batch failed, as on Lambda
            log.warning("queue handler failed for a batch of %d: %s", len(messages), exc)
            failed = {m["MessageId"] for m in messages}
        done = [m for m in messages if m["MessageId"] not in failed]
        if done:
            client("sqs").delete_message_batch(QueueUrl=self.queue_url, Entries=[
                {"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)])
        return len(done), len(failed)

    def drained(self) -> bool:
        """Whether every message sent to the queue so far has been handled: none waiting, delayed or in
        flight. A message is deleted only after its handler returned, so its effects are done by then.
        Read-only: what tests wait for before they check that nothing else happened."""
        attributes = client("sqs").get_queue_attributes(
            QueueUrl=self.queue_url, AttributeNames=list(PENDING_ATTRIBUTES))["Attributes"]
        return all(int(attributes.get(name, "0")) == 0 for name in PENDING_ATTRIBUTES)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as exc:  # noqa: BLE001 - keep polling, like the managed poller
                log.warning("polling %s failed: %s", self.queue_url, exc)
                self._stop.wait(1)

    def start(self) -> None:
        for n in range(self.workers):
            thread = threading.Thread(target=self._loop, name=f"poller-{self.queue_url.rsplit('/', 1)[-1]}-{n}",
                                      daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=self.wait_seconds + 5)
