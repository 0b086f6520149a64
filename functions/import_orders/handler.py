"""ImportOrders: store a channel's orders (already normalized), each exactly once, and start them."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow.importing import ImportBatch, import_batch
from orderflow.observability import logger, tracer
from orderflow.ports import default_ports


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    batch = ImportBatch.model_validate(event)
    logger.append_keys(channel=batch.channel)
    report = import_batch(batch, default_ports())
    logger.info("import done", new=len(report.new), existing=len(report.existing), failed=len(report.failed))
    return report.model_dump()
