"""Shared by the forwarders (supplier SFTP, Amazon FBA): the message the workflow sends them, and
what happens when a fulfiller has accepted a shipment.

The state machine sends ``ForwardMessage`` to the route's queue with ``.waitForTaskToken``; the
forwarder hands the shipment to the fulfiller, then calls :func:`orderflow.orders.accept_forwarded`, which keeps the
task token on the shipment (the tracking poll resumes the execution with it) and moves the order to
``in_fulfillment``. Tracking that comes back goes through :func:`orderflow.service.add_tracking`.
"""

from __future__ import annotations

from pydantic import BaseModel


class ForwardMessage(BaseModel):
    order_id: str
    shipment_id: str
    warehouse_id: str
    method: str
    task_token: str
    execution_id: str | None = None


