"""Routes for stock, purchasing and the allocation policy (included by orderflow.api.app)."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path
from pydantic import Field

from orderflow import service
from orderflow.adapters.stock_shards import MAX_SHARDS
from orderflow.api.common import ports as api_ports
from orderflow.api.openapi import ID_PATTERN
from orderflow.errors import NotFound
from orderflow.models import Count, Identifier, Model, Sku, new_id
from orderflow.purchasing import NewPurchaseOrder, ReceiptIn, ReorderRule
from orderflow.rules.allocation import AllocationPolicy

router = Router()


def _created(body: dict) -> Response:
    import json

    return Response(status_code=201, content_type=content_types.APPLICATION_JSON, body=json.dumps(body, default=str))


class AdjustmentIn(Model):
    delta: Count(ge=-10_000_000, le=10_000_000) = Field(
        description="Units to add (found, returned) or remove (damaged, lost)")
    reason: Annotated[str, Field(min_length=1, max_length=200)]
    adjustment_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")] | None = Field(
        None, description="Give one to make a retried adjustment harmless")


@router.post("/inventory/<sku>/<warehouse_id>/adjustments")
def adjust_stock(sku: Annotated[Sku, Path()], warehouse_id: Annotated[Identifier, Path()], adjustment: AdjustmentIn):
    p = api_ports()
    p.settings.warehouse(warehouse_id)
    if adjustment.delta == 0:
        from orderflow.errors import ValidationFailed

        raise ValidationFailed("delta must not be 0", field="delta")
    if adjustment.delta < 0 and not any(lv.warehouse_id == warehouse_id for lv in p.inventory.levels(sku)):
        raise NotFound(f"no stock of {sku} in {warehouse_id} to take out", sku=sku)
    entry = f"adj#{sku}#{warehouse_id}#{adjustment.adjustment_id or new_id('adj')}"
    applied = p.inventory.change_on_hand(entry, sku, warehouse_id, adjustment.delta, kind="adjust",
                                         reason=adjustment.reason)
    released = service.release_waiting_orders(p) if adjustment.delta > 0 else []
    level = next(lv for lv in p.inventory.levels(sku) if lv.warehouse_id == warehouse_id)
    return {"level": level.model_dump(mode="json"), "applied": applied, "released_orders": released}


class ShardsIn(Model):
    shards: Count(ge=1, le=MAX_SHARDS) = Field(
        description="Items the level is split over (each takes ~1,000 DynamoDB writes a second); only grows")


@router.put("/inventory/<sku>/<warehouse_id>/shards")
def shard_stock(sku: Annotated[Sku, Path()], warehouse_id: Annotated[Identifier, Path()], body: ShardsIn) -> dict:
    """A hot SKU (a flash sale): split its level in this warehouse over ``shards`` items, so reservations
    spread over them; reads still answer one level (the sums). The same count again evens the shards out."""
    p = api_ports()
    p.settings.warehouse(warehouse_id)  # 404 for a warehouse that does not exist
    return p.inventory.set_shards(sku, warehouse_id, body.shards)


# -- the allocation policy -----------------------------------------------------------------------

@router.get("/settings/allocation")
def get_policy() -> dict:
    return api_ports().settings.allocation_policy().model_dump(mode="json")


@router.put("/settings/allocation")
def put_policy(policy: AllocationPolicy) -> dict:
    p = api_ports()
    known = {w.warehouse_id for w in p.settings.warehouses()}
    for i, pin in enumerate(policy.pins):
        missing = [w for w in pin.warehouse_ids if w not in known]
        if missing:
            raise NotFound(f"pins.{i}: warehouse(s) {', '.join(missing)} not found", field=f"pins.{i}.warehouse_ids")
    return p.settings.put_allocation_policy(policy).model_dump(mode="json")


# -- reorder rules and purchase orders -----------------------------------------------------------

class ReorderRuleIn(Model):
    supplier: Identifier
    warehouse_id: Identifier
    min_quantity: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    multiple: Annotated[int, Field(ge=1, le=100_000)] = 1


@router.put("/reorder-rules/<sku>")
def put_rule(sku: Annotated[Sku, Path()], rule: ReorderRuleIn) -> dict:
    saved = api_ports().purchasing.put_rule(ReorderRule(sku=sku, **rule.model_dump()))
    return saved.model_dump(mode="json")


@router.get("/reorder-rules")
def list_rules() -> dict:
    return {"reorder_rules": [r.model_dump(mode="json") for r in api_ports().purchasing.rules()]}


@router.post("/purchase-orders")
def create_po(po: NewPurchaseOrder):
    return _created(api_ports().purchasing.create(po).model_dump(mode="json"))


@router.get("/purchase-orders")
def list_pos() -> dict:
    return {"purchase_orders": [po.model_dump(mode="json") for po in api_ports().purchasing.list()]}


@router.get("/purchase-orders/<po_id>")
def get_po(po_id: Annotated[str, Path(max_length=80, pattern=ID_PATTERN)]) -> dict:
    return api_ports().purchasing.get(po_id).model_dump(mode="json")


@router.post("/purchase-orders/<po_id>/submit")
def submit_po(po_id: Annotated[str, Path(max_length=80, pattern=ID_PATTERN)]) -> dict:
    return api_ports().purchasing.submit(po_id).model_dump(mode="json")


@router.post("/purchase-orders/<po_id>/receive")
def receive_po(po_id: Annotated[str, Path(max_length=80, pattern=ID_PATTERN)], receipt: ReceiptIn) -> dict:
    p = api_ports()
    po, new = p.purchasing.receive(po_id, receipt)
    released = service.release_waiting_orders(p)
    return {"purchase_order": po.model_dump(mode="json"), "new_receipt": new, "released_orders": released}
