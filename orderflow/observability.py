"""Powertools singletons: one logger, tracer and metrics for the whole package.

The service name comes from ``POWERTOOLS_SERVICE_NAME`` (set per function by CDK and the local stack).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

logger = Logger(service="orderflow")
tracer = Tracer(service="orderflow")
metrics = Metrics(namespace="orderflow", service="orderflow")


def log_order_events(order, events) -> None:  # noqa: ANN001 - avoids a models import cycle
    """One log line per order event: the order id, the event and its detail (never personal data)."""
    for event in events:
        logger.info(f"order {order.order_id} {event.type}", order_id=order.order_id, order_event=event.type,
                    detail=event.detail, order_status=order.status.value)
