"""The local stand-in for Lambda's SQS event source mapping, against moto's SQS."""

import json
import time

from orderflow.adapters.aws import client
from orderflow_local.queues import QueuePoller


def make_queue(uid, max_receives=2):
    sqs = client("sqs")
    dlq = sqs.create_queue(QueueName=f"dlq-{uid}")["QueueUrl"]
    dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    queue = sqs.create_queue(QueueName=f"q-{uid}", Attributes={
        "VisibilityTimeout": "1",
        "RedrivePolicy": json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": str(max_receives)}),
    })["QueueUrl"]
    return queue, dlq


def count(url):
    attrs = client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"])
    return sum(int(v) for v in attrs["Attributes"].values())


def test_partial_batch_failures_are_retried_then_land_in_the_dlq(stack, uid):
    queue, dlq = make_queue(uid)
    for body in ("ok-1", "bad", "ok-2"):
        client("sqs").send_message(QueueUrl=queue, MessageBody=body)
    seen = []

    def handler(event, context):
        failures = []
        for record in event["Records"]:
            seen.append(record["body"])
            assert record["eventSource"] == "aws:sqs"
            if record["body"] == "bad":
                failures.append({"itemIdentifier": record["messageId"]})
        return {"batchItemFailures": failures}

    poller = QueuePoller(queue, handler, wait_seconds=0)
    deadline = time.monotonic() + 20
    while count(dlq) == 0 and time.monotonic() < deadline:
        poller.poll_once()
        time.sleep(0.2)
    assert sorted(set(seen)) == ["bad", "ok-1", "ok-2"]
    assert seen.count("ok-1") == 1 and seen.count("ok-2") == 1  # successes are deleted, never redelivered
    assert seen.count("bad") == 2  # delivered maxReceiveCount times...
    msgs = client("sqs").receive_message(QueueUrl=dlq, MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in msgs] == ["bad"]  # ...then moved to the DLQ by the queue's redrive policy


def test_a_handler_crash_fails_the_whole_batch(stack, uid):
    queue, _ = make_queue(uid, max_receives=5)
    client("sqs").send_message(QueueUrl=queue, MessageBody="x")

    def crash(event, context):
        raise RuntimeError("down")

    handled, failed = QueuePoller(queue, crash, wait_seconds=0).poll_once()
    assert (handled, failed) == (0, 1)
    assert count(queue) == 1  # still there, comes back after its visibility timeout


def test_the_stack_runs_pollers_and_schedules(stack, uid):
    assert stack.scheduler is not None
    job = stack.scheduler.add(f"job-{uid}", every_seconds=3600, run=lambda: "ran")
    assert stack.scheduler.run_now(job.name) == "ran"
