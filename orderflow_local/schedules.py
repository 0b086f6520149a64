"""EventBridge Scheduler's stand-in: fires the schedules stored in the embedded AWS.

moto stores schedules but never fires them. :class:`ScheduleRunner` reads every schedule group (the template's
own ``AWS::Scheduler::Schedule`` resources and the channel import schedules the API creates at runtime) and
runs each enabled schedule on the local scheduler, invoking its target function in-process with its input, as
EventBridge Scheduler invokes it on AWS. ``overrides`` runs a function's schedule at another interval locally
(``orderflow local --tracking-poll-every``...).
"""

from __future__ import annotations

import logging
import re
from typing import Any

from orderflow.adapters.aws import client
from orderflow_local import lambda_binding

log = logging.getLogger(__name__)

RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float:
    """``rate(5 minutes)`` -> 300. (Our schedules are rate expressions.)"""
    match = RATE.match(expression.strip())
    if not match:
        raise ValueError(f"not a rate expression: {expression}")
    return int(match.group(1)) * UNIT_SECONDS[match.group(2).rstrip("s")]


class ScheduleRunner:
    def __init__(self, scheduler: Any, function_names: dict[str, str] | None = None) -> None:
        """``function_names``: physical function name -> functions/<name> (for ``overrides``)."""
        self.scheduler = scheduler
        self.function_names = function_names or {}
        self.overrides: dict[str, float] = {}
        self.running: dict[str, tuple[str, str, str, float]] = {}

    def override(self, function: str, every_seconds: float) -> None:
        """Run the schedule(s) of functions/<function> every ``every_seconds`` (before speed-up) locally."""
        self.overrides[function] = every_seconds
        self.sync()

    def job_name(self, function: str) -> str | None:
        """The scheduler job of functions/<function>'s template schedule."""
        for key, (_, arn, _, _) in self.running.items():
            if self.function_names.get(lambda_binding.function_name_of(arn)) == function:
                return key
        return None

    def sync(self) -> None:
        api = client("scheduler")
        seen = set()
        groups = [g["Name"] for g in api.list_schedule_groups().get("ScheduleGroups", [])]
        for group in groups:
            for summary in api.list_schedules(GroupName=group).get("Schedules", []):
                schedule = api.get_schedule(Name=summary["Name"], GroupName=group)
                if schedule.get("State", "ENABLED") != "ENABLED":
                    continue
                key = f"schedule:{group}/{summary['Name']}"
                seen.add(key)
                target = schedule["Target"]
                function = self.function_names.get(lambda_binding.function_name_of(target["Arn"]))
                every = self.overrides.get(function or "", None) or rate_seconds(schedule["ScheduleExpression"])
                signature = (schedule["ScheduleExpression"], target["Arn"], target.get("Input", "{}"), every)
                if self.running.get(key) == signature:
                    continue
                self.running[key] = signature
                self.scheduler.add(key, every, lambda arn=target["Arn"], payload=signature[2]: self.fire(arn, payload),
                                   run_at_start=group != "default" and key not in self.scheduler.jobs)
                log.debug("local schedule %s: every %ss -> %s", key, every, target["Arn"])
        for key in set(self.running) - seen:
            self.running.pop(key)
            self.scheduler.jobs.pop(key, None)

    @staticmethod
    def fire(function_arn: str, payload: str) -> Any:
        import json

        return lambda_binding.invoke(function_arn, json.loads(payload or "{}"))
