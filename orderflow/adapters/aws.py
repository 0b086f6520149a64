"""AWS clients, created lazily and once per process.

They are botocore's clients (what boto3's are): boto3 itself adds resources and S3 transfers, which no
function uses, and some 25 ms of imports to every cold start. botocore honours ``AWS_ENDPOINT_URL``, so the
same code talks to AWS or to the local stack.
"""

from __future__ import annotations

import threading
from functools import cache
from typing import Any

import botocore.session
from botocore.config import Config
from botocore.exceptions import ClientError

_lock = threading.Lock()


@cache
def _session() -> botocore.session.Session:
    return botocore.session.get_session()


@cache
def client(service: str) -> Any:
    # client creation is not thread-safe on one session; the local stack runs handlers in threads.
    with _lock:
        return _session().create_client(
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
