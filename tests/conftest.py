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
