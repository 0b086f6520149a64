"""Buying a shipment's label, in plain Python over the ports (``POST /orders/{id}/labels``).

1. pick the shipment (``shipment_id``, else the one open self-ship shipment); one that already has a
   label answers with it (a retried request never buys twice);
2. resolve the carrier account, its key and the ship-from address, so a configuration problem is a
   422 before anything is claimed or bought;
3. **claim** the shipment in DynamoDB (``label.status = purchasing``, written under the order's
   optimistic lock): of two concurrent requests one wins, the other gets 409 ``label_in_progress``;
4. buy through the provider; the carrier's shipment id is written to the claim before paying, so an
   attempt that dies half-way is finished (not bought again) by the next one;
5. store the file (S3 / local folder), record the label on the shipment, then
   :func:`orderflow.service.add_tracking`: the waiting workflow resumes and completes the order.

A failed purchase releases the claim (``status = failed``, with the carrier's message) so the seller
can retry; a claim older than :data:`LEASE_SECONDS` (its request died) may be taken over.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, StringConstraints

from orderflow import service
from orderflow.carriers.base import LabelFormat, LabelInProgress, LabelRequest, Parcel, ServiceName
from orderflow.errors import Conflict, NotFound, OrderflowError, ValidationFailed
from orderflow.models import (
    LABEL_LEASE_SECONDS,
    FulfillmentMethod,
    Identifier,
    Model,
    Order,
    Shipment,
    ShipmentLabel,
    ShipmentStatus,
    new_id,
    utcnow,
)
from orderflow.orders import SHIPPABLE_STATUSES

log = logging.getLogger(__name__)

LEASE_SECONDS = LABEL_LEASE_SECONDS

IdempotencyKey = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128,
                                                  pattern=r"^[\x21-\x7e]+$")]


class LabelIn(Model):
    """``POST /orders/{id}/labels``."""

    shipment_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)] | None = (
        Field(None, description="Needed only when the order has several open shipments"))
    carrier_id: Identifier | None = Field(None, description="Default: the default (or only) carrier account")
    service: ServiceName | None = Field(None, description='e.g. "Priority" or "USPS:Priority"; default: the '
                                                          "account's default service, else the cheapest rate")
    parcel: Parcel
    format: LabelFormat = LabelFormat.PDF


def download_path(order_id: str, shipment_id: str) -> str:
    return f"/orders/{order_id}/labels/{shipment_id}"


@dataclass
class LabelResult:
    order: Order
    shipment: Shipment
    #: False when the shipment already had its label (a retried request).
    created: bool

    def body(self) -> dict[str, Any]:
        out = self.shipment.model_dump(mode="json", exclude={"label": {"claim_id", "claimed_at"}})
        out.update(order_id=self.order.order_id, order_status=self.order.status.value)
        return out


def buy_label(order_id: str, label_in: LabelIn, ports: Any, *, idempotency_key: str | None = None,
              clock: Callable[[], float] = time.time, lease_seconds: int = LEASE_SECONDS) -> LabelResult:
    hub = ports.carriers
    order = ports.orders.get(order_id)
    shipment = _pick(order, label_in.shipment_id, idempotency_key)
    if shipment.label and shipment.label.status == "purchased":
        return _finished(order_id, shipment.shipment_id, ports)
    _check_shippable(order, shipment)

    account = hub.accounts.choose(label_in.carrier_id)
    warehouse = ports.settings.warehouse(shipment.warehouse_id)
    from_address = account.from_address or warehouse.address
    if from_address is None:
        raise ValidationFailed(f"no ship-from address: warehouse {warehouse.warehouse_id} has no address and "
                               f"carrier account {account.carrier_id} no from_address", field="from_address",
                               warehouse_id=warehouse.warehouse_id, carrier_id=account.carrier_id)
    hub.store  # noqa: B018 - a label store that is not configured fails here, before anything is bought
    provider = hub.provider(account)
    try:
        return _claim_and_buy(order, shipment.shipment_id, label_in, account, from_address, provider, ports,
                              idempotency_key=idempotency_key, clock=clock, lease_seconds=lease_seconds)
    finally:
        close = getattr(provider, "close", None)
        if close:
            close()


def _claim_and_buy(order: Order, sid: str, label_in: LabelIn, account: Any, from_address: Any, provider: Any,
                   ports: Any, *, idempotency_key: str | None, clock: Callable[[], float],
                   lease_seconds: int) -> LabelResult:
    order_id = order.order_id
    claim_id = new_id("lbl")
    resume: dict[str, str | None] = {}

    def claim(o: Order) -> bool:
        resume.clear()
        s = o.shipment(sid)
        if s.label and s.label.status == "purchased":
            return False
        _check_shippable(o, s)
        now = int(clock())
        held = s.label
        if held and held.status == "purchasing" and now - held.claimed_at < lease_seconds:
            raise LabelInProgress(f"a label for shipment {sid} is being bought right now; retry in a few seconds "
                                  "to get it", shipment_id=sid)
        earlier = held.provider_shipment_id if held and held.carrier_id == account.carrier_id else None
        resume["provider_shipment_id"] = earlier
        s.label = ShipmentLabel(status="purchasing", carrier_id=account.carrier_id, format=label_in.format.value,
                                claim_id=claim_id, claimed_at=now, idempotency_key=idempotency_key,
                                provider_shipment_id=earlier)
        return True

    claimed = ports.orders.update(order_id, claim).shipment(sid)
    if not claimed.label or claimed.label.claim_id != claim_id:
        return _finished(order_id, sid, ports)  # bought by another request meanwhile

    def remember(provider_shipment_id: str) -> None:
        def note(o: Order) -> bool:
            s = o.shipment(sid)
            if not s.label or s.label.claim_id != claim_id:
                return False
            s.label.provider_shipment_id = provider_shipment_id
            return True

        ports.orders.update(order_id, note)

    request = LabelRequest(reference=sid, from_address=from_address, to_address=order.shipping_address,
                           parcel=label_in.parcel, service=label_in.service or account.default_service,
                           format=label_in.format, resume_shipment_id=resume.get("provider_shipment_id"))
    try:
        purchased = provider.buy_label(request, on_created=remember)
        key = ports.carriers.store.put(order_id, sid, label_in.format, purchased.label)
    except BaseException as err:
        _release(order_id, sid, claim_id, err, ports)
        raise

    # What the order keeps must validate, whatever the carrier sent: the label is paid for by now.
    tracking_number = re.sub(r"[^A-Za-z0-9\-]", "", purchased.tracking_number)[:64]
    cost: Decimal | None = purchased.cost
    if not cost.is_finite() or cost < 0:
        cost = None
    elif cost.as_tuple().exponent < -4:  # type: ignore[operator]
        cost = cost.quantize(Decimal("0.0001"))

    def record(o: Order) -> bool:
        s = o.shipment(sid)
        if s.label and s.label.status == "purchased":
            # Only possible if this request outlived its lease and another bought a label too.
            log.error("two labels were bought for one shipment", extra={"order_id": order_id, "shipment_id": sid})
            o.record("label_bought_twice", f"{sid}: {purchased.carrier} {tracking_number} was bought too; void it")
            return True
        s.label = ShipmentLabel(
            status="purchased", carrier_id=account.carrier_id, format=label_in.format.value, claim_id=claim_id,
            claimed_at=s.label.claimed_at if s.label else int(clock()), idempotency_key=idempotency_key,
            carrier=purchased.carrier, service=purchased.service, tracking_number=tracking_number,
            cost=cost, currency=purchased.currency[:3].upper(),
            provider_shipment_id=purchased.provider_shipment_id, storage_key=key,
            download_path=download_path(order_id, sid), purchased_at=utcnow())
        o.record("label_bought", f"{sid}: {purchased.carrier} {purchased.service} {tracking_number} "
                                 f"({cost} {purchased.currency}) via {account.carrier_id}")
        return True

    ports.orders.update(order_id, record)
    return _finished(order_id, sid, ports, created=True)


def _finished(order_id: str, sid: str, ports: Any, *, created: bool = False) -> LabelResult:
    """The shipment has its label: make sure its tracking is recorded (this heals a request that died
    between recording the label and the tracking), then answer with it."""
    order = ports.orders.get(order_id)
    shipment = order.shipment(sid)
    label = shipment.label
    assert label is not None and label.status == "purchased"
    if shipment.status != ShipmentStatus.SHIPPED:
        if order.status not in SHIPPABLE_STATUSES or shipment.status == ShipmentStatus.CANCELLED:
            raise Conflict(f"a label was bought for shipment {sid} ({label.carrier} {label.tracking_number}) but "
                           f"order {order_id} is {order.status.value} now: void the label with the carrier",
                           status=order.status.value, tracking_number=label.tracking_number)
        tracking = service.TrackingIn(carrier=(label.carrier or label.carrier_id)[:50],
                                      tracking_number=label.tracking_number or "", shipment_id=sid)
        try:
            order = service.add_tracking(order_id, tracking, ports)
        except Conflict:
            order = ports.orders.get(order_id)  # another request recorded it first
            if order.shipment(sid).status != ShipmentStatus.SHIPPED:
                raise
        shipment = order.shipment(sid)
    return LabelResult(order=order, shipment=shipment, created=created)


def _release(order_id: str, sid: str, claim_id: str, err: BaseException, ports: Any) -> None:
    """The purchase failed: free the claim (keeping the carrier's shipment id for the next attempt)."""
    reason = err.message if isinstance(err, OrderflowError) else f"{type(err).__name__}"

    def release(o: Order) -> bool:
        s = o.shipment(sid)
        if not s.label or s.label.claim_id != claim_id or s.label.status != "purchasing":
            return False
        s.label.status = "failed"
        s.label.error = reason[:500]
        return True

    try:
        ports.orders.update(order_id, release)
    except Exception:  # noqa: BLE001 - the purchase error is the one to report; the lease frees the claim
        log.warning("could not release a label claim", extra={"order_id": order_id, "shipment_id": sid})


def _pick(order: Order, shipment_id: str | None, idempotency_key: str | None) -> Shipment:
    if shipment_id:
        return order.shipment(shipment_id)
    if idempotency_key:
        for s in order.shipments:
            if s.label and s.label.idempotency_key == idempotency_key:
                return s
    own = [s for s in order.shipments if s.method == FulfillmentMethod.SELF_SHIP
           and s.status != ShipmentStatus.CANCELLED]
    open_ = [s for s in own if s.status != ShipmentStatus.SHIPPED]
    if len(open_) == 1:
        return open_[0]
    if len(open_) > 1:
        raise ValidationFailed(f"order {order.order_id} ships in {len(open_)} parcels from its own warehouses; "
                               "say which with shipment_id", field="shipment_id",
                               choices=[s.shipment_id for s in open_])
    if len(own) == 1:
        return own[0]  # already shipped: answered with its label, or 409 below
    if order.status not in SHIPPABLE_STATUSES:
        raise Conflict(f"order {order.order_id} is {order.status.value}; labels can be bought once it is paid",
                       status=order.status.value)
    raise Conflict(f"order {order.order_id} has no shipment waiting for a label", status=order.status.value)


def _check_shippable(order: Order, shipment: Shipment) -> None:
    if order.status not in SHIPPABLE_STATUSES and shipment.status != ShipmentStatus.SHIPPED:
        raise Conflict(f"order {order.order_id} is {order.status.value}; labels can be bought once it is paid",
                       status=order.status.value)
    if shipment.method != FulfillmentMethod.SELF_SHIP:
        raise Conflict(f"shipment {shipment.shipment_id} ships by {shipment.method.value}; its fulfiller makes the "
                       "label", field="shipment_id")
    if shipment.status == ShipmentStatus.CANCELLED:
        raise Conflict(f"shipment {shipment.shipment_id} is cancelled", field="shipment_id")
    if shipment.status == ShipmentStatus.SHIPPED:
        raise Conflict(f"shipment {shipment.shipment_id} already shipped with tracking "
                       f"{shipment.carrier or ''} {shipment.tracking_number or ''}".rstrip(), field="shipment_id")


def label_file(order_id: str, shipment_id: str, ports: Any) -> tuple[bytes, LabelFormat]:
    """The stored label file of a shipment (``GET /orders/{id}/labels/{shipment_id}``)."""
    shipment = ports.orders.get(order_id).shipment(shipment_id)
    label = shipment.label
    if label is None or label.status != "purchased" or not label.storage_key:
        raise NotFound(f"shipment {shipment_id} has no label; buy one with POST /orders/{order_id}/labels",
                       shipment_id=shipment_id)
    return ports.carriers.store.get(label.storage_key), LabelFormat(label.format)
