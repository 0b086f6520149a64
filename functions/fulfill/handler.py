"""Fulfill: route each shipment (``action: route``) and keep the task token of a waiting one
(``action: await_shipment``)."""

from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow.observability import log_metrics, logger, step_latency, tracer
from orderflow.wiring import default_ports
from orderflow.workflow import steps


@logger.inject_lambda_context(correlation_id_path="execution_id", clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
@step_latency("fulfill")
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    action = event.get("action", "route")
    if action == "await_shipment":
        waiting = steps.AwaitShipmentInput.model_validate(event)
        logger.append_keys(order_id=waiting.order_id, shipment_id=waiting.shipment_id)
        return steps.await_shipment(waiting, default_ports())
    step = steps.StepInput.model_validate(event)
    logger.append_keys(order_id=step.order_id)
    return steps.route_fulfillment(step.order_id, default_ports())
