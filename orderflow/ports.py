"""The ports the workflow and the API use, bundled so a handler builds them once per container.

Tests pass their own bundle; handlers call :func:`default_ports` (cached, built on first use).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from orderflow.adapters.channel_access import Channels
from orderflow.adapters.dynamodb import InventoryRepository, OrderRepository, SettingsRepository
from orderflow.adapters.stepfunctions import WorkflowGateway
from orderflow.carriers.hub import Carriers
from orderflow.purchasing import Purchasing
from orderflow.settings import per_function


@dataclass
class Ports:
    orders: OrderRepository
    inventory: InventoryRepository
    settings: SettingsRepository
    workflow: WorkflowGateway
    purchasing: Purchasing
    #: Carrier accounts, label providers and label storage; nothing is connected until a label is bought.
    carriers: Carriers = field(default=None, kw_only=True)  # type: ignore[assignment]
    #: Sales channels: configurations and clients (order import, stock auto-sync, tracking push).
    channels: Channels = field(default=None, kw_only=True)  # type: ignore[assignment]

    def __post_init__(self) -> None:
        if self.carriers is None:
            self.carriers = Carriers(self.settings)
        if self.channels is None:
            self.channels = Channels()
        if not any(getattr(listener, "__func__", None) is Ports._stock_changed for listener in self.inventory.listeners):
            self.inventory.listeners.append(self._stock_changed)

    def _stock_changed(self, skus: list[str]) -> None:
        """Every stock change asks for a channel sync of its SKUs; a failure here never fails the
        change itself (the scheduled sweep catches up)."""
        from orderflow.stock_sync import request_sync

        try:
            request_sync(skus, self)
        except Exception as exc:  # noqa: BLE001
            logging.getLogger(__name__).warning("could not request a stock sync for %s: %s", skus, exc)


@per_function
def default_ports() -> Ports:
    settings, inventory = SettingsRepository(), InventoryRepository()
    return Ports(orders=OrderRepository(), inventory=inventory, settings=settings, workflow=WorkflowGateway(),
                 purchasing=Purchasing(settings, inventory))
