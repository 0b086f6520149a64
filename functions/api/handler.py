"""The HTTP API behind API Gateway (REST, proxy integration)."""

from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from orderflow.api.app import resolve
from orderflow.observability import log_metrics, logger, tracer


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True)
@tracer.capture_lambda_handler(capture_response=False)
@log_metrics
def lambda_handler(event: dict, context: LambdaContext) -> dict:
    return resolve(event, context)
