"""Runtime configuration from the environment, read once per function (never at import)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from orderflow import config
from orderflow.tables import INVENTORY, LEDGER, ORDERS, SETTINGS


@dataclass(frozen=True)
class Settings:
    """Table names and the state machine, from the environment (a dataclass: no pydantic validator to build
    at a cold start for five strings the code sets itself)."""

    orders_table: str
    inventory_table: str
    ledger_table: str
    settings_table: str
    state_machine_arn: str | None = None


T = TypeVar("T")


class per_function(Generic[T]):  # noqa: N801 - used as a decorator, like functools.cache
    """Cache a zero-argument factory once per Lambda function: keyed on ``AWS_LAMBDA_FUNCTION_NAME``, which
    Lambda sets and never changes within a container (so on AWS this is a plain once-per-process cache).
    The local stack runs every function in one process, each with its own environment: each gets its own."""

    def __init__(self, factory: Callable[[], T]) -> None:
        self.factory = factory
        self.values: dict[str | None, T] = {}
        self.lock = threading.Lock()
        self.__doc__ = factory.__doc__
        self.__name__ = getattr(factory, "__name__", "factory")

    def __call__(self) -> T:
        key = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
        try:
            return self.values[key]
        except KeyError:
            with self.lock:
                if key not in self.values:
                    self.values[key] = self.factory()
                return self.values[key]

    def cache_clear(self) -> None:
        with self.lock:
            self.values.clear()


@per_function
def get_settings() -> Settings:
    env = os.environ
    return Settings(
        orders_table=env.get(ORDERS.env_var, "orderflow-orders"),
        inventory_table=env.get(INVENTORY.env_var, "orderflow-inventory"),
        ledger_table=env.get(LEDGER.env_var, "orderflow-ledger"),
        settings_table=env.get(SETTINGS.env_var, "orderflow-settings"),
        state_machine_arn=config.STATE_MACHINE_ARN.get(),
    )
