"""Step Functions executions of the embedded AWS as greenlets on one hub thread, not OS threads.

moto's Step Functions interpreter runs every execution on OS threads: one for the execution, one for its
program, one per state being evaluated (to time it out), one per Map iteration. An order whose execution
waits for its shipment (a task token, possibly for days) holds about six of them, so a local stack that
has seen a few thousand orders holds tens of thousands of threads and gigabytes of stacks (issue 10,
item 7). On AWS a waiting execution costs nothing; here it should cost memory, not threads.

:func:`install` gives the interpreter's modules cooperative stand-ins for what they take from
``threading`` and ``time``:

- ``Thread`` starts a greenlet on the hub thread (from any thread: ``StartExecution`` arrives on a
  request thread of the embedded server);
- ``Event`` wakes greenlets on the hub and native threads alike (``SendTaskSuccess`` and
  ``StopExecution`` set it from request threads), with timeouts kept on the hub's timer heap;
- ``Lock``/``RLock`` yield to the hub instead of blocking it while another greenlet holds them, and an
  ``RLock`` is owned by a greenlet, not by the thread all greenlets share;
- ``time.sleep`` (retry back-off, Wait states) parks the greenlet on a timer;
- the AWS calls a state makes (``lambda:invoke``, ``sqs:sendMessage``, ``dynamodb:updateItem``: HTTP to
  the embedded server, which runs our handlers) run on a small pool of I/O threads while the greenlet
  waits, so executions still overlap their work.

A waiting execution is then a few parked greenlets (a few KB each) and a timer entry. The interpreter's
code is unchanged; only the names it looks up are replaced, once, before the first execution starts.
Set ``ORDERFLOW_SFN_THREADS=1`` to keep moto's threads (benchmarks compare both).
"""

from __future__ import annotations

import atexit
import collections
import heapq
import importlib
import itertools
import logging
import os
import sys
import threading
import time as _time
import types
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import greenlet

LOG = logging.getLogger("orderflow.local.sfn_hub")

#: Threads that carry the interpreter's AWS calls (each a request to the embedded server, which runs the
#: handler): how many states of all executions may be in a handler at once.
IO_THREADS = int(os.environ.get("ORDERFLOW_SFN_IO_THREADS", "32"))

#: The interpreter's modules that take ``threading``/``time`` names or make AWS calls: imported first, so
#: that they are among the loaded ``moto.stepfunctions.parser`` modules that :func:`install` amends.
MODULES = (
    "moto.stepfunctions.parser.backend.execution_worker",
    "moto.stepfunctions.parser.asl.component.program.program",
    "moto.stepfunctions.parser.asl.component.state.exec.execute_state",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.inline_iteration_component",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.job",
    "moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.itemprocessor.map_run_record",
    "moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branch_worker",
    "moto.stepfunctions.parser.asl.component.state.exec.state_parallel.branches_decl",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.lambda_eval_utils",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sqs",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_dynamodb",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sfn",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_sns",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_events",
    "moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk",
    "moto.stepfunctions.parser.asl.component.state.wait.wait_function.wait_function",
    "moto.stepfunctions.parser.asl.component.common.retry.retrier_decl",
    "moto.stepfunctions.parser.asl.eval.environment",
    "moto.stepfunctions.parser.asl.eval.event.event_manager",
    "moto.stepfunctions.parser.asl.eval.callback.callback",
)


class _Timer:
    __slots__ = ("deadline", "seq", "callback", "alive")

    def __init__(self, deadline: float, seq: int, callback: Callable[[], None]) -> None:
        self.deadline, self.seq, self.callback, self.alive = deadline, seq, callback, True

    def __lt__(self, other: _Timer) -> bool:
        return (self.deadline, self.seq) < (other.deadline, other.seq)


class _Waiter:
    """One parked greenlet; the first of its wake-ups (event, timer, I/O done) resumes it, later ones
    are ignored, so a greenlet is never resumed where it parked for something else."""

    __slots__ = ("glet", "fired", "timer")

    def __init__(self, glet: greenlet.greenlet) -> None:
        self.glet, self.fired, self.timer = glet, False, None

    def fire(self, hub: Hub, value: Any) -> None:
        if self.fired:
            return
        self.fired = True
        if self.timer is not None:
            hub.cancel(self.timer)
        hub.ready.append((self.glet, value))


class Hub:
    """A run loop on its own thread: ready greenlets, callbacks from other threads, timers."""

    def __init__(self, io_threads: int = IO_THREADS) -> None:
        self.ready: collections.deque[tuple[greenlet.greenlet, Any]] = collections.deque()
        self._inbox: collections.deque[Callable[[], None]] = collections.deque()
        self._timers: list[_Timer] = []
        self._dead_timers = 0
        self._seq = itertools.count()
        self._wake = threading.Event()
        self._io = ThreadPoolExecutor(io_threads, thread_name_prefix="sfn-io")
        self.tasks = 0  # greenlets started and not yet ended
        self._live: set[greenlet.greenlet] = set()
        self._stopping = False
        self.stopped = False
        self._started = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sfn-hub", daemon=True)
        self._thread.start()
        self._started.wait()

    # -- the loop ---------------------------------------------------------------------------------

    def _run(self) -> None:
        self.ident = threading.get_ident()
        self.glet = greenlet.getcurrent()
        self._started.set()
        while not self._stopping:
            self._wake.clear()
            while self._inbox:
                self._safely(self._inbox.popleft())
            if self._stopping:
                break
            now = _time.monotonic()
            while self._timers and (self._timers[0].deadline <= now or not self._timers[0].alive):
                timer = heapq.heappop(self._timers)
                if timer.alive:
                    timer.alive = False
                    self._safely(timer.callback)
                else:
                    self._dead_timers -= 1
            if self.ready:
                for _ in range(len(self.ready)):
                    glet, value = self.ready.popleft()
                    if value is _START and not glet.dead:
                        glet.switch()
                    elif not glet.dead:
                        glet.switch(value)
                continue
            self._wake.wait(min(self._timers[0].deadline - now, 3600.0) if self._timers else None)

    def stop(self, timeout: float = 10.0) -> None:
        """End every parked greenlet (``GreenletExit`` where it waits) and the loop. At exit: a greenlet
        still parked on the hub's thread while the interpreter finalizes may crash it."""
        halted = threading.Event()

        def halt() -> None:
            self._stopping = True
            for glet in list(self._live):
                if not glet.dead:
                    try:
                        glet.throw(greenlet.GreenletExit)
                    except BaseException:  # noqa: BLE001 - ending anyway
                        pass
            halted.set()

        self.stopped = True
        self.call_soon(halt)
        halted.wait(timeout)
        self._thread.join(timeout)
        self._io.shutdown(wait=False, cancel_futures=True)

    @staticmethod
    def _safely(callback: Callable[[], None]) -> None:
        try:
            callback()
        except Exception:  # a callback's failure must not stop every execution
            LOG.exception("step functions hub: a callback failed")

    # -- scheduling -------------------------------------------------------------------------------

    def on_hub(self) -> bool:
        return threading.get_ident() == self.ident

    def in_task(self) -> bool:
        """True in a greenlet of the hub (where waiting must yield to the hub)."""
        return threading.get_ident() == self.ident and greenlet.getcurrent() is not self.glet

    def call_soon(self, callback: Callable[[], None]) -> None:
        """Run ``callback`` on the hub thread (now when already there, between greenlets otherwise)."""
        if self.on_hub():
            callback()
        else:
            self._inbox.append(callback)
            self._wake.set()

    def call_later(self, delay: float, callback: Callable[[], None]) -> _Timer:
        timer = _Timer(_time.monotonic() + max(0.0, delay), next(self._seq), callback)
        heapq.heappush(self._timers, timer)
        return timer

    def cancel(self, timer: _Timer) -> None:
        if timer.alive:
            timer.alive = False
            self._dead_timers += 1
            if self._dead_timers > 1000 and self._dead_timers > len(self._timers) // 2:
                self._timers = [t for t in self._timers if t.alive]  # long waits ended early: drop them
                heapq.heapify(self._timers)
                self._dead_timers = 0

    def spawn(self, function: Callable[[], None], name: str) -> None:
        def body() -> None:
            try:
                function()
            except greenlet.GreenletExit:  # collected while parked (its execution was dropped): no error
                pass
            except BaseException:
                LOG.exception("step functions hub: %s ended with an error", name)
            finally:
                self.tasks -= 1
                self._live.discard(greenlet.getcurrent())

        def start() -> None:
            self.tasks += 1
            glet = greenlet.greenlet(body, parent=self.glet)
            self._live.add(glet)
            self.ready.append((glet, _START))

        self.call_soon(start)

    def sleep(self, seconds: float) -> None:
        """Park the current greenlet for ``seconds`` (0: let the others that are ready run first)."""
        if not self.in_task():
            _time.sleep(seconds)
            return
        waiter = _Waiter(greenlet.getcurrent())
        if seconds <= 0:
            waiter.fire(self, None)
        else:
            waiter.timer = self.call_later(seconds, lambda: waiter.fire(self, None))
        self.glet.switch()

    def run_blocking(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Run a blocking call on an I/O thread while this greenlet is parked (directly off the hub)."""
        if not self.in_task():
            return function(*args, **kwargs)
        waiter = _Waiter(greenlet.getcurrent())
        future: Future = self._io.submit(function, *args, **kwargs)
        future.add_done_callback(lambda done: self.call_soon(lambda: waiter.fire(self, done)))
        done = self.glet.switch()
        return done.result()


_START = object()  # a new greenlet: switched to without a value
_hub: Hub | None = None
_hub_lock = threading.Lock()


def hub() -> Hub:
    global _hub
    if _hub is None:
        with _hub_lock:
            if _hub is None:
                _hub = Hub()
                atexit.register(stop)
    return _hub


def stop() -> None:
    """Stop the hub for good (at exit): its parked executions end, and it runs nothing more. It stays the
    hub, so that what the ending executions still do (an event set in a ``finally``) does not start a
    second hub that would be handed greenlets of the first one's thread."""
    with _hub_lock:
        running = _hub
    if running is not None and not running.stopped:
        running.stop()


# -- what the interpreter's modules see ----------------------------------------------------------------


class Event:
    """``threading.Event`` for greenlets of the hub and native threads at once."""

    def __init__(self) -> None:
        self._flag = False
        self._native = threading.Event()
        self._waiters: list[_Waiter] = []  # touched on the hub thread only

    def is_set(self) -> bool:
        return self._flag

    isSet = is_set

    def set(self) -> None:
        self._flag = True
        self._native.set()
        if self._waiters or not hub().on_hub():
            hub().call_soon(self._wake_all)

    def _wake_all(self) -> None:
        waiters, self._waiters = self._waiters, []
        for waiter in waiters:
            waiter.fire(hub(), True)

    def clear(self) -> None:
        self._flag = False
        self._native.clear()

    def wait(self, timeout: float | None = None) -> bool:
        if self._flag:
            return True
        h = hub()
        if not h.in_task():
            return self._native.wait(timeout)
        waiter = _Waiter(greenlet.getcurrent())
        if timeout is not None:
            waiter.timer = h.call_later(timeout, lambda: waiter.fire(h, False))
        self._waiters.append(waiter)
        try:
            h.glet.switch()
        finally:
            if waiter in self._waiters:
                self._waiters.remove(waiter)
            if waiter.timer is not None:
                h.cancel(waiter.timer)
        return self._flag


class Lock:
    """A lock that a greenlet waits for by yielding, so the holder (maybe parked on I/O) can go on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        h = hub()
        if not h.in_task():
            return self._lock.acquire(blocking, timeout)
        if self._lock.acquire(False):
            return True
        if not blocking:
            return False
        deadline = None if timeout is None or timeout < 0 else _time.monotonic() + timeout
        pause = 0.0005
        while not self._lock.acquire(False):
            if deadline is not None and _time.monotonic() >= deadline:
                return False
            h.sleep(pause)
            pause = min(pause * 2, 0.01)
        return True

    def release(self) -> None:
        self._lock.release()

    def locked(self) -> bool:
        return self._lock.locked()

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()


class RLock:
    """Re-entrant for its owner: a greenlet on the hub, or a native thread."""

    def __init__(self) -> None:
        self._lock = Lock()
        self._owner: greenlet.greenlet | None = None
        self._count = 0

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = greenlet.getcurrent()  # a native thread's own main greenlet stands for the thread
        if self._owner is me:
            self._count += 1
            return True
        if not self._lock.acquire(blocking, timeout):
            return False
        self._owner, self._count = me, 1
        return True

    def release(self) -> None:
        if self._owner is not greenlet.getcurrent():
            raise RuntimeError("cannot release un-acquired lock")
        self._count -= 1
        if not self._count:
            self._owner = None
            self._lock.release()

    __enter__ = acquire

    def __exit__(self, *exc: object) -> None:
        self.release()


class Thread:
    """``threading.Thread`` as far as the interpreter uses it: start, join, is_alive."""

    def __init__(self, group: None = None, target: Callable[..., Any] | None = None, name: str | None = None,
                 args: tuple = (), kwargs: dict | None = None, *, daemon: bool | None = None) -> None:
        self._target, self._args, self._kwargs = target, args, kwargs or {}
        self.name = name or "sfn-task"
        self.daemon = True
        self._started = False
        self._done = Event()

    def start(self) -> None:
        if self._started:
            raise RuntimeError("threads can only be started once")
        self._started = True
        hub().spawn(self._run, self.name)

    def _run(self) -> None:
        try:
            if self._target is not None:
                self._target(*self._args, **self._kwargs)
        finally:
            self._target = self._args = self._kwargs = None  # type: ignore[assignment]
            self._done.set()

    def join(self, timeout: float | None = None) -> None:
        self._done.wait(timeout)

    def is_alive(self) -> bool:
        return self._started and not self._done.is_set()


def sleep(seconds: float) -> None:
    hub().sleep(seconds)


class _Forgetful(list):
    """moto keeps every thread it ever started in ``TMP_THREADS``; greenlets need no such list."""

    def append(self, item: object) -> None:
        pass


class _OffloadedClient:
    """A boto3 client whose calls run on the hub's I/O threads while the calling greenlet is parked."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._client, name)
        if name.startswith("_") or not callable(attribute) or name in ("get_paginator", "get_waiter"):
            return attribute
        return lambda *args, **kwargs: hub().run_blocking(attribute, *args, **kwargs)


def _embedded_client(region: str, service: str, endpoint: str) -> Any:
    """What moto's ``boto_client_for`` makes, with a connection pool as large as the I/O threads."""
    import boto3
    from botocore.config import Config
    from moto.stepfunctions.parser.asl.component.common.timeouts.timeout import TimeoutSeconds

    return boto3.client(
        service_name=service, region_name=region, endpoint_url=endpoint,
        aws_access_key_id="ak", aws_secret_access_key="sk",
        config=Config(parameter_validation=False, retries={"max_attempts": 0, "total_max_attempts": 1},
                      connect_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                      read_timeout=TimeoutSeconds.DEFAULT_TIMEOUT_SECONDS,
                      max_pool_connections=IO_THREADS + 4))


threading_stand_in = types.SimpleNamespace(
    Thread=Thread, Event=Event, Lock=Lock, RLock=RLock, Condition=threading.Condition,
    get_ident=threading.get_ident, current_thread=threading.current_thread,
)
time_stand_in = types.SimpleNamespace(**{name: getattr(_time, name) for name in dir(_time) if not name.startswith("__")})
time_stand_in.sleep = sleep

_installed = False


def installed() -> bool:
    return _installed


def install() -> None:
    """Give the interpreter's modules the stand-ins above (idempotent; before the first execution)."""
    global _installed
    if _installed or os.environ.get("ORDERFLOW_SFN_THREADS") == "1":
        return
    from moto.stepfunctions.parser.asl.utils import boto_client as boto_client_module

    original_client_for = boto_client_module.boto_client_for
    clients: dict[tuple[str, str, str], _OffloadedClient] = {}
    clients_lock = threading.Lock()

    def boto_client_for(region: str, service: str, state_credentials: Any = None) -> Any:
        """moto makes a new boto3 client for every state's AWS call (tens of ms each); one per region,
        service and embedded endpoint serves them all (boto3 clients are thread-safe). moto's own ignores
        ``state_credentials`` (every call goes to the embedded endpoint with fixed keys), and so does this."""
        from moto.core.models import botocore_stubber
        from moto.settings import moto_server_port

        if botocore_stubber.enabled:  # moto in-process (mock_aws), no embedded server: as moto does
            return _OffloadedClient(original_client_for(region, service, state_credentials))
        # the embedded server's own address (the local stack sets it) spares a "localhost" lookup per call
        endpoint = os.environ.get("AWS_ENDPOINT_URL") or f"http://localhost:{moto_server_port()}"
        key = (region, service, endpoint)
        with clients_lock:
            if key not in clients:
                clients[key] = _OffloadedClient(_embedded_client(region, service, endpoint))
            return clients[key]

    for name in MODULES:
        importlib.import_module(name)
    for name, module in list(sys.modules.items()):
        if not name.startswith("moto.stepfunctions.parser.") or module is None:
            continue
        if getattr(module, "threading", None) is threading:
            module.threading = threading_stand_in  # type: ignore[attr-defined]
        for attribute, stand_in in (("Thread", Thread), ("Event", Event), ("Lock", Lock)):
            if getattr(module, attribute, None) is getattr(threading, attribute):
                setattr(module, attribute, stand_in)
        if getattr(module, "time", None) is _time:
            module.time = time_stand_in  # type: ignore[attr-defined]
        if isinstance(getattr(module, "TMP_THREADS", None), list):
            module.TMP_THREADS = _Forgetful()  # type: ignore[attr-defined]
        if getattr(module, "boto_client_for", None) is original_client_for and module is not boto_client_module:
            module.boto_client_for = boto_client_for  # type: ignore[attr-defined]
    hub()
    _installed = True
