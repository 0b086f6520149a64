"""Domain errors.

The class name of an error raised inside a workflow Lambda becomes the Step Functions error name
(``errorType``), so the names of :class:`BusinessError` subclasses are the ``ErrorEquals`` names
the ASL catches into ``needs_attention``; :class:`TransientError` is the one the ASL retries.
"""

from __future__ import annotations

from typing import Any


class OrderflowError(Exception):
    """Base of every error orderflow raises on purpose."""

    http_status = 400
    code = "bad_request"

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class BusinessError(OrderflowError):
    """The order cannot go on without a person: it lands in ``needs_attention`` with this reason."""

    http_status = 422
    code = "unprocessable"


class UnknownSku(BusinessError):
    code = "unknown_sku"


class NoWarehouseCanAllocate(BusinessError):
    code = "no_warehouse_can_allocate"


class InsufficientStock(BusinessError):
    """Stock moved between allocation and reduction and no longer covers the plan."""

    code = "insufficient_stock"


class UnsupportedFulfillmentRoute(BusinessError):
    code = "unsupported_fulfillment_route"


class StockMoved(OrderflowError):
    """The plan's stock was taken before it could be reserved: the workflow plans again."""

    http_status = 409
    code = "stock_moved"


class OrderCancelled(OrderflowError):
    """The order was cancelled while its workflow ran: the workflow ends in its ``Cancelled`` state
    (a Succeed state: a cancellation is not a failed execution)."""

    http_status = 409
    code = "order_cancelled"


class OrderCompletedOnChannel(OrderCancelled):
    """The sales channel fulfilled the order before anything was routed here: the workflow ends in its
    ``CompletedOnChannel`` state. (An :class:`OrderCancelled` to Python callers: the order is closed.)"""

    code = "order_completed_on_channel"


#: Error names a waiting task is failed with (``SendTaskFailure``), each ending the workflow in its state.
EXECUTION_SUPERSEDED = "ExecutionSuperseded"  # a redrive's newer execution carries the order on
FULFILLER_REJECTED = "FulfillerRejected"  # the fulfiller will not ship: the order needs attention
PLAN_AGAIN = "PlanAgain"  # stock arrived, or the routed part shipped with a backordered rest: plan it again


class FulfillerSlaExpired(BusinessError):
    """A supplier, 3PL or FBA did not confirm the shipment within the seller's SLA."""

    code = "fulfiller_sla_expired"


class NotFound(OrderflowError):
    http_status = 404
    code = "not_found"


class Conflict(OrderflowError):
    """The request is valid but the resource is in a state that does not allow it."""

    http_status = 409
    code = "conflict"


class ValidationFailed(OrderflowError):
    http_status = 422
    code = "validation_error"


class IdempotencyKeyReused(ValidationFailed):
    """The Idempotency-Key was used before with a different request body."""

    code = "idempotency_key_reused"


class TransientError(OrderflowError):
    """Throttling, a conflicting transaction, a service hiccup: safe to retry with backoff."""

    http_status = 503
    code = "temporarily_unavailable"


class ConcurrentUpdate(TransientError):
    """Someone else saved the same order (or document) first; read it again and retry."""


#: Names the state machine catches into ``needs_attention`` (tests check the ASL lists them all).
BUSINESS_ERROR_NAMES = sorted(cls.__name__ for cls in BusinessError.__subclasses__())
