"""One `orderflow local` process for the end-to-end tests, driven over HTTP like a user would."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
import time

import httpx
import pytest

from orderflow_local.stack import free_port

TOKEN = "e2e-token"
ADDRESS = {"name": "Grace Hopper", "line1": "1 Navy Way", "city": "Arlington", "region": "VA",
           "postal_code": "22202", "country": "US"}


def start_stack(state_dir, *extra: str, persist: bool = False) -> dict:
    """``orderflow local`` on free ports; without ``persist`` it keeps nothing on disk (``--no-persist``)."""
    port, moto_port = free_port(), free_port()
    if not persist:
        extra = ("--no-persist", *extra)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "ORDERFLOW_", "MOTO_"))}
    proc = subprocess.Popen(
        [sys.executable, "-m", "orderflow.cli", "local", "--port", str(port), "--moto-port", str(moto_port),
         "--token", TOKEN, "--no-seed", "--state-dir", str(state_dir), *extra],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env)
    lines: queue.Queue[str] = queue.Queue()
    output: list[str] = []

    def pump():
        for line in proc.stdout:
            output.append(line)
            lines.put(line)

    threading.Thread(target=pump, daemon=True).start()
    deadline = time.monotonic() + 240  # a first start synthesizes the CDK app
    while True:
        try:
            line = lines.get(timeout=0.5)
        except queue.Empty:
            if proc.poll() is None and time.monotonic() < deadline:
                continue
            proc.kill()
            pytest.fail("local stack did not start: " + "".join(output))
        if "Press Ctrl-C" in line:
            break
    return {"proc": proc, "url": f"http://127.0.0.1:{port}", "state_dir": state_dir, "output": output, "env": env}


@pytest.fixture(scope="session")
def local_stack(tmp_path_factory):
    stack = start_stack(tmp_path_factory.mktemp("state"))
    yield stack
    if stack["proc"].poll() is None:
        stack["proc"].kill()


@pytest.fixture(scope="session")
def api(local_stack):
    with httpx.Client(base_url=local_stack["url"], headers={"Authorization": f"Bearer {TOKEN}"},
                      timeout=10) as client:
        yield client


def wait_status(api, order_id, *statuses, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        order = api.get(f"/orders/{order_id}").json()
        if order["status"] in statuses:
            return order
        time.sleep(0.1)
    raise AssertionError(f"{order_id} stayed {order['status']}: {order.get('attention_reason')}")
