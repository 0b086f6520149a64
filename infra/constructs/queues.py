"""The SQS queues from ``orderflow.queues.QUEUES``, each with its dead-letter queue (the same
definitions the local stack builds)."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import acknowledge
from orderflow.queues import QUEUES

DLQ_RETENTION = Duration.days(14)


class Queues(Construct):
    def __init__(self, scope: Construct, construct_id: str) -> None:
        super().__init__(scope, construct_id)
        self.queues: dict[str, sqs.Queue] = {}
        self.dlqs: dict[str, sqs.Queue] = {}
        for queue in QUEUES:
            name = queue.construct_id
            # A FIFO queue's dead-letter queue must be FIFO too; the messages keep their group and order.
            fifo = {"fifo": True} if queue.fifo else {}
            dlq = sqs.Queue(self, f"{name}Dlq", encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                            retention_period=DLQ_RETENTION, **fifo)
            acknowledge(dlq, "AwsSolutions-SQS3",
                        f"this is the dead-letter queue of {queue.key}: failed messages end here, and a DLQ needs "
                        "no DLQ of its own.")
            acknowledge(dlq, "Serverless-SQSRedrivePolicy",
                        "A dead-letter queue is the end of the line: its messages wait there for a seller to "
                        "redrive them once the fault is fixed.")
            self.dlqs[queue.key] = dlq
            self.queues[queue.key] = sqs.Queue(
                self, name, encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
                visibility_timeout=Duration.seconds(queue.visibility_timeout),
                delivery_delay=Duration.seconds(queue.delay_seconds), **fifo,
                dead_letter_queue=sqs.DeadLetterQueue(queue=dlq, max_receive_count=queue.max_receives),
            )

    def url(self, key: str) -> str:
        return self.queues[key].queue_url
