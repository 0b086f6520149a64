"""The composition root: which adapters the running code gets for each port (orderflow.ports), wired
once per Lambda container (per function on the local stack). Nothing else builds adapters for the
domain; the domain modules never import this one (only handlers, the API, the CLI and the tests do).
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable
from typing import Any

from orderflow.adapters.documents import DocumentStore
from orderflow.adapters.dynamodb import InventoryRepository, OrderRepository, SettingsRepository
from orderflow.adapters.queues import SqsQueues
from orderflow.adapters.stepfunctions import WorkflowGateway
from orderflow.carriers.hub import Carriers
from orderflow.channels.directory import Channels
from orderflow.channels.stock_sync import request_sync
from orderflow.ports import Ports
from orderflow.settings import per_function

log = logging.getLogger(__name__)


def stock_sync_listener(ports: Ports):  # noqa: ANN201
    """Every stock change asks for a channel sync of its SKUs; a failure here never fails the change
    itself (the failed request leaves no marker behind, and the scheduled sweep catches up)."""

    def changed(skus: list[str]) -> None:
        try:
            request_sync(skus, ports)
        except Exception as exc:  # noqa: BLE001
            log.warning("could not request a stock sync for %s: %s", skus, exc)

    return changed


def _channel_adapter(name: str) -> Callable[[], Any]:
    """Builds ``orderflow.adapters.channel_store.<name>``, importing it on first use: a function that never
    touches a channel (most workflow steps) does not load the channel configurations at its cold start."""

    def build() -> Any:
        return getattr(importlib.import_module("orderflow.adapters.channel_store"), name)()

    return build


def aws_channels() -> Channels:
    """The channel slice's stores on AWS (built when the slice first asks for them)."""
    return Channels(store=_channel_adapter("ChannelStore"), credentials=_channel_adapter("default_credentials"),
                    stored_orders=_channel_adapter("ChannelOrders"), webhook_events=_channel_adapter("WebhookEvents"),
                    schedules=_channel_adapter("ChannelSchedules"))


class LazyRoute:
    """A fulfilment route (orderflow.ports.FulfilmentRoute) whose module is imported on its first use:
    only a cancel asks the routes, so no function pays for the FBA and supplier code at a cold start."""

    def __init__(self, module: str, name: str) -> None:
        self.module, self.name = module, name
        self._route: Any = None

    def _loaded(self) -> Any:
        if self._route is None:
            self._route = getattr(importlib.import_module(self.module), self.name)()
        return self._route

    def recall(self, order, ports: Ports) -> None:  # noqa: ANN001
        self._loaded().recall(order, ports)

    def cancelled(self, order, ports: Ports) -> bool:  # noqa: ANN001
        return self._loaded().cancelled(order, ports)


class LazyPurchasing:
    """The purchase orders (orderflow.purchasing.Purchasing), imported on first use: only a backorder and the
    API's purchasing routes use them, so no function loads their models at a cold start."""

    def __init__(self, settings, inventory) -> None:  # noqa: ANN001 - repositories from orderflow.ports
        self._args = (settings, inventory)
        self._purchasing: Any = None

    def __getattr__(self, name: str) -> Any:  # draft_for_backorders, put_rule, receive ... as Purchasing has them
        if self._purchasing is None:
            from orderflow.purchasing import Purchasing

            self._purchasing = Purchasing(*self._args)
        return getattr(self._purchasing, name)


#: The routes that hand shipments to someone else, in the order a cancel asks them.
ROUTES = (("orderflow.fba.cancellation", "FbaRoute"), ("orderflow.suppliers.cancellation", "SupplierRoute"))


@per_function
def default_ports() -> Ports:
    settings, inventory = SettingsRepository(), InventoryRepository()
    ports = Ports(orders=OrderRepository(), inventory=inventory, settings=settings, workflow=WorkflowGateway(),
                  purchasing=LazyPurchasing(settings, inventory), carriers=Carriers(settings), channels=aws_channels(),
                  documents=DocumentStore(table=settings.table), queues=SqsQueues(),
                  routes=tuple(LazyRoute(module, name) for module, name in ROUTES))
    inventory.listeners.append(stock_sync_listener(ports))
    return ports
