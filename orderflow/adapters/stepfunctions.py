"""Step Functions: start an order's execution (named after the order) and resume waiting shipments."""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from botocore.exceptions import ClientError

from orderflow.adapters.aws import client
from orderflow.errors import TransientError
from orderflow.settings import Settings, get_settings

log = logging.getLogger(__name__)
#: First wait before a throttled ``SendTaskSuccess`` is tried again (doubling each time).
RESUME_BACKOFF_SECONDS = 0.2


def execution_name(order_id: str, attempt: int = 1) -> str:
    """The order's first execution is named after it; a redrive runs ``<order id>-r2``, ``-r3``..."""
    return order_id if attempt <= 1 else f"{order_id}-r{attempt}"


def _describe(execution_arn: str) -> str:
    return client("stepfunctions").describe_execution(executionArn=execution_arn)["status"]


class WorkflowGateway:
    def __init__(self, settings: Settings | None = None) -> None:
        self.state_machine_arn = (settings or get_settings()).state_machine_arn

    def start(self, order_id: str, attempt: int = 1) -> str | None:
        """Start the order's execution (named after it; a redrive adds ``-r<attempt>``); starting the
        same one again is a no-op."""
        if not self.state_machine_arn:
            raise RuntimeError("ORDERFLOW_STATE_MACHINE_ARN is not set")
        try:
            resp = client("stepfunctions").start_execution(
                stateMachineArn=self.state_machine_arn, name=execution_name(order_id, attempt),
                input=json.dumps({"order_id": order_id}),
            )
            return resp["executionArn"]
        except ClientError as err:
            code = err.response["Error"]["Code"]
            if code == "ExecutionAlreadyExists":
                log.info("execution for order %s already exists", order_id)
                return None
            if code in {"ThrottlingException", "ServiceUnavailable"}:
                raise TransientError("Step Functions is busy; retry") from err
            raise

    def execution_arn(self, order_id: str, attempt: int = 1) -> str:
        if not self.state_machine_arn:
            raise RuntimeError("ORDERFLOW_STATE_MACHINE_ARN is not set")
        return f"{self.state_machine_arn.replace(':stateMachine:', ':execution:')}:{execution_name(order_id, attempt)}"

    def status(self, order_id: str, attempt: int = 1) -> str | None:
        """RUNNING, SUCCEEDED, FAILED, TIMED_OUT, ABORTED; None if it was never started."""
        try:
            return _describe(self.execution_arn(order_id, attempt))
        except ClientError as err:
            if err.response["Error"]["Code"] == "ExecutionDoesNotExist":
                return None
            raise

    def execution_status(self, execution_id: str) -> str | None:
        """The status of an execution named by its ARN (``$$.Execution.Id``, what a waiting step's message
        carries); None if there is no such execution. Any other failure to read it is a
        :class:`TransientError` (the caller is retried)."""
        try:
            return _describe(execution_id)
        except ClientError as err:
            if err.response["Error"]["Code"] in ("ExecutionDoesNotExist", "InvalidArn"):
                return None
            raise TransientError("cannot read the execution's status; retry") from err

    def stop(self, order_id: str, attempt: int, error: str, cause: str) -> bool:
        """Stop the order's execution with ``error``/``cause``. False if it could not be stopped (no
        permission, no state machine configured, already ended): the caller's token ends it instead."""
        try:
            client("stepfunctions").stop_execution(executionArn=self.execution_arn(order_id, attempt), error=error,
                                                   cause=cause[:32768])
            return True
        except (ClientError, RuntimeError) as err:
            log.warning("could not stop the execution of order %s: %s", order_id,
                        err.response.get("Error", {}).get("Code") if isinstance(err, ClientError) else err)
            return False

    def abandon(self, task_token: str, error: str, cause: str, *, attempts: int = 4) -> bool:
        """Fail a waiting task with ``error`` (a cancelled order: ``OrderCancelled``; stock arrived:
        ``PlanAgain``), which the workflow catches. False if the wait is over. Throttling is tried again
        as in :meth:`resume`."""
        return self._send(lambda sfn: sfn.send_task_failure(taskToken=task_token, error=error, cause=cause[:32768]),
                          attempts)

    def resume(self, task_token: str, output: dict[str, Any], *, attempts: int = 4) -> bool:
        """Hand a waiting execution its result. False if the wait is over (already resumed, timed out).

        A throttled or failing ``SendTaskSuccess`` is tried again (beyond botocore's own retries); if it
        still fails, :class:`TransientError` (503): the caller's retry, or the reconciler, resumes it."""
        return self._send(lambda sfn: sfn.send_task_success(taskToken=task_token, output=json.dumps(output)),
                          attempts)

    @staticmethod
    def _send(call: Any, attempts: int) -> bool:
        for attempt in range(1, attempts + 1):
            try:
                call(client("stepfunctions"))
                return True
            except ClientError as err:
                code = err.response["Error"]["Code"]
                if code in {"TaskDoesNotExist", "TaskTimedOut", "InvalidToken"}:
                    log.warning("task token no longer waiting (%s)", code)
                    return False
                status = err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
                if not (code in {"ThrottlingException", "ServiceUnavailable", "InternalFailure"} or status >= 500):
                    raise
                if attempt == attempts:
                    raise TransientError(f"Step Functions did not take the shipment ({code}); retry the same "
                                         "request, or the reconciler resumes it", code=code) from err
                time.sleep(RESUME_BACKOFF_SECONDS * 2 ** (attempt - 1))
        raise AssertionError("unreachable")
