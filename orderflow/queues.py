"""The SQS queues, defined once (CDK and the local stack both build them from :data:`QUEUES`).

Every queue has a dead-letter queue: a message that fails ``max_receives`` times moves there.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Queue:
    key: str
    visibility_timeout: int = 120
    max_receives: int = 5
    #: The Lambda (functions/<consumer>/) that consumes it.
    consumer: str = ""

    @property
    def env_var(self) -> str:
        return f"ORDERFLOW_{self.key.upper().replace('-', '_')}_QUEUE_URL"

    def dlq_key(self) -> str:
        return f"{self.key}-dlq"


SUPPLIER_ORDERS = Queue(key="supplier-orders", consumer="forward_supplier")
FBA_ORDERS = Queue(key="fba-orders", consumer="forward_fba")

QUEUES: tuple[Queue, ...] = (SUPPLIER_ORDERS, FBA_ORDERS)
