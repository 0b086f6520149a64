"""A local stand-in for EventBridge Scheduler: named jobs on fixed intervals, with a speed-up and
"run now". moto stores schedules but never fires them, so the local stack runs this instead.

A job that raises is logged and runs again at its next tick, like a scheduled Lambda that failed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

log = logging.getLogger(__name__)


@dataclass
class Job:
    name: str
    every_seconds: float
    run: Callable[[], object]
    runs: int = 0
    failures: int = 0
    last_error: str | None = None
    next_at: float = field(default=0.0)


class LocalScheduler:
    def __init__(self, speedup: float = 1.0, tick: float = 0.05) -> None:
        if speedup <= 0:
            raise ValueError("speedup must be positive")
        self.speedup = speedup
        self.tick = tick
        self.jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def add(self, name: str, every_seconds: float, run: Callable[[], object], *, run_at_start: bool = False) -> Job:
        if every_seconds <= 0:
            raise ValueError("every_seconds must be positive")
        job = Job(name, every_seconds, run)
        job.next_at = time.monotonic() + (0 if run_at_start else every_seconds / self.speedup)
        with self._lock:
            self.jobs[name] = job
        return job

    def run_now(self, name: str) -> object:
        """Run a job at once in the caller's thread (the schedule's "invoke now")."""
        job = self.jobs[name]
        return self._run(job)

    def _run(self, job: Job) -> object:
        try:
            result = job.run()
            job.runs += 1
            return result
        except Exception as exc:  # noqa: BLE001 - a failed run is logged; the schedule goes on
            job.failures += 1
            job.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("scheduled job %s failed: %s", job.name, job.last_error)
            return None

    def _loop(self) -> None:
        while not self._stop.wait(self.tick):
            now = time.monotonic()
            with self._lock:
                due = [job for job in self.jobs.values() if job.next_at <= now]
            for job in due:
                job.next_at = now + job.every_seconds / self.speedup
                self._run(job)

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="orderflow-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)
