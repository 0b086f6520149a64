"""Shared by the forwarders (supplier SFTP, Amazon FBA): the message the workflow sends them, and
what happens when a fulfiller has accepted a shipment.

The workflow's wait (:func:`orderflow.orders.await_fulfilment`) sends a ``ForwardMessage`` to the route's
queue for each dropship, 3PL or FBA shipment, with the task token of the order's one wait (a forwarder ends
that wait when the order was cancelled or the fulfiller rejects the shipment); the forwarder hands the
shipment to the fulfiller, then calls :func:`orderflow.orders.accept_forwarded`, which records where the
fulfiller has it and moves the order to ``in_fulfillment``. Tracking that comes back goes through
:func:`orderflow.service.add_tracking`, which completes the order once its last shipment left.
"""

from __future__ import annotations

from pydantic import BaseModel


class ForwardMessage(BaseModel, defer_build=True):
    order_id: str
    shipment_id: str
    warehouse_id: str
    method: str
    task_token: str
    execution_id: str | None = None


