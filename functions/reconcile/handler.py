"""Reconcile (scheduled): redrive orders whose workflow should be running but is not, so none stays stuck."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow import service
from orderflow.observability import logger, tracer
from orderflow.ports import default_ports


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    older_than = float(event.get("older_than_seconds", 300)) if isinstance(event, dict) else 300.0
    redriven = service.reconcile(default_ports(), older_than_seconds=older_than)
    logger.info("reconciled", redriven=len(redriven))
    return {"redriven": redriven}
