"""PollTracking (scheduled): read every configured supplier's tracking files and resume the shipments
that shipped. ``{"warehouse_id": …}`` polls one supplier (``POST /suppliers/{id}/poll``)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow.observability import log_metrics, logger, tracer
from orderflow.suppliers.tracking import poll_all
from orderflow.wiring import default_ports


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    warehouse_id = (event or {}).get("warehouse_id")
    report = poll_all(default_ports(), warehouse_id=warehouse_id)
    totals = report.totals()
    if any(totals.values()):
        logger.info("tracking poll done", **totals)
    return {**report.model_dump(), "totals": report.totals()}
