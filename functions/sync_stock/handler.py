"""SyncStock: push a SKU's new available quantity to the channels with auto-sync (stock-sync FIFO queue),
and (scheduled, hourly) sweep every stocked SKU to catch up on anything missed.

A failed SKU fails its message (retried, then the DLQ); FIFO keeps one SKU's syncs in order.
"""

import json

from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow.adapters.sqs_batch import SqsRecord, process_partial_response
from orderflow.channels.stock_sync import sync_all, sync_sku
from orderflow.observability import log_metrics, logger, tracer
from orderflow.wiring import default_ports


def record_handler(record: SqsRecord) -> dict:
    sku = json.loads(record.body)["sku"]
    pushed = sync_sku(sku, default_ports())
    logger.info("stock synced", sku=sku, pushed=pushed)
    return pushed


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if "Records" not in event:  # the schedule
        pushed = sync_all(default_ports())
        logger.info("stock sync sweep", skus=len(pushed))
        return {"skus_pushed": len(pushed)}
    # FIFO: the records after a failed one fail too, so one SKU's syncs keep their order.
    return process_partial_response(event, record_handler, context, fifo=True)
