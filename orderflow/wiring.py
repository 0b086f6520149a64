"""The composition root: which adapters the running code gets for each port (orderflow.ports), wired
once per Lambda container (per function on the local stack). Nothing else builds adapters for the
domain; the domain modules never import this one (only handlers, the API, the CLI and the tests do).
"""

from __future__ import annotations

import logging

from orderflow.adapters.channel_store import (
    ChannelOrders,
    ChannelSchedules,
    ChannelStore,
    WebhookEvents,
    default_credentials,
)
from orderflow.adapters.documents import DocumentStore
from orderflow.adapters.dynamodb import InventoryRepository, OrderRepository, SettingsRepository
from orderflow.adapters.queues import SqsQueues
from orderflow.adapters.stepfunctions import WorkflowGateway
from orderflow.carriers.hub import Carriers
from orderflow.channels.directory import Channels
from orderflow.channels.stock_sync import request_sync
from orderflow.fba.cancellation import FbaRoute
from orderflow.ports import Ports
from orderflow.purchasing import Purchasing
from orderflow.settings import per_function
from orderflow.suppliers.cancellation import SupplierRoute

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


def aws_channels() -> Channels:
    """The channel slice's stores on AWS (built when the slice first asks for them)."""
    return Channels(store=ChannelStore, credentials=default_credentials, stored_orders=ChannelOrders,
                    webhook_events=WebhookEvents, schedules=ChannelSchedules)


@per_function
def default_ports() -> Ports:
    settings, inventory = SettingsRepository(), InventoryRepository()
    ports = Ports(orders=OrderRepository(), inventory=inventory, settings=settings, workflow=WorkflowGateway(),
                  purchasing=Purchasing(settings, inventory), carriers=Carriers(settings), channels=aws_channels(),
                  documents=DocumentStore(table=settings.table), queues=SqsQueues(),
                  routes=(FbaRoute(), SupplierRoute()))
    inventory.listeners.append(stock_sync_listener(ports))
    return ports
