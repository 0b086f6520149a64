"""The FBA tracking poll: ask Amazon about every open fulfillment order and resume the shipments that left.

For each open fulfillment order (:class:`orderflow.fba.accounts.OpenFulfillmentOrder`, one query):

- Amazon shipped it (``Complete``/``CompletePartialled``, or every shipment ``SHIPPED``) and posted a
  tracking number: :func:`orderflow.service.add_tracking` records the first package's carrier and number on
  the shipment and resumes its execution (``SendTaskSuccess``), which completes the order. More packages,
  or quantities Amazon did not ship, are added to the order's events. ``add_tracking`` refuses a shipment
  that has tracking already, so a second poll, or two polls at once, complete it once;
- Amazon gave up on it (``Unfulfillable``, ``Invalid``, or ``Cancelled`` without us asking): the order
  needs attention with Amazon's reason (:func:`orderflow.orders.fulfiller_rejected`);
- the order was cancelled here: Amazon is asked to cancel it, if nobody asked yet;
- anything else (``Received``, ``Planning``, ``Processing``, not found yet): it is left for the next poll.

An open order is forgotten once its shipment has shipped, needs attention or was cancelled. Amazon being
unreachable or throttling fails only that order's check; the next poll tries again.
"""

from __future__ import annotations

import logging
import re
from contextlib import ExitStack, closing
from datetime import UTC, datetime

from pydantic import BaseModel

from orderflow import orders, service
from orderflow.errors import Conflict, NotFound, OrderflowError, ValidationFailed
from orderflow.fba import mcf
from orderflow.fba.accounts import Fba, OpenFulfillmentOrder, default_fba
from orderflow.fba.client import McfClient, McfRejected
from orderflow.fba.forwarding import recall
from orderflow.models import Order, OrderStatus, ShipmentStatus, utcnow
from orderflow.orders import SHIPPABLE_STATUSES

log = logging.getLogger(__name__)

#: A cancellation we asked for is given this long to reach the order before the poll calls it stuck.
CANCEL_GRACE_SECONDS = 600
#: At most this many per-order lines in a poll report.
REPORT_ITEMS = 200
TRACKING = re.compile(r"^[A-Za-z0-9\-]{3,64}$")

WHY = {
    mcf.UNFULFILLABLE: "as unfulfillable (Amazon has no sellable units for it)",
    mcf.INVALID: "as invalid (the address or Amazon's inventory did not validate)",
    mcf.CANCELLED: "as cancelled by Amazon (orderflow did not ask for it)",
    mcf.COMPLETE_PARTIALLED: "closed without shipping anything",
}


class PollItem(BaseModel, defer_build=True):
    shipment_id: str
    order_id: str
    seller_fulfillment_order_id: str
    amazon_status: str | None = None
    #: shipped, waiting, needs_attention, closed, failed
    outcome: str
    detail: str | None = None


class PollReport(BaseModel, defer_build=True):
    warehouse_id: str | None = None
    checked: int = 0
    shipped: int = 0
    waiting: int = 0
    needs_attention: int = 0
    closed: int = 0
    failed: int = 0
    #: Why the poll stopped before checking everything (``deadline``); the next one goes on.
    stopped: str | None = None
    items: list[PollItem] = []

    def add(self, item: PollItem) -> None:
        self.checked += 1
        setattr(self, item.outcome, getattr(self, item.outcome) + 1)
        if len(self.items) < REPORT_ITEMS:
            self.items.append(item)


def record_once(ports, order_id: str, event_type: str, detail: str) -> None:  # noqa: ANN001
    def note(order: Order) -> bool:
        if any(e.type == event_type and e.detail == detail for e in order.events):
            return False
        order.record(event_type, detail)
        return True

    ports.orders.update(order_id, note)


def usable_packages(details: mcf.FulfillmentOrderDetails) -> list[tuple[str, str]]:
    """(carrier, tracking number) of every shipped package with a number our tracking accepts."""
    out = []
    for package in details.packages():
        for number in (package.trackingNumber, package.amazonFulfillmentTrackingNumber):
            number = re.sub(r"\s+", "", number or "")
            if TRACKING.match(number):
                out.append(((package.carrierCode or "").strip()[:50] or "AMAZON", number))
                break
    return out


def _age_seconds(timestamp: str) -> float:
    try:
        then = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return float("inf")
    return (datetime.now(UTC) - then).total_seconds()


class _Poll:
    def __init__(self, ports, fba: Fba, deadline, stack: ExitStack) -> None:  # noqa: ANN001
        self.ports, self.fba, self.deadline, self.stack = ports, fba, deadline, stack
        self.clients: dict[str, McfClient] = {}

    def client(self, warehouse_id: str) -> McfClient:
        if warehouse_id not in self.clients:
            account = self.fba.account(warehouse_id)
            self.clients[warehouse_id] = self.stack.enter_context(
                closing(self.fba.client(account, deadline=self.deadline)))
        return self.clients[warehouse_id]

    def close(self, record: OpenFulfillmentOrder) -> None:
        self.fba.store.close(record.shipment_id, record.seller_fulfillment_order_id)

    def check(self, record: OpenFulfillmentOrder) -> tuple[str, str | None, str | None]:
        """(outcome, Amazon's status, detail) for one open fulfillment order."""
        try:
            order = self.ports.orders.get(record.order_id)
            shipment = order.shipment(record.shipment_id)
        except NotFound:
            self.close(record)
            return "closed", None, "the order or shipment no longer exists"
        if shipment.status == ShipmentStatus.SHIPPED:
            self.close(record)
            return "closed", None, "the shipment has tracking already"
        client = self.client(record.warehouse_id)
        if order.status == OrderStatus.CANCELLED:
            return self.cancelled(order, record, client)
        details = client.get(record.seller_fulfillment_order_id)
        if details is None:
            return "waiting", None, "Amazon does not show it yet"
        status = details.status
        if status != record.amazon_status:
            record.amazon_status, record.checked_at = status, utcnow()
            self.fba.store.put_open(record)
        if status in mcf.DEAD or (status == mcf.COMPLETE_PARTIALLED and details.nothing_shipped()):
            return self.given_up(order, record, details)
        if status in mcf.DONE or details.all_shipped():
            return self.shipped(order, record, details)
        return "waiting", status, None

    def given_up(self, order: Order, record: OpenFulfillmentOrder, details: mcf.FulfillmentOrderDetails
                 ) -> tuple[str, str | None, str | None]:
        status = details.status
        if record.cancel_requested_at:
            if _age_seconds(record.cancel_requested_at) < CANCEL_GRACE_SECONDS:
                return "waiting", status, "cancelled at our request; the order's cancel follows"
            reason = (f"Amazon FBA cancelled fulfillment order {record.seller_fulfillment_order_id} at orderflow's "
                      "request, but the order was not cancelled here: cancel it, or redrive it to ship it again")
        else:
            reason = f"Amazon FBA reported fulfillment order {record.seller_fulfillment_order_id} {WHY[status]}"
            if details.shortfall():
                reason += f": {details.shortfall()}"
        orders.fulfiller_rejected(order.order_id, record.shipment_id, reason, self.ports)
        self.close(record)
        return "needs_attention", status, reason

    def shipped(self, order: Order, record: OpenFulfillmentOrder, details: mcf.FulfillmentOrderDetails
                ) -> tuple[str, str | None, str | None]:
        status = details.status
        packages = usable_packages(details)
        if not packages:
            return "waiting", status, "shipped; Amazon has not posted a tracking number yet"
        carrier, number = packages[0]
        listing = ", ".join(f"{c} {n}" for c, n in packages)
        if order.status not in SHIPPABLE_STATUSES and order.status != OrderStatus.NEEDS_ATTENTION:
            return "waiting", status, f"shipped ({listing}); the order is {order.status.value} for now"
        outcome = "shipped"
        try:
            service.add_tracking(order.order_id, service.TrackingIn(carrier=carrier, tracking_number=number,
                                                                    shipment_id=record.shipment_id), self.ports)
        except (Conflict, ValidationFailed):
            current = self.ports.orders.get(order.order_id)
            if current.shipment(record.shipment_id).status != ShipmentStatus.SHIPPED:
                record_once(self.ports, order.order_id, "fba_shipped",
                            f"{record.shipment_id}: Amazon shipped it ({listing}) while the order was "
                            f"{current.status.value}; redrive it to record the tracking and complete it")
            outcome = "closed"
        extra = []
        if len(packages) > 1:
            extra.append(f"{len(packages)} packages: {listing}")
        if details.shortfall():
            extra.append(f"not shipped: {details.shortfall()}")
        if extra and outcome == "shipped":
            record_once(self.ports, order.order_id, "fba_shipped",
                        f"{record.shipment_id} ({record.seller_fulfillment_order_id}): " + "; ".join(extra))
        self.close(record)
        return outcome, status, listing

    def cancelled(self, order: Order, record: OpenFulfillmentOrder, client: McfClient
                  ) -> tuple[str, str | None, str | None]:
        if not record.cancel_requested_at:
            try:
                recall(client, record, self.fba)
            except McfRejected as err:
                details = client.get(record.seller_fulfillment_order_id)
                packages = usable_packages(details) if details else []
                if details is not None and details.status in mcf.DONE and packages:
                    listing = ", ".join(f"{c} {n}" for c, n in packages)
                    record_once(self.ports, order.order_id, "fba_shipped",
                                f"{record.shipment_id}: Amazon shipped it ({listing}) although the order was "
                                "cancelled")
                    self.close(record)
                    return "closed", details.status, "shipped although the order was cancelled"
                record_once(self.ports, order.order_id, "fba_cancel_refused", err.message)
                return "waiting", details.status if details else None, err.message
        self.close(record)
        return "closed", mcf.CANCELLED, "the order was cancelled"


def poll(ports, fba: Fba | None = None, *, warehouse_id: str | None = None, deadline=None  # noqa: ANN001
         ) -> PollReport:
    """Check every open fulfillment order (of one warehouse, or all of them) once."""
    fba = fba or default_fba(ports)
    report = PollReport(warehouse_id=warehouse_id)
    with ExitStack() as stack:
        run = _Poll(ports, fba, deadline, stack)
        for record in fba.store.open_orders(warehouse_id):
            if deadline is not None and deadline.left() <= 0:
                report.stopped = "deadline"
                break
            try:
                outcome, status, detail = run.check(record)
            except OrderflowError as err:
                outcome, status, detail = "failed", record.amazon_status, f"{err.code}: {err.message}"
                log.warning("fba poll of %s failed: %s", record.shipment_id, err.code)
            report.add(PollItem(shipment_id=record.shipment_id, order_id=record.order_id,
                                seller_fulfillment_order_id=record.seller_fulfillment_order_id,
                                amazon_status=status, outcome=outcome, detail=detail))
    return report
