"""boto3 clients, created lazily and once per process.

boto3 honours ``AWS_ENDPOINT_URL``, so the same code talks to AWS or to the local stack.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

_lock = threading.Lock()


@cache
def _session() -> boto3.session.Session:
    return boto3.session.Session()


@cache
def client(service: str) -> Any:
    # boto3 client creation is not thread-safe on one session; the local stack runs handlers in threads.
    with _lock:
        return _session().client(
            service,
            config=Config(retries={"mode": "standard", "max_attempts": 3}, max_pool_connections=32),
        )


def server_error(exc: BaseException) -> bool:
    """Whether ``exc`` is an AWS service's answer of its own failure (HTTP 5xx): worth another try."""
    return isinstance(exc, ClientError) and exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500


def reset_clients() -> None:
    """Forget cached clients (tests that change the endpoint call this)."""
    client.cache_clear()
    _session.cache_clear()
