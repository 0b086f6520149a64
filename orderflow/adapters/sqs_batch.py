"""Partial batch responses of the SQS-triggered functions, answered as Powertools' batch utility answers them
(``process_partial_response`` with ``BatchProcessor(EventType.SQS)`` or ``SqsFifoPartialProcessor``) without
importing it: that utility loads asyncio and every event source data class, about a tenth of a forwarder's
cold start, for a loop over the records.

Each record goes to the record handler as an :class:`SqsRecord` (the names of Powertools' ``SQSRecord``), with
``lambda_context=`` when the handler takes one. A record whose handler raises is reported in
``batchItemFailures`` and comes back after the visibility timeout; a batch whose every record failed raises
Powertools' ``BatchProcessingError`` (imported then), so Lambda retries it whole. On a FIFO queue
(``fifo=True``) the records after the first failure are not handled and fail too, so a message group keeps
its order (``SqsFifoPartialProcessor``'s circuit breaker).
"""

from __future__ import annotations

import inspect
import logging
import sys
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

#: What a FIFO batch records for a message it did not handle because an earlier one failed.
_SKIPPED = "A previous record failed processing"


class SqsRecordAttributes:
    """A record's ``attributes``."""

    __slots__ = ("raw",)

    def __init__(self, raw: dict[str, Any]) -> None:
        self.raw = raw

    @property
    def approximate_receive_count(self) -> str:
        return self.raw["ApproximateReceiveCount"]

    @property
    def message_group_id(self) -> str | None:
        return self.raw.get("MessageGroupId")


class SqsRecord:
    """One record of an SQS event."""

    __slots__ = ("raw_event",)

    def __init__(self, raw_event: dict[str, Any]) -> None:
        self.raw_event = raw_event

    @property
    def message_id(self) -> str:
        return self.raw_event["messageId"]

    @property
    def body(self) -> str:
        return self.raw_event["body"]

    @property
    def receipt_handle(self) -> str:
        return self.raw_event["receiptHandle"]

    @property
    def attributes(self) -> SqsRecordAttributes:
        return SqsRecordAttributes(self.raw_event.get("attributes") or {})


def process_partial_response(event: dict, record_handler: Callable[..., Any], context: Any = None, *,
                             fifo: bool = False) -> dict[str, list[dict[str, str]]]:
    """Handle each record of an SQS event; the failed ones as Lambda's partial batch response."""
    records = event.get("Records") if isinstance(event, dict) else None
    if not records or not isinstance(records, list):
        from aws_lambda_powertools.utilities.batch.exceptions import UnexpectedBatchTypeError

        raise UnexpectedBatchTypeError(
            "Unexpected batch event type. Possible values are: SQS, KinesisDataStreams, DynamoDBStreams, Kafka")
    with_context = context is not None and "lambda_context" in inspect.signature(record_handler).parameters
    failed: list[str] = []
    errors: list[tuple[Any, Any, Any]] = []
    for raw in records:
        record = SqsRecord(raw)
        if fifo and failed:
            failed.append(record.message_id)
            errors.append((None, _SKIPPED, None))
            continue
        try:
            if with_context:
                record_handler(record=record, lambda_context=context)
            else:
                record_handler(record=record)
        except Exception:  # noqa: BLE001 - the record fails alone
            error = sys.exc_info()
            log.debug("Record processing exception: %s:%s", error[0], error[1])
            failed.append(record.message_id)
            errors.append(error)
    if failed and len(failed) == len(records):
        _raise_whole_batch_failed(errors)
    return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}


def _raise_whole_batch_failed(errors: list[tuple[Any, Any, Any]]) -> None:
    from aws_lambda_powertools.utilities.batch.exceptions import (
        BatchProcessingError,
        SQSFifoCircuitBreakerError,
    )

    children = [(SQSFifoCircuitBreakerError, SQSFifoCircuitBreakerError(_SKIPPED), None) if kind is None
                else (kind, value, trace) for kind, value, trace in errors]
    raise BatchProcessingError(
        msg=f"All records failed processing. {len(children)} individual errors logged separately below.",
        child_exceptions=children)
