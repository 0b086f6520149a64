"""Reconcile (scheduled): redrive orders whose workflow should be running but is not, so none stays stuck."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow import observability, service
from orderflow.models import OrderStatus
from orderflow.observability import log_metrics, logger, tracer
from orderflow.wiring import default_ports


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    older_than = float(event.get("older_than_seconds", 300)) if isinstance(event, dict) else 300.0
    redriven = service.reconcile(default_ports(), older_than_seconds=older_than)
    logger.info("reconciled", redriven=len(redriven))
    if observability.metrics_enabled():
        # Every path into needs_attention counts here, the workflow's own RecordNeedsAttention (a direct
        # DynamoDB update, no handler) included: the alarm on it stays on while any order needs a person.
        waiting = default_ports().orders.count_by_status(OrderStatus.NEEDS_ATTENTION)
        observability.count(observability.ATTENTION_BACKLOG, waiting)
    return {"redriven": redriven}
