"""ForwardSupplier: the supplier-orders queue -> each shipment's order file on its supplier's SFTP server.

Each record is a ``ForwardMessage`` (sent by the workflow's wait, ``AwaitFulfilment``, with the order's task token).
A record whose supplier cannot be reached fails alone (partial batch response) and comes back after a
growing delay; see :mod:`orderflow.suppliers.forwarding`.
"""

from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow.adapters.sqs_batch import SqsRecord, process_partial_response
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
    # One SFTP session per supplier for the whole batch.
    with Connections(_suppliers) as connections:

        def record_handler(record: SqsRecord) -> str:
            return handle_record(record.body, receive_count=int(record.attributes.approximate_receive_count or 1),
                                 receipt_handle=record.receipt_handle, ports=default_ports(), suppliers=_suppliers,
                                 connections=connections).outcome

        return process_partial_response(event, record_handler, context)
