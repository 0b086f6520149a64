"""The ports the workflow and the API use, bundled so a handler builds them once per container.

Tests pass their own bundle; handlers call :func:`default_ports` (cached, built on first use).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

from orderflow.adapters.dynamodb import InventoryRepository, OrderRepository, SettingsRepository
from orderflow.adapters.stepfunctions import WorkflowGateway
from orderflow.purchasing import Purchasing


@dataclass
class Ports:
    orders: OrderRepository
    inventory: InventoryRepository
    settings: SettingsRepository
    workflow: WorkflowGateway
    purchasing: Purchasing


@cache
def default_ports() -> Ports:
    settings, inventory = SettingsRepository(), InventoryRepository()
    return Ports(orders=OrderRepository(), inventory=inventory, settings=settings, workflow=WorkflowGateway(),
                 purchasing=Purchasing(settings, inventory))
