"""Shared test setup: no test may reach real AWS."""

import os

import pytest

# Fake credentials before anything builds a boto3 client (moto's "pesky imports" rule).
os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
os.environ.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
os.environ.setdefault("POWERTOOLS_SERVICE_NAME", "orderflow")
os.environ.pop("AWS_PROFILE", None)
# The tests' fakes and sandboxes listen on loopback, as on the local stack (refused on AWS: orderflow.outbound).
os.environ.setdefault("ORDERFLOW_SANDBOX_LOOPBACK", "1")


@pytest.fixture
def address() -> dict:
    return {"name": "Ada Lovelace", "line1": "12 Analytical St", "city": "London", "postal_code": "N1 9GU",
            "country": "gb"}


#: The longest test files, started first by `make test`'s two workers (with --no-loadscope-reorder the files
#: go out in this order, then as collected: e2e, infra, integration, then the many quick unit files, which
#: fill the gaps at the end). xdist's default order (most tests first) left the one-test fuzz file, minutes
#: long, for last: the whole run waited on it alone.
RUN_FIRST = ("tests/e2e/test_fuzz_api.py", "tests/e2e/test_restart.py")


def pytest_collection_modifyitems(config, items):  # noqa: ANN001, ANN201
    rank = {path: n for n, path in enumerate(RUN_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(RUN_FIRST)))  # stable: the rest as collected
