"""ForwardFba: the fba-orders queue's consumer. Each message (``orderflow.fulfillment.ForwardMessage``, sent by
the workflow's wait, AwaitFulfilment, with the order's task token) becomes an Amazon Multi-Channel Fulfillment order
(``orderflow.fba.forwarding``); the shipment then waits for the FBA tracking poll.

A record that fails for a passing reason (Amazon throttling or down beyond the client's retries, DynamoDB
busy) is reported in ``batchItemFailures`` and comes back after the visibility timeout, then goes to the
dead-letter queue; the rest of the batch is done. Amazon refusing the order is not a failure of the
message: the order needs attention with Amazon's reason.
"""

from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow.adapters.sqs_batch import SqsRecord, process_partial_response
from orderflow.channels.http import Deadline
from orderflow.fba.forwarding import forward
from orderflow.fulfillment import ForwardMessage
from orderflow.observability import log_metrics, logger, tracer
from orderflow.wiring import default_ports

#: Seconds kept back from the Lambda timeout (the queue's visibility timeout is longer than the function's).
SAFETY_MARGIN = 10.0


def record_handler(record: SqsRecord, lambda_context: LambdaContext | None = None) -> str:
    message = ForwardMessage.model_validate_json(record.body)
    deadline = Deadline.of_lambda(lambda_context, margin=SAFETY_MARGIN)
    outcome = forward(message, default_ports(), deadline=deadline)
    logger.info("fba forward", order_id=message.order_id, shipment_id=message.shipment_id, outcome=outcome)
    return outcome


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event, record_handler, context)
