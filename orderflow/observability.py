"""Powertools singletons: one logger, tracer and metrics for the whole package, and the few metrics the
domain emits (through the helpers below, so it never touches Powertools Metrics or AWS itself).

The service name comes from ``POWERTOOLS_SERVICE_NAME`` (set per function by CDK and the local stack).

Metrics are CloudWatch embedded metric format (EMF) lines that Powertools prints into the function's log;
CloudWatch turns them into metrics in the ``orderflow`` namespace with the dimension ``service``. Each
handler is wrapped in :func:`log_metrics`, which prints what the invocation recorded and clears it.
They are recorded only inside a Lambda function (``AWS_LAMBDA_FUNCTION_NAME``) and unless
``POWERTOOLS_METRICS_DISABLED`` is set (the local stack and the tests set it: its handlers run in one
process, where EMF lines would flood the console), so a CLI run or a test never piles up unflushed values.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit, single_metric
from aws_lambda_powertools.metrics.functions import is_metrics_disabled

NAMESPACE = "orderflow"
SERVICE = "orderflow"

logger = Logger(service=SERVICE)
metrics = Metrics(namespace=NAMESPACE, service=SERVICE)


def tracing_enabled() -> bool:
    """X-Ray subsegments from the handlers: inside a Lambda function unless ``POWERTOOLS_TRACE_DISABLED``
    says not (Powertools' own rule; CDK sets it unless the app is synthesized with ``-c xray_sdk=true``)."""
    disabled = os.getenv("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in {"1", "true", "yes", "on", "y"}
    return bool(os.getenv("AWS_LAMBDA_FUNCTION_NAME")) and not disabled


class LazyTracer:
    """Powertools' Tracer, built on first use and only when tracing is on: building it imports the X-Ray
    SDK (about a third of a handler's cold import), which a function that does not trace never needs.
    With tracing off, its decorators hand the function back untouched."""

    def __init__(self, service: str) -> None:
        self.service = service
        self._tracer: Any = None

    @property
    def powertools(self) -> Any:
        if self._tracer is None:
            from aws_lambda_powertools import Tracer

            self._tracer = Tracer(service=self.service)
        return self._tracer

    def capture_lambda_handler(self, lambda_handler: Any = None, **options: Any) -> Any:
        if not tracing_enabled():
            return lambda_handler if lambda_handler is not None else (lambda handler: handler)
        return self.powertools.capture_lambda_handler(lambda_handler, **options)

    def __getattr__(self, name: str) -> Any:  # put_annotation, capture_method ... as Powertools has them
        return getattr(self.powertools, name)


tracer = LazyTracer(SERVICE)

#: Order events that count as an order reaching a status worth watching -> the metric they add 1 to.
ORDER_EVENT_METRICS: dict[str, str] = {
    "created": "OrdersCreated",
    "paid": "OrdersPaid",
    "completed": "OrdersCompleted",
    "completed_manually": "OrdersCompleted",
    "completed_on_channel": "OrdersCompleted",
    "needs_attention": "OrdersNeedingAttention",
}
#: The reconciler's count of orders in ``needs_attention`` right now (every path, the workflow's included).
ATTENTION_BACKLOG = "OrdersInNeedsAttention"
#: Milliseconds the allocation rules took to plan an order.
ALLOCATION_LATENCY = "AllocationLatency"
#: Milliseconds a workflow step's handler took, with the dimension ``step`` (prepare, fulfill).
STEP_LATENCY = "StepLatency"
#: Every metric the code emits (the CDK dashboard and alarms name them from here).
METRIC_NAMES = (*dict.fromkeys(ORDER_EVENT_METRICS.values()), ATTENTION_BACKLOG, ALLOCATION_LATENCY, STEP_LATENCY)


def metrics_enabled() -> bool:
    """Inside a Lambda function, unless ``POWERTOOLS_METRICS_DISABLED`` (or ``POWERTOOLS_DEV``) says not."""
    return bool(os.getenv("AWS_LAMBDA_FUNCTION_NAME")) and not is_metrics_disabled()


def count(name: str, value: float = 1) -> None:
    if metrics_enabled():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)


def milliseconds(name: str, value: float) -> None:
    if metrics_enabled():
        metrics.add_metric(name=name, unit=MetricUnit.Milliseconds, value=round(value, 3))


@contextmanager
def timed(name: str) -> Iterator[None]:
    """Record how long the block took (milliseconds), also when it raises."""
    started = time.perf_counter()
    try:
        yield
    finally:
        milliseconds(name, (time.perf_counter() - started) * 1000)


F = TypeVar("F", bound=Callable[..., Any])


def log_metrics(handler: F) -> F:
    """Powertools' ``metrics.log_metrics`` for our handlers: flush what the invocation recorded when it ends
    (also when it raises), one EMF line. Unlike Powertools' decorator it says nothing when nothing was
    recorded, which is most invocations (a GET, a poll that found nothing): no warning in every log stream."""

    @functools.wraps(handler)
    def wrapper(event: Any, context: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return handler(event, context, *args, **kwargs)
        finally:
            if metrics.metric_set:
                metrics.flush_metrics()

    return wrapper  # type: ignore[return-value]


def step_latency(step: str) -> Callable[[F], F]:
    """Decorate a workflow step's handler: ``StepLatency`` (ms) with the dimensions ``service`` and ``step``,
    printed at once as its own EMF line (so the invocation's other metrics keep the one ``service``
    dimension)."""

    def decorate(handler: F) -> F:
        @functools.wraps(handler)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            try:
                return handler(*args, **kwargs)
            finally:
                if metrics_enabled():
                    elapsed = (time.perf_counter() - started) * 1000
                    with single_metric(name=STEP_LATENCY, unit=MetricUnit.Milliseconds, value=round(elapsed, 3),
                                       namespace=NAMESPACE, default_dimensions={"service": SERVICE}) as metric:
                        metric.add_dimension(name="step", value=step)

        return wrapper  # type: ignore[return-value]

    return decorate


def log_order_events(order, events) -> None:  # noqa: ANN001 - avoids a models import cycle
    """One log line per order event: the order id, the event and its detail (never personal data); and
    the order counts (``OrdersCreated``, ``OrdersPaid``...) for the events that reach those statuses."""
    for event in events:
        logger.info(f"order {order.order_id} {event.type}", order_id=order.order_id, order_event=event.type,
                    detail=event.detail, order_status=order.status.value)
        if event.type in ORDER_EVENT_METRICS:
            count(ORDER_EVENT_METRICS[event.type])
