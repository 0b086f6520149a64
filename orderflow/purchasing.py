"""Purchase orders: buying stock from suppliers, drafted automatically for backordered demand.

A reorder rule per SKU says who supplies it, into which warehouse, and in what quantities. When an
order's plan backorders units, they are added to the supplier's open draft purchase order for that
warehouse (once per order line and plan). Receiving a purchase order adds stock through the ledger,
once per receipt, and releases the orders waiting for stock, oldest first.
"""

from __future__ import annotations

import math
from enum import StrEnum
from typing import Annotated

from pydantic import Field

from orderflow.errors import Conflict, NotFound, ValidationFailed
from orderflow.models import Count, Document, Identifier, Model, Order, Sku, new_id, utcnow


class PurchaseOrderStatus(StrEnum):
    DRAFT = "draft"
    ORDERED = "ordered"
    PARTIALLY_RECEIVED = "partially_received"
    RECEIVED = "received"
    CANCELLED = "cancelled"


# ``defer_build=True`` (here and below): pydantic builds a model's validator when it is first used, not at
# import, so a function's cold start pays only for the models it validates (issue 13).
class ReorderRule(Document, defer_build=True):
    sku: Sku
    supplier: Identifier
    warehouse_id: Identifier
    min_quantity: Annotated[int, Field(ge=1, le=1_000_000)] = 1
    multiple: Annotated[int, Field(ge=1, le=100_000)] = Field(1, description="Order in packs of this many")

    def quantity_for(self, demand: int) -> int:
        return max(self.min_quantity, math.ceil(demand / self.multiple) * self.multiple)


class POLineIn(Model, defer_build=True):
    sku: Sku
    quantity: Count(gt=0, le=1_000_000)


class POLine(POLineIn):
    received: int = 0


class Demand(Model, defer_build=True):
    """Backordered units of one order line that this purchase order is meant to cover."""

    order_id: str
    plan_no: int
    line_no: int
    sku: Sku
    quantity: int


class Receipt(Model, defer_build=True):
    receipt_id: str
    at: str
    lines: list[POLineIn]


class NewPurchaseOrder(Model, defer_build=True):
    supplier: Identifier
    warehouse_id: Identifier
    lines: Annotated[list[POLineIn], Field(min_length=1, max_length=500)]
    status: PurchaseOrderStatus = PurchaseOrderStatus.ORDERED


class PurchaseOrder(Document, defer_build=True):
    po_id: str
    supplier: str
    warehouse_id: str
    status: PurchaseOrderStatus
    source: str = "manual"
    lines: list[POLine]
    demand: list[Demand] = []
    receipts: list[Receipt] = []
    created_at: str = Field(default_factory=utcnow)
    updated_at: str = Field(default_factory=utcnow)

    def line(self, sku: str) -> POLine | None:
        return next((line for line in self.lines if line.sku == sku), None)


class ReceiptIn(Model, defer_build=True):
    lines: Annotated[list[POLineIn], Field(min_length=1, max_length=500)]
    receipt_id: Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_\-]+$")] | None = Field(
        None, description="Give one to make a retried receipt harmless; the same id is applied once")


PO = "purchase_order"
RULE = "reorder_rule"
DRAFT_POINTER = "purchase_order_draft"


class Purchasing:
    def __init__(self, settings, inventory) -> None:  # noqa: ANN001 - repositories from orderflow.ports
        self.settings = settings
        self.inventory = inventory

    # -- reorder rules ----------------------------------------------------------------------------

    def put_rule(self, rule: ReorderRule) -> ReorderRule:
        self.settings.warehouse(rule.warehouse_id)
        current = self.settings.get_doc(RULE, rule.sku, ReorderRule)
        if current is not None:
            rule._version = current._version
        self.settings.put_doc(RULE, rule.sku, rule)
        return rule

    def rules(self) -> list[ReorderRule]:
        return self.settings.list_docs(RULE, ReorderRule)

    # -- purchase orders --------------------------------------------------------------------------

    def get(self, po_id: str) -> PurchaseOrder:
        po = self.settings.get_doc(PO, po_id, PurchaseOrder)
        if po is None:
            raise NotFound(f"purchase order {po_id} not found", po_id=po_id)
        return po

    def list(self) -> list[PurchaseOrder]:
        return sorted(self.settings.list_docs(PO, PurchaseOrder), key=lambda p: p.created_at, reverse=True)

    def create(self, new: NewPurchaseOrder) -> PurchaseOrder:
        if new.status not in (PurchaseOrderStatus.DRAFT, PurchaseOrderStatus.ORDERED):
            raise ValidationFailed("a new purchase order is a draft or ordered", field="status")
        self.settings.warehouse(new.warehouse_id)
        merged: dict[str, int] = {}
        for line in new.lines:
            merged[line.sku] = merged.get(line.sku, 0) + line.quantity
        po = PurchaseOrder(po_id=new_id("po"), supplier=new.supplier, warehouse_id=new.warehouse_id,
                           status=new.status, lines=[POLine(sku=s, quantity=q) for s, q in merged.items()])
        self.settings.put_doc(PO, po.po_id, po, new=True)
        return po

    def submit(self, po_id: str) -> PurchaseOrder:
        def change(po: PurchaseOrder) -> bool:
            if po.status == PurchaseOrderStatus.ORDERED:
                return False
            if po.status != PurchaseOrderStatus.DRAFT:
                raise Conflict(f"purchase order {po_id} is {po.status.value}; only a draft can be sent",
                               status=po.status.value)
            po.status = PurchaseOrderStatus.ORDERED
            return True

        return self._update(po_id, change)

    def _update(self, po_id: str, change, attempts: int = 8) -> PurchaseOrder:  # noqa: ANN001
        from orderflow.errors import ConcurrentUpdate

        for attempt in range(attempts):
            po = self.get(po_id)
            if change(po) is False:
                return po
            po.updated_at = utcnow()
            try:
                self.settings.put_doc(PO, po_id, po)
                return po
            except ConcurrentUpdate:
                if attempt == attempts - 1:
                    raise
        raise AssertionError("unreachable")

    def draft_for_backorders(self, order: Order) -> list[str]:
        """Add the latest plan's backordered units to their suppliers' draft purchase orders, once."""
        plan = order.allocation
        if plan is None or not plan.backordered:
            return []
        rules = {r.sku: r for r in self.rules()}
        touched = []
        for back in plan.backordered:
            rule = rules.get(back.sku)
            if rule is None:
                continue
            demand = Demand(order_id=order.order_id, plan_no=plan.plan_no, line_no=back.line_no, sku=back.sku,
                            quantity=back.quantity)
            po_id = self._open_draft(rule.supplier, rule.warehouse_id)

            def add(po: PurchaseOrder, demand: Demand = demand, rule: ReorderRule = rule) -> bool:
                key = (demand.order_id, demand.plan_no, demand.line_no)
                if any((d.order_id, d.plan_no, d.line_no) == key for d in po.demand):
                    return False
                po.demand.append(demand)
                wanted = sum(d.quantity for d in po.demand if d.sku == demand.sku)
                line = po.line(demand.sku)
                if line is None:
                    po.lines.append(POLine(sku=demand.sku, quantity=rule.quantity_for(wanted)))
                else:
                    line.quantity = max(line.quantity, rule.quantity_for(wanted))
                return True

            self._update(po_id, add)
            touched.append(po_id)
        return touched

    def _open_draft(self, supplier: str, warehouse_id: str) -> str:
        """The one open backorder draft for a supplier and warehouse (a pointer document names it)."""
        from orderflow.errors import ConcurrentUpdate

        marker = f"{supplier}#{warehouse_id}"
        for _ in range(5):
            pointer = self.settings.get_doc(DRAFT_POINTER, marker, _DraftPointer)
            if pointer is not None:
                existing = self.settings.get_doc(PO, pointer.po_id, PurchaseOrder)
                if existing is not None and existing.status == PurchaseOrderStatus.DRAFT:
                    return existing.po_id
            po = PurchaseOrder(po_id=new_id("po"), supplier=supplier, warehouse_id=warehouse_id,
                               status=PurchaseOrderStatus.DRAFT, source="backorder", lines=[])
            self.settings.put_doc(PO, po.po_id, po, new=True)
            fresh = _DraftPointer(po_id=po.po_id)
            fresh._version = pointer._version if pointer else 0
            try:
                self.settings.put_doc(DRAFT_POINTER, marker, fresh)
            except ConcurrentUpdate:
                po.status = PurchaseOrderStatus.CANCELLED  # someone else opened one first: use theirs
                self.settings.put_doc(PO, po.po_id, po)
                continue
            return po.po_id
        raise Conflict(f"could not open a draft purchase order for {supplier} / {warehouse_id}; retry")

    def receive(self, po_id: str, receipt: ReceiptIn) -> tuple[PurchaseOrder, bool]:
        """Add received units to stock (once per receipt id). Returns the PO and whether it was new."""
        po = self.get(po_id)
        receipt_id = receipt.receipt_id or new_id("rcpt")
        if any(r.receipt_id == receipt_id for r in po.receipts):
            return po, False
        if po.status not in (PurchaseOrderStatus.ORDERED, PurchaseOrderStatus.PARTIALLY_RECEIVED):
            raise Conflict(f"purchase order {po_id} is {po.status.value}; only an ordered purchase order can be "
                           "received (send a draft first)", status=po.status.value)
        for i, line in enumerate(receipt.lines):
            ordered = po.line(line.sku)
            if ordered is None:
                raise ValidationFailed(f"SKU {line.sku} is not on purchase order {po_id}", field=f"lines.{i}.sku")
            if line.quantity > ordered.quantity - ordered.received:
                raise ValidationFailed(
                    f"{line.quantity} x {line.sku} is more than the {ordered.quantity - ordered.received} still due",
                    field=f"lines.{i}.quantity")
        for i, line in enumerate(receipt.lines):
            self.inventory.change_on_hand(f"po#{po_id}#{receipt_id}#{i}", line.sku, po.warehouse_id, line.quantity,
                                          kind="receive", reason=f"purchase order {po_id}")

        def record(po: PurchaseOrder) -> bool:
            if any(r.receipt_id == receipt_id for r in po.receipts):
                return False
            for line in receipt.lines:
                ordered = po.line(line.sku)
                assert ordered is not None
                ordered.received += line.quantity
            po.receipts.append(Receipt(receipt_id=receipt_id, at=utcnow(), lines=receipt.lines))
            done = all(line.received >= line.quantity for line in po.lines)
            po.status = PurchaseOrderStatus.RECEIVED if done else PurchaseOrderStatus.PARTIALLY_RECEIVED
            return True

        return self._update(po_id, record), True


class _DraftPointer(Document, defer_build=True):
    po_id: str
