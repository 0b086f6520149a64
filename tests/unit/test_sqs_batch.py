"""orderflow.adapters.sqs_batch answers an SQS batch as Powertools' batch utility does (the functions used it
before; it loads asyncio and every event data class at a cold start): same partial batch responses, the same
exception when every record failed, the FIFO circuit breaker, the Lambda context to handlers that take one."""

from __future__ import annotations

import pytest
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    SqsFifoPartialProcessor,
)
from aws_lambda_powertools.utilities.batch import process_partial_response as powertools_response
from aws_lambda_powertools.utilities.batch.exceptions import BatchProcessingError, UnexpectedBatchTypeError

from orderflow.adapters import sqs_batch


def event(*bodies: str) -> dict:
    return {"Records": [{"messageId": f"m{i}", "receiptHandle": f"h{i}", "body": body,
                         "attributes": {"ApproximateReceiveCount": str(i + 1), "MessageGroupId": "g"},
                         "eventSource": "aws:sqs"} for i, body in enumerate(bodies)]}


def handler(record) -> str:  # noqa: ANN001
    if record.body.startswith("fail"):
        raise RuntimeError(record.body)
    return record.body


def both(evt: dict, fifo: bool = False):  # noqa: ANN201
    """(ours, Powertools') answer or exception type for one event."""
    out = []
    for run in (lambda: sqs_batch.process_partial_response(evt, handler, None, fifo=fifo),
                lambda: powertools_response(evt, handler, SqsFifoPartialProcessor() if fifo
                                            else BatchProcessor(event_type=EventType.SQS))):
        try:
            out.append(run())
        except BatchProcessingError as exc:
            out.append((type(exc), len(exc.child_exceptions)))
    return out


@pytest.mark.parametrize("fifo", [False, True])
@pytest.mark.parametrize("bodies", [("a",), ("a", "b"), ("fail-1", "b"), ("a", "fail-2", "c"), ("fail",),
                                    ("fail-1", "fail-2"), ("a", "fail-2", "fail-3")])
def test_the_answers_are_powertools_answers(bodies, fifo):
    ours, theirs = both(event(*bodies), fifo)
    assert ours == theirs


def test_a_batch_that_failed_whole_raises_powertools_error_with_each_cause():
    with pytest.raises(BatchProcessingError, match="All records failed processing. 2 individual") as caught:
        sqs_batch.process_partial_response(event("fail-1", "fail-2"), handler)
    assert [str(error[1]) for error in caught.value.child_exceptions] == ["fail-1", "fail-2"]


def test_an_event_without_records_is_refused():
    for bad in ({}, {"Records": []}, {"Records": "x"}):
        with pytest.raises(UnexpectedBatchTypeError):
            sqs_batch.process_partial_response(bad, handler)


def test_records_read_as_powertools_records_and_the_context_reaches_handlers_that_take_it():
    seen = []

    def with_context(record, lambda_context=None):  # noqa: ANN001, ANN202
        seen.append((record.message_id, record.body, record.receipt_handle,
                     record.attributes.approximate_receive_count, record.attributes.message_group_id,
                     lambda_context))

    context = object()
    assert sqs_batch.process_partial_response(event("a", "b"), with_context, context) == {"batchItemFailures": []}
    assert seen == [("m0", "a", "h0", "1", "g", context), ("m1", "b", "h1", "2", "g", context)]


def test_the_queue_functions_load_neither_powertools_batch_nor_httpx_command_line():
    import subprocess
    import sys
    from pathlib import Path

    probe = ("import sys, functions.forward_fba.handler, functions.forward_supplier.handler, "
             "functions.sync_stock.handler; print(sorted(m for m in sys.modules if m.startswith(("
             "'aws_lambda_powertools.utilities.batch', 'rich', 'click', 'pygments')) "
             "or (m == 'httpx._main' and sys.modules[m] is not None)))")
    env = {"PATH": "/usr/bin:/bin", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=Path(__file__).resolve().parents[2], env=env,
                         capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
