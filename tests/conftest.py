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



#: Started first by `make test`'s two workers: the fuzz test, minutes long. make test passes
#: --no-loadscope-reorder, so xdist sends the files in the order this hook leaves: the fuzz test, then
#: the files with the most tests first (xdist's own order, which left the one-test fuzz file for last,
#: where the whole run waited on it alone), so the other worker works through the many quick unit tests
#: while the fuzz test runs, and the few-test e2e files come last, as before.
RUN_FIRST = ("tests/e2e/test_fuzz_api.py",)


def pytest_collection_modifyitems(config, items):  # noqa: ANN001, ANN201
    def path(item) -> str:  # noqa: ANN001
        return item.nodeid.split("::", 1)[0]

    counts: dict[str, int] = {}
    for item in items:
        counts[path(item)] = counts.get(path(item), 0) + 1
    first = {file: n for n, file in enumerate(RUN_FIRST)}
    items.sort(key=lambda item: (first.get(path(item), len(RUN_FIRST)), -counts[path(item)]))  # stable
