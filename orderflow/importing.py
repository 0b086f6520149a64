"""Taking in orders that a sales channel sent, already in our shape: each stored once, each started.

The channel clients (Shopify, WooCommerce, Amazon) normalize their payloads into :class:`NewOrder`
and hand batches to :func:`import_batch`; one bad order never blocks the rest of its batch.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, ValidationError

from orderflow.models import Identifier, NewOrder
from orderflow.ports import Ports
from orderflow.service import create_order


class ImportBatch(BaseModel):
    channel: Identifier
    orders: list[dict[str, Any]] = Field(max_length=1000)


class ImportReport(BaseModel):
    channel: str
    new: list[str] = []
    existing: list[str] = []
    failed: list[dict[str, Any]] = []


def import_batch(batch: ImportBatch, ports: Ports) -> ImportReport:
    report = ImportReport(channel=batch.channel)
    for position, raw in enumerate(batch.orders):
        try:
            new = NewOrder.model_validate({**raw, "channel": batch.channel})
            if new.external_id is None:
                raise ValueError("external_id is required for an imported order")
            order, created = create_order(new, ports, check_skus=False)
        except (ValidationError, ValueError) as err:
            report.failed.append({"position": position, "external_id": raw.get("external_id"),
                                  "reason": str(err).splitlines()[0] if str(err) else type(err).__name__})
            continue
        (report.new if created else report.existing).append(order.order_id)
    return report
