"""The embedded Step Functions' cooperative stand-ins (orderflow_local/sfn_hub.py): greenlets on one hub
thread that wait on events, timers, locks and blocking calls without holding an OS thread each.

Every wait here is bounded by a condition the test waits for (never a fixed sleep that must be long
enough), and nothing asserts how long anything took."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from orderflow_local import sfn_hub

pytestmark = pytest.mark.timeout(60)


def test_thousands_of_waiting_tasks_hold_no_os_thread_and_all_wake():
    sfn_hub.hub()  # started before counting threads
    before = threading.active_count()
    gate = sfn_hub.Event()
    woke = []
    everyone_waits = threading.Event()
    count = 3000
    waiting = [0]

    def task(i: int) -> None:
        waiting[0] += 1  # all tasks run on the hub thread: no race
        if waiting[0] == count:
            everyone_waits.set()
        woke.append(gate.wait(timeout=3600) and i)

    threads = [sfn_hub.Thread(target=task, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    assert everyone_waits.wait(30), f"only {waiting[0]} of {count} tasks are waiting"
    # 3000 parked executions, not 3000 threads (another test's thread may come or go meanwhile)
    assert threading.active_count() - before < 10
    assert all(thread.is_alive() for thread in threads) and woke == []

    gate.set()  # from this native thread, as SendTaskSuccess arrives on a request thread
    for thread in threads:
        thread.join(timeout=30)
    assert sorted(woke) == list(range(count))
    assert not any(thread.is_alive() for thread in threads)


def test_a_wait_times_out_and_a_late_set_does_not_wake_it_twice():
    results = []
    done = threading.Event()
    gate = sfn_hub.Event()

    def task() -> None:
        results.append(gate.wait(timeout=0.05))  # nobody sets it in time
        results.append(sfn_hub.Event().wait(timeout=0.01))
        done.set()

    sfn_hub.Thread(target=task).start()
    assert done.wait(30)
    gate.set()
    assert results == [False, False]
    # a native thread waits on the same kind of event the ordinary way
    native = sfn_hub.Event()
    threading.Timer(0.01, native.set).start()
    assert native.wait(timeout=30)


def test_a_lock_holder_parked_on_blocking_io_lets_the_others_run_and_keeps_them_out():
    hub = sfn_hub.hub()
    lock = sfn_hub.Lock()
    io_may_finish = threading.Event()
    order = []
    finished = threading.Event()

    def holder() -> None:
        with lock:
            order.append("holder in")
            hub.run_blocking(io_may_finish.wait, 30)  # an AWS call on an I/O thread
            order.append("holder out")

    def contender() -> None:
        with lock:
            order.append("contender in")
        finished.set()

    def bystander() -> None:
        order.append("bystander ran")
        io_may_finish.set()  # it ran while the holder was parked: the hub was not blocked

    for target in (holder, contender, bystander):
        sfn_hub.Thread(target=target).start()
    assert finished.wait(30)
    assert order == ["holder in", "bystander ran", "holder out", "contender in"]


def test_an_rlock_is_reentrant_for_its_greenlet_and_exclusive_between_greenlets():
    lock = sfn_hub.RLock()
    inside = []
    release = sfn_hub.Event()
    done = threading.Event()

    def first() -> None:
        with lock, lock:  # re-entered by its owner
            inside.append("first")
            release.wait(timeout=30)
        inside.append("first out")

    def second() -> None:
        with lock:  # same OS thread as first, yet it must wait for first's release
            inside.append("second")
        done.set()

    sfn_hub.Thread(target=first).start()
    sfn_hub.Thread(target=second).start()
    never = threading.Event()
    sfn_hub.Thread(target=lambda: (sfn_hub.sleep(0.02), never.set())).start()
    assert never.wait(30)
    assert inside == ["first"]  # second is still outside
    release.set()
    assert done.wait(30)
    assert inside == ["first", "first out", "second"]


def test_an_error_in_a_task_is_logged_and_the_hub_goes_on(caplog):
    def broken() -> None:
        raise ValueError("boom")

    thread = sfn_hub.Thread(target=broken)
    thread.start()
    thread.join(timeout=30)
    after = threading.Event()
    sfn_hub.Thread(target=after.set).start()
    assert after.wait(30)
    assert any("boom" in (r.exc_text or "") or (r.exc_info and "boom" in str(r.exc_info[1])) for r in caplog.records)


def test_install_gives_the_interpreter_the_stand_ins():
    sfn_hub.install()
    from moto.stepfunctions.parser.asl.component.state.exec import execute_state
    from moto.stepfunctions.parser.asl.eval.callback import callback
    from moto.stepfunctions.parser.backend import execution_worker

    assert execution_worker.Thread is sfn_hub.Thread and execute_state.Thread is sfn_hub.Thread
    assert callback.Event is sfn_hub.Event and callback.Lock is sfn_hub.Lock
    assert execute_state.threading.Event is sfn_hub.Event


def test_a_process_exits_cleanly_with_executions_still_parked(tmp_path):
    """``orderflow local`` stopped with Ctrl-C while orders wait: the hub ends its parked greenlets at exit
    (a greenlet left parked on another thread while the interpreter finalizes may crash it)."""
    import subprocess
    import sys

    script = tmp_path / "parked.py"
    script.write_text(
        "import threading\n"
        "from orderflow_local import sfn_hub\n"
        "gate, started = sfn_hub.Event(), threading.Event()\n"
        "def program(i):\n"
        "    worker = sfn_hub.Thread(target=gate.wait, args=(3600,))\n"
        "    worker.start()\n"
        "    if i == 199: started.set()\n"
        "    worker.join()  # as moto's Program.eval joins its worker: woken as the worker ends at exit\n"
        "for i in range(200): sfn_hub.Thread(target=program, args=(i,)).start()\n"
        "assert started.wait(30)\n"
        "print('parked', flush=True)\n"
        "hub = sfn_hub.hub()\n"
        "sfn_hub.stop()  # as at exit (atexit stops it again: a no-op)\n"
        "hub._thread.join(120)  # stop waits 10 s for the loop; a loaded machine (CI) may need longer\n"
        "assert sfn_hub.hub() is hub and not hub._live and not hub._thread.is_alive()\n"
        "sfn_hub.Thread(target=gate.wait, args=(3600,)).start()  # an execution starting at exit: dropped\n"
        "gate.set()  # set from this thread after the stop: nothing runs, nothing breaks\n")
    for _ in range(3):
        run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                             cwd=Path(__file__).resolve().parents[2])
        assert run.returncode == 0 and "parked" in run.stdout, (run.returncode, run.stderr[-2000:])
        assert "Traceback" not in run.stderr and "greenlet" not in run.stderr, run.stderr[-2000:]
