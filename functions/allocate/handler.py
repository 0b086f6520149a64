"""Allocate: decide which warehouse(s) ship what the order still needs, and record why
(``action: allocate``, the default); keep the token of an order waiting for stock (``action: await_stock``)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow.observability import log_metrics, logger, step_latency, tracer
from orderflow.wiring import default_ports
from orderflow.workflow import steps


@logger.inject_lambda_context(correlation_id_path="execution_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
@step_latency("allocate")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    if event.get("action") == "await_stock":
        waiting = steps.AwaitInput.model_validate(event)
        logger.append_keys(order_id=waiting.order_id)
        return steps.await_stock(waiting, default_ports())
    step = steps.StepInput.model_validate(event)
    logger.append_keys(order_id=step.order_id)
    return steps.allocate_order(step.order_id, default_ports())
