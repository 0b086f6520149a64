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


def seed(ports: Ports) -> None:
    for warehouse in WAREHOUSES:
        ports.settings.put_warehouse(warehouse)
    for (sku, warehouse_id), on_hand in STOCK.items():
        ports.inventory.set_on_hand(sku, warehouse_id, on_hand, reason="sample data")
