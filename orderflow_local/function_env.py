"""Each function sees the environment its template gives it, though all run in one process.

On AWS a function's configuration comes only from the ``Environment.Variables`` CDK writes into the template
(plus what Lambda itself sets). Locally every handler runs in the stack's process, so :func:`install` puts a
view over ``os.environ``: while a function runs (:func:`running`, per thread), ``ORDERFLOW_*`` variables come
from that function's template environment only. A variable CDK forgets to give a function is missing
locally too, and whatever needs it fails here before it fails on AWS.

What the local runtime adds for every function is declared in :func:`local_runtime_variable`: where it keeps
credentials and labels instead of Secrets Manager and S3, the sandbox servers' addresses, and retry timings
tests shorten. Everything else (``AWS_*`` with the local endpoint, ``PATH``...) is the process's.
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Iterator, MutableMapping

from orderflow import config


def local_runtime_variable(name: str) -> bool:
    """A variable the local runtime gives every function (the local stand-ins for Secrets Manager and S3,
    the sandboxes, what an operator may set): declared in orderflow.config. Anything else named
    ORDERFLOW_* must come from the template."""
    return config.local_runtime_variable(name)


def template_only(name: str) -> bool:
    """Inside a function, this variable comes from the function's template environment or not at all."""
    return name.startswith(config.PREFIX) and not local_runtime_variable(name)


_current = threading.local()


class FunctionEnviron(MutableMapping):
    """``os.environ`` as the running function sees it (the process's outside any function)."""

    def __init__(self, base: MutableMapping[str, str]) -> None:
        self.base = base

    @staticmethod
    def _function() -> dict[str, str] | None:
        return getattr(_current, "environment", None)

    def __getitem__(self, key: str) -> str:
        function = self._function()
        if function is not None:
            if key in function:
                return function[key]
            if template_only(key):
                raise KeyError(key)
        return self.base[key]

    def __setitem__(self, key: str, value: str) -> None:
        self.base[key] = value

    def __delitem__(self, key: str) -> None:
        del self.base[key]

    def _keys(self) -> list[str]:
        function = self._function()
        if function is None:
            return list(self.base)
        return [*function, *(k for k in self.base if k not in function and not template_only(k))]

    def __iter__(self) -> Iterator[str]:
        return iter(self._keys())

    def __len__(self) -> int:
        return len(self._keys())

    def copy(self) -> dict[str, str]:
        return dict(self.items())

    # os._Environ's extras that callers use
    def setdefault(self, key: str, value: str) -> str:  # type: ignore[override]
        if key not in self:
            self[key] = value
        return self[key]

    def __repr__(self) -> str:
        return f"FunctionEnviron({'function' if self._function() is not None else 'process'})"


def install() -> None:
    """Put the view over ``os.environ`` (idempotent). ``os.getenv`` reads through it too."""
    if not isinstance(os.environ, FunctionEnviron):
        os.environ = FunctionEnviron(os.environ)  # type: ignore[assignment]  # noqa: B003 - a view, not a reset


@contextlib.contextmanager
def running(function_name: str, environment: dict[str, str], memory_mb: int = 512) -> Iterator[None]:
    """Within this block (this thread), the environment is the function's: its template variables and what
    Lambda sets (``AWS_LAMBDA_FUNCTION_NAME``...)."""
    previous = getattr(_current, "environment", None)
    _current.environment = {
        **environment,
        "AWS_LAMBDA_FUNCTION_NAME": function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(memory_mb),
        "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
    }
    try:
        yield
    finally:
        _current.environment = previous
