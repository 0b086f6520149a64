"""Runtime configuration from the environment, validated once per process (never at import)."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel

from orderflow.tables import INVENTORY, LEDGER, ORDERS, SETTINGS


class Settings(BaseModel):
    orders_table: str
    inventory_table: str
    ledger_table: str
    settings_table: str
    state_machine_arn: str | None = None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    env = os.environ
    return Settings(
        orders_table=env.get(ORDERS.env_var, "orderflow-orders"),
        inventory_table=env.get(INVENTORY.env_var, "orderflow-inventory"),
        ledger_table=env.get(LEDGER.env_var, "orderflow-ledger"),
        settings_table=env.get(SETTINGS.env_var, "orderflow-settings"),
        state_machine_arn=env.get("ORDERFLOW_STATE_MACHINE_ARN"),
    )
