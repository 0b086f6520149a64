"""ForwardSupplier: the supplier-orders queue -> each shipment's order file on its supplier's SFTP server.

Each record is a ``ForwardMessage`` (sent by the workflow's ``ForwardToSupplier`` with its task token).
A record whose supplier cannot be reached fails alone (partial batch response) and comes back after a
growing delay; see :mod:`orderflow.suppliers.forwarding`.
"""

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType, process_partial_response
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow.observability import log_metrics, logger, tracer
from orderflow.suppliers.forwarding import handle_record
from orderflow.suppliers.ports import Connections, Suppliers, default_suppliers
from orderflow.wiring import default_ports

_suppliers: Suppliers | None = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    global _suppliers
    _suppliers = _suppliers or default_suppliers(default_ports())
    # One SFTP session per supplier for the whole batch; a processor per call (the local stack may run
    # two batches at once in threads).
    with Connections(_suppliers) as connections:

        def record_handler(record: SQSRecord) -> str:
            return handle_record(record.body, receive_count=int(record.attributes.approximate_receive_count or 1),
                                 receipt_handle=record.receipt_handle, ports=default_ports(), suppliers=_suppliers,
                                 connections=connections).outcome

        return process_partial_response(event=event, record_handler=record_handler,
                                        processor=BatchProcessor(event_type=EventType.SQS), context=context)
