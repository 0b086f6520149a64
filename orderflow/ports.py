"""The ports the workflow and the API use, bundled so a handler builds them once per container.

Tests pass their own bundle; handlers call :func:`default_ports` (cached, built on first use).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from orderflow.adapters.dynamodb import InventoryRepository, OrderRepository, SettingsRepository
from orderflow.adapters.stepfunctions import WorkflowGateway


@dataclass
class Ports:
    orders: OrderRepository
    inventory: InventoryRepository
    settings: SettingsRepository
    workflow: WorkflowGateway


@cache
def default_ports() -> Ports:
    return Ports(orders=OrderRepository(), inventory=InventoryRepository(), settings=SettingsRepository(),
                 workflow=WorkflowGateway())
