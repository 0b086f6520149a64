"""PollFba (scheduled, e.g. every 15 minutes): ask Amazon about every open Multi-Channel Fulfillment order;
shipments that left with tracking resume their executions, orders Amazon gave up on need attention
(``orderflow.fba.tracking``). ``{"warehouse_id": "..."}`` polls one FBA warehouse only.
"""

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel

from orderflow.channels.http import Deadline
from orderflow.fba.tracking import poll
from orderflow.models import Identifier
from orderflow.observability import log_metrics, logger, tracer
from orderflow.wiring import default_ports

#: Seconds kept back from the Lambda timeout to answer.
SAFETY_MARGIN = 10.0


class PollEvent(BaseModel, defer_build=True):
    warehouse_id: Identifier | None = None


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    request = PollEvent.model_validate({k: v for k, v in (event or {}).items() if k in PollEvent.model_fields})
    report = poll(default_ports(), warehouse_id=request.warehouse_id,
                  deadline=Deadline.of_lambda(context, margin=SAFETY_MARGIN))
    logger.info("fba poll", checked=report.checked, shipped=report.shipped, waiting=report.waiting,
                needs_attention=report.needs_attention, failed=report.failed, stopped=report.stopped)
    return report.model_dump(mode="json", exclude={"items"})
