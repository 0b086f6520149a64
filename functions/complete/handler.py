"""Complete: every shipment has left; take the shipped units off the shelf once and complete the order."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow.observability import log_metrics, logger, step_latency, tracer
from orderflow.wiring import default_ports
from orderflow.workflow import steps


@logger.inject_lambda_context(correlation_id_path="execution_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
@step_latency("complete")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    step = steps.StepInput.model_validate(event)
    logger.append_keys(order_id=step.order_id)
    return steps.complete_order(step.order_id, default_ports())
