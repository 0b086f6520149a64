"""Cancelling an order whose shipment Amazon FBA has: ``cancelFulfillmentOrder`` first, then the order.

:func:`recall_fba_shipments` is the hook :func:`orderflow.service.cancel_order` calls (see docs/fba.md,
"Cancelling") before it cancels an order with a shipment at a fulfiller (``forwarded``): Amazon is asked to
cancel every FBA shipment that has not shipped. It answers which shipments Amazon will not ship, or
refuses the cancel with a 409 naming the shipment when Amazon is already picking or has shipped it (Amazon
cancels only ``Received`` and ``Planning`` fulfillment orders). A cancel Amazon agreed to is noted on the open fulfillment order
first, so the tracking poll knows the ``Cancelled`` it sees next was ours.
"""

from __future__ import annotations

import logging
from contextlib import closing

from orderflow.channels.base import ChannelError
from orderflow.errors import Conflict, NotFound, TransientError, ValidationFailed
from orderflow.fba.accounts import Fba, OpenFulfillmentOrder, default_fba
from orderflow.fba.client import McfRejected, is_transient
from orderflow.fba.forwarding import recall
from orderflow.models import FulfillmentMethod, Order, ShipmentStatus

log = logging.getLogger(__name__)


def recall_fba_shipments(order: Order, ports, fba: Fba | None = None) -> set[str]:  # noqa: ANN001
    """Ask Amazon to cancel the order's FBA shipments that have not shipped. Returns the ids of the FBA
    shipments Amazon will not ship (cancelled now or before, given up on, or never given). Raises :class:`Conflict`
    (409) when Amazon will not cancel one, :class:`TransientError` (503) when it cannot be asked now."""
    fba = fba or default_fba(ports)
    recalled: set[str] = set()
    for shipment in order.shipments:
        if shipment.method != FulfillmentMethod.FBA or shipment.status in (ShipmentStatus.SHIPPED,
                                                                           ShipmentStatus.CANCELLED):
            continue
        record = fba.store.open_order(shipment.shipment_id)
        if record is None and not shipment.fulfiller_ref:
            recalled.add(shipment.shipment_id)  # it never reached Amazon (the forwarder checks the status)
            continue
        record = record or OpenFulfillmentOrder(shipment_id=shipment.shipment_id, order_id=order.order_id,
                                                warehouse_id=shipment.warehouse_id,
                                                seller_fulfillment_order_id=shipment.fulfiller_ref or "")
        try:
            with closing(fba.client(fba.account(shipment.warehouse_id))) as client:
                recall(client, record, fba)
        except McfRejected as err:
            raise Conflict(f"shipment {shipment.shipment_id} cannot be cancelled: {err.message}",
                           shipment_id=shipment.shipment_id, fulfiller="fba") from err
        except (NotFound, ValidationFailed) as err:
            raise Conflict(f"shipment {shipment.shipment_id} is at Amazon FBA but Amazon cannot be asked to "
                           f"cancel it: {err.message}", shipment_id=shipment.shipment_id) from err
        except ChannelError as err:
            if not is_transient(err):
                raise Conflict(f"shipment {shipment.shipment_id} is at Amazon FBA but Amazon refused the cancel: "
                               f"{err.message}", shipment_id=shipment.shipment_id) from err
            raise TransientError(f"Amazon FBA could not be asked to cancel shipment {shipment.shipment_id} now; "
                                 "try the cancel again", shipment_id=shipment.shipment_id) from err
        log.info("Amazon FBA cancelled %s for order %s", record.seller_fulfillment_order_id, order.order_id)
        recalled.add(shipment.shipment_id)
    return recalled


class FbaRoute:
    """Amazon FBA as a fulfilment route (orderflow.ports.FulfilmentRoute): its shipments are recalled
    from Amazon before the order is cancelled; nothing to tell after."""

    def recall(self, order: Order, ports) -> None:  # noqa: ANN001
        if any(s.method == FulfillmentMethod.FBA and s.fulfiller_ref for s in order.shipments):
            recall_fba_shipments(order, ports)

    def cancelled(self, order: Order, ports) -> bool:  # noqa: ANN001
        return False
