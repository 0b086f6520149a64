"""Sample data for the local stack: two warehouses and a few SKUs with stock."""

from __future__ import annotations

from orderflow.models import Address, Warehouse, WarehouseKind
from orderflow.ports import Ports

WAREHOUSES = [
    Warehouse(warehouse_id="east", name="East Coast DC", kind=WarehouseKind.OWN, priority=10,
              address=Address(name="East Coast DC", line1="100 Port St", city="Newark", region="NJ",
                              postal_code="07114", country="US")),
    Warehouse(warehouse_id="west", name="West Coast DC", kind=WarehouseKind.OWN, priority=20,
              address=Address(name="West Coast DC", line1="200 Desert Way", city="Reno", region="NV",
                              postal_code="89502", country="US")),
]
STOCK = {
    ("TSHIRT-BLK-M", "east"): 50,
    ("TSHIRT-BLK-M", "west"): 30,
    ("MUG-12OZ", "east"): 5,
    ("MUG-12OZ", "west"): 40,
    ("POSTER-A2", "west"): 25,
}


#: A dropship supplier and a 3PL, each with its own SKU; their sandbox SFTP accounts and supplier
#: configurations come from ``orderflow_local.suppliers``.
SUPPLIER_WAREHOUSES = [
    Warehouse(warehouse_id="acme-dropship", name="Acme Lamps (dropship supplier)", kind=WarehouseKind.DROPSHIP,
              priority=30, sla_hours=48),
    Warehouse(warehouse_id="north-3pl", name="North Fulfilment (3PL)", kind=WarehouseKind.THREE_PL,
              priority=40, sla_hours=24),
]
SUPPLIER_STOCK = {
    ("LAMP-DESK", "acme-dropship"): 100,
    ("HOODIE-GRY-L", "north-3pl"): 60,
}


def seed_suppliers(ports: Ports, runtime, *, stock: bool = True) -> list[str]:  # noqa: ANN001 - SupplierRuntime
    """The supplier warehouses, their stock (``stock``: not after a restart, which keeps the saved
    levels), and their sandbox suppliers (needs a sandbox SFTP server)."""
    from orderflow_local.suppliers import seed_sandbox_suppliers

    for warehouse in SUPPLIER_WAREHOUSES:
        ports.settings.put_warehouse(warehouse)
    for (sku, warehouse_id), on_hand in (SUPPLIER_STOCK.items() if stock else ()):
        ports.inventory.set_on_hand(sku, warehouse_id, on_hand, reason="sample data")
    return seed_sandbox_suppliers(runtime)


def seed(ports: Ports, *, stock: bool = True) -> None:
    for warehouse in WAREHOUSES:
        ports.settings.put_warehouse(warehouse)
    for (sku, warehouse_id), on_hand in (STOCK.items() if stock else ()):
        ports.inventory.set_on_hand(sku, warehouse_id, on_hand, reason="sample data")


#: An Amazon FBA warehouse: Amazon holds the catalog's SKUs and PHONE-CASE, which only it stocks. When the
#: sandbox channels run, the sandbox WooCommerce shop's orders are pinned to it: Multi-Channel Fulfillment
#: ships another channel's orders from the seller's FBA inventory.
FBA_PINNED_CHANNEL = "sandbox-woocommerce"
FBA_WAREHOUSE = Warehouse(warehouse_id="fba", name="Amazon FBA (sandbox)", kind=WarehouseKind.FBA, priority=50,
                          sla_hours=24)
FBA_STOCK = {("TSHIRT-BLK-M", "fba"): 200, ("MUG-12OZ", "fba"): 200, ("POSTER-A2", "fba"): 200,
             ("PHONE-CASE", "fba"): 80}


def seed_fba(ports: Ports, stack, runtime, *, stock: bool = True) -> None:  # noqa: ANN001 - LocalStack, FbaRuntime
    """The FBA warehouse, its stock, and its Amazon account on the sandbox FBA server (needs it running)."""
    from orderflow.rules.allocation import Pin
    from orderflow_local.fba import _sandbox_amazon, connect_sandbox_account

    ports.settings.put_warehouse(FBA_WAREHOUSE)
    for (sku, warehouse_id), on_hand in (FBA_STOCK.items() if stock else ()):
        ports.inventory.set_on_hand(sku, warehouse_id, on_hand, reason="sample data")
    connect_sandbox_account(stack, runtime, FBA_WAREHOUSE.warehouse_id)
    policy = ports.settings.allocation_policy()
    if _sandbox_amazon(stack) is not None and not policy.pins:
        ports.settings.put_allocation_policy(policy.model_copy(update={"pins": [
            Pin(channel=FBA_PINNED_CHANNEL, warehouse_ids=[FBA_WAREHOUSE.warehouse_id])]}))
