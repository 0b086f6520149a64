"""Shared by the forwarders (supplier SFTP, Amazon FBA): the message the workflow sends them, and
what happens when a fulfiller has accepted a shipment.

The state machine sends ``ForwardMessage`` to the route's queue with ``.waitForTaskToken``; the
forwarder hands the shipment to the fulfiller, then calls :func:`accept_forwarded`, which keeps the
task token on the shipment (the tracking poll resumes the execution with it) and moves the order to
``in_fulfillment``. Tracking that comes back goes through :func:`orderflow.service.add_tracking`.
"""

from __future__ import annotations

from pydantic import BaseModel

from orderflow.errors import OrderCancelled
from orderflow.models import Order, OrderStatus, ShipmentStatus
from orderflow.ports import Ports


class ForwardMessage(BaseModel):
    order_id: str
    shipment_id: str
    warehouse_id: str
    method: str
    task_token: str
    execution_id: str | None = None


def accept_forwarded(message: ForwardMessage, reference: str, ports: Ports) -> Order:
    """The fulfiller has the shipment (``reference``: its file name or order id). Idempotent."""

    def forwarded(o: Order) -> bool:
        if o.status == OrderStatus.CANCELLED:
            raise OrderCancelled(f"order {o.order_id} was cancelled", order_id=o.order_id)
        shipment = o.shipment(message.shipment_id)
        if shipment.task_token == message.task_token and shipment.fulfiller_ref == reference:
            return False
        shipment.task_token = message.task_token
        shipment.fulfiller_ref = reference
        if shipment.status in (ShipmentStatus.PENDING, ShipmentStatus.AWAITING_TRACKING):
            shipment.status = ShipmentStatus.FORWARDED
        if o.status in (OrderStatus.NEW, OrderStatus.AWAITING_STOCK, OrderStatus.PAID):
            o.status = OrderStatus.IN_FULFILLMENT
        o.record("forwarded", f"{shipment.shipment_id} to {shipment.warehouse_id} ({message.method}): {reference}")
        return True

    order = ports.orders.update(message.order_id, forwarded)
    shipment = order.shipment(message.shipment_id)
    if shipment.status == ShipmentStatus.SHIPPED:  # tracking came back before we recorded the token
        from orderflow.workflow.steps import shipped_output

        ports.workflow.resume(message.task_token, shipped_output(shipment))
    return order
