"""ImportOrders: poll one channel for new and changed orders, each stored exactly once.

Each channel has its own EventBridge Scheduler schedule (created with the channel by ``POST /channels``)
that sends ``{"channel_id": "..."}``. A run stops before the Lambda timeout (or when the channel's rate
limit asks for a longer wait) and the next one resumes from the saved page.
"""

from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from orderflow.channels.http import Deadline
from orderflow.channels.importing import ImportOptions, import_channel
from orderflow.models import Identifier
from orderflow.observability import log_metrics, logger, tracer
from orderflow.wiring import default_ports

#: Seconds kept back from the Lambda timeout to save the run's place and answer.
SAFETY_MARGIN = 15.0


class ImportEvent(BaseModel, defer_build=True):
    model_config = ConfigDict(extra="forbid")

    channel_id: Identifier
    max_pages: int | None = Field(None, ge=1)


@logger.inject_lambda_context(clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    request = ImportEvent.model_validate(event)
    logger.append_keys(channel=request.channel_id)
    options = ImportOptions(deadline=Deadline.of_lambda(context, margin=SAFETY_MARGIN), max_pages=request.max_pages)
    return import_channel(request.channel_id, default_ports(), options=options).model_dump(mode="json")
