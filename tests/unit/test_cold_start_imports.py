"""What a handler's cold start loads (issue 13: cold start near ``import boto3``). Each handler module is
imported in a fresh interpreter, with the environment the benchmark (benchmarks/cold_start.py) and CDK give
it, and the test names what must not be loaded or built then: a real assertion on the modules, not a timing.

- no handler builds a pydantic model at import (``defer_build``: a model is built when first used, so a
  cold start builds only the models its invocation uses);
- the X-Ray SDK is not loaded while tracing is off, and is when it is on (the tracer is then Powertools');
- no handler loads boto3 (the clients are botocore's; boto3's resources and S3 transfers cost some 25 ms of
  imports and no function uses them);
- the workflow steps (Prepare, Fulfill) load neither the channel, FBA, supplier, carrier or purchasing code
  nor httpx, Powertools' batch processor or its event handler (the API's).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PATH": "/usr/bin:/bin", "POWERTOOLS_TRACE_DISABLED": "true", "AWS_DEFAULT_REGION": "us-east-1"}
HANDLERS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/handler.py"))

PROBE = """
import json, sys
import functions.{name}.handler
from pydantic import BaseModel

def subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from subclasses(sub)

built = sorted({{f"{{c.__module__}}.{{c.__qualname__}}" for c in subclasses(BaseModel)
                if c.__module__.startswith(("orderflow", "functions")) and c.__pydantic_complete__}})
print(json.dumps({{"modules": sorted(m for m, mod in sys.modules.items() if mod is not None), "built": built}}))
"""

#: Models built at import on purpose: the channel importer's report and its placeholder address (an
#: Address instance at module level builds Address).
BUILT_AT_IMPORT = {"orderflow.channels.importing.Outcome", "orderflow.channels.importing.ImportReport",
                   "orderflow.models.Address"}

#: Not loaded by a workflow step's cold start (module prefixes).
NOT_IN_WORKFLOW_STEPS = ("httpx", "aws_xray_sdk", "paramiko", "orderflow.api", "orderflow.purchasing",
                         "orderflow.channels.ports", "orderflow.channels.config", "orderflow.channels.clients",
                         "orderflow.channels.http", "orderflow.fba", "orderflow.suppliers", "orderflow.carriers.accounts",
                         "orderflow.carriers.http", "orderflow.outbound_retry", "aws_lambda_powertools.event_handler",
                         "aws_lambda_powertools.utilities.batch", "aws_lambda_powertools.utilities.parser")


def loaded(name: str, **env: str) -> dict:
    out = subprocess.run([sys.executable, "-c", PROBE.format(name=name)], cwd=ROOT, env={**ENV, **env},
                         capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def matching(modules: list[str], prefixes: tuple[str, ...]) -> list[str]:
    return [m for m in modules if any(m == p or m.startswith(p + ".") for p in prefixes)]


@pytest.fixture(scope="module")
def cold() -> dict[str, dict]:
    return {name: loaded(name) for name in HANDLERS}


@pytest.mark.parametrize("name", HANDLERS)
def test_no_handler_builds_a_model_or_loads_the_xray_sdk_or_boto3_at_import(cold, name):
    assert not matching(cold[name]["modules"], ("aws_xray_sdk", "boto3", "s3transfer"))
    assert "botocore.client" in cold[name]["modules"]
    assert set(cold[name]["built"]) <= BUILT_AT_IMPORT, cold[name]["built"]


@pytest.mark.parametrize("name", ["prepare", "fulfill"])
def test_a_workflow_step_loads_only_the_workflow(cold, name):
    assert not matching(cold[name]["modules"], NOT_IN_WORKFLOW_STEPS)
    assert "orderflow.workflow.steps" in cold[name]["modules"]


def test_the_queue_consumers_do_not_load_powertools_batch_processor(cold):
    for name in ("forward_fba", "forward_supplier", "sync_stock", "tell_channel"):
        assert not matching(cold[name]["modules"], ("aws_lambda_powertools.utilities.batch",)), name


def test_with_tracing_on_the_handler_is_traced_by_powertools():
    probe = ("import sys, functions.prepare.handler as handler\n"
             "from aws_lambda_powertools import Tracer\n"
             "from orderflow import observability\n"
             "print(isinstance(observability.tracer._tracer, Tracer), 'aws_xray_sdk' in sys.modules,\n"
             "      hasattr(handler.lambda_handler, '__wrapped__'))")
    env = {k: v for k, v in ENV.items() if k != "POWERTOOLS_TRACE_DISABLED"}
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, check=True,
                         env={**env, "AWS_LAMBDA_FUNCTION_NAME": "orderflow-prepare"})
    assert out.stdout.split() == ["True", "True", "True"]


def test_deferred_models_built_first_by_many_threads_at_once_validate_right():
    """The local stack runs handlers in threads: a deferred model's first uses may race. Pydantic's rebuild lock
    (pinned 2.14.3) keeps a half-built model from validating with its parent's validator (``extra_forbidden``)."""
    probe = """
import threading
from orderflow.models import NewOrder, Order
raw = {"lines": [{"sku": "MUG", "quantity": 1, "unit_price": "1.00"}],
       "shipping_address": {"name": "A", "line1": "1 St", "city": "C", "postal_code": "1", "country": "US"}}
barrier, errors = threading.Barrier(16), []

def first_use():
    barrier.wait()
    try:
        Order.from_new(NewOrder.model_validate(raw)).model_dump(mode="json")
    except Exception as exc:  # noqa: BLE001
        errors.append(repr(exc))

threads = [threading.Thread(target=first_use) for _ in range(16)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(errors or "ok")
"""
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, env=ENV, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "ok", out.stdout
