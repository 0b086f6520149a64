"""The SQS queues, defined once (CDK and the local stack both build them from :data:`QUEUES`).

Every queue has a dead-letter queue: a message that fails ``max_receives`` times moves there.
"""

from __future__ import annotations

from dataclasses import dataclass

from orderflow import config


@dataclass(frozen=True)
class Queue:
    key: str
    visibility_timeout: int = 120
    max_receives: int = 5
    #: The Lambda (functions/<consumer>/) that consumes it.
    consumer: str = ""
    #: FIFO: messages of one group (e.g. one SKU) are handled one at a time, in order.
    fifo: bool = False
    #: Every message waits this long before it can be received (coalescing window).
    delay_seconds: int = 0

    @property
    def env_var(self) -> str:
        return config.queue_variable(self.key)

    @property
    def construct_id(self) -> str:
        """Its construct id in CDK (``Queues/<id>``, its DLQ ``Queues/<id>Dlq``); the local stack finds the
        deployed queues by it."""
        return "".join(part.capitalize() for part in self.key.split("-"))

    def dlq_key(self) -> str:
        return f"{self.key}-dlq"

    def queue_name(self, prefix: str) -> str:
        return f"{prefix}-{self.key}" + (".fifo" if self.fifo else "")

    def dlq_name(self, prefix: str) -> str:
        return f"{prefix}-{self.dlq_key()}" + (".fifo" if self.fifo else "")


SUPPLIER_ORDERS = Queue(key="supplier-orders", consumer="forward_supplier")
FBA_ORDERS = Queue(key="fba-orders", consumer="forward_fba")
#: Stock auto-sync: one message per SKU per coalescing window, grouped by SKU (see
#: orderflow.channels.stock_sync).
STOCK_SYNC = Queue(key="stock-sync", consumer="sync_stock", fifo=True, delay_seconds=5, visibility_timeout=180,
                   max_receives=8)

#: Tracking told to the sales channel an order came from, one message per shipped shipment (see
#: orderflow.channels.shipment_updates); a channel that keeps failing moves the message to the DLQ.
CHANNEL_UPDATES = Queue(key="channel-updates", consumer="tell_channel", visibility_timeout=90, max_receives=6)

QUEUES: tuple[Queue, ...] = (SUPPLIER_ORDERS, FBA_ORDERS, STOCK_SYNC, CHANNEL_UPDATES)
