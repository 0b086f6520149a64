"""TellChannel: the channel-updates queue -> each shipped shipment's tracking told to the sales channel
its order came from (Shopify fulfillmentCreate, WooCommerce note + completed, Amazon confirmShipment).

A record whose channel fails fails alone (partial batch response) and comes back after a growing delay,
then goes to the DLQ; see :mod:`orderflow.channels.shipment_updates`.
"""

from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow.adapters.sqs_batch import SqsRecord, process_partial_response
from orderflow.channels.shipment_updates import handle_record
from orderflow.observability import log_metrics, logger, tracer
from orderflow.wiring import default_ports


def record_handler(record: SqsRecord) -> str:
    return handle_record(record.body, receive_count=int(record.attributes.approximate_receive_count or 1),
                         receipt_handle=record.receipt_handle, ports=default_ports())


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return process_partial_response(event, record_handler, context)
