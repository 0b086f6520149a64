"""Prepare: the workflow's burst before its wait, in one task: allocate (which warehouse(s) ship what the
order still needs, and why), reserve the plan's stock exactly once, route one shipment per warehouse
(``action: prepare``, the default); and, when the wait timed out, whether a shipment is past its
fulfiller's SLA (``action: check_overdue``)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow.observability import log_metrics, logger, step_latency, tracer
from orderflow.wiring import default_ports
from orderflow.workflow import steps


@logger.inject_lambda_context(correlation_id_path="execution_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
@step_latency("prepare")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    step = steps.StepInput.model_validate(event)
    logger.append_keys(order_id=step.order_id)
    if event.get("action") == "check_overdue":
        return steps.check_overdue(step.order_id, default_ports())
    return steps.prepare(step.order_id, default_ports())
