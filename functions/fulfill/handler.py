"""Fulfill: the workflow's one wait (``action: await``): keep the task token on the order, for stock or
for all of its shipments, and hand the shipments of suppliers, 3PLs and Amazon FBA to their forwarders."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow.observability import log_metrics, logger, step_latency, tracer
from orderflow.wiring import default_ports
from orderflow.workflow import steps


@logger.inject_lambda_context(correlation_id_path="execution_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
@step_latency("fulfill")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    waiting = steps.AwaitInput.model_validate(event)
    logger.append_keys(order_id=waiting.order_id)
    return steps.await_fulfilment(waiting, default_ports())
