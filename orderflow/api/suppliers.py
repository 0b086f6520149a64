"""Routes for dropship suppliers and 3PLs (included by orderflow.api.app).

- ``PUT /suppliers/{warehouse_id}``: configure the supplier behind a dropship/3PL warehouse (201 the
  first time, 200 after); credentials are stored out of the table and never echoed back; a PUT without
  ``credentials`` keeps the stored ones unless it changes which server they go to (``sftp.host``,
  ``port``, ``host_key_fingerprint``, ``accept_unknown_host_key``): then 422 ``field: credentials``;
- ``GET /suppliers``, ``GET /suppliers/{warehouse_id}``: the configurations (no secrets);
- ``POST /suppliers/{warehouse_id}/poll``: read the supplier's tracking files now instead of waiting
  for the schedule; answers the poll's report.
"""

from __future__ import annotations

import json
import os
from typing import Annotated

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path

from orderflow import config
from orderflow.api.common import json_response
from orderflow.api.common import ports as api_ports
from orderflow.errors import NotFound, TransientError, ValidationFailed
from orderflow.models import Identifier, WarehouseKind, utcnow
from orderflow.suppliers.config import SupplierConfig, SupplierIn

router = Router()

#: On AWS the poll runs in the poll function (it has the network path to the suppliers); the API
#: invokes it. Unset (local stack, tests): the poll runs here.
POLL_FUNCTION_ENV = config.POLL_TRACKING_FUNCTION.name


def _suppliers():
    from orderflow.suppliers.ports import default_suppliers

    return default_suppliers(api_ports())


def _public(config: SupplierConfig, suppliers) -> dict:  # noqa: ANN001
    stored = suppliers.credentials.get(config.warehouse_id)
    body = config.public()
    body["credentials"] = {"stored": stored is not None, "kinds": stored.kinds() if stored else []}
    return body


@router.put("/suppliers/<warehouse_id>")
def put_supplier(warehouse_id: Annotated[Identifier, Path()], supplier: SupplierIn):
    ports = api_ports()
    warehouse = ports.settings.warehouse(warehouse_id)  # 404 for an unknown warehouse
    if warehouse.kind not in (WarehouseKind.DROPSHIP, WarehouseKind.THREE_PL):
        raise ValidationFailed(f"warehouse {warehouse_id} is a {warehouse.kind.value} warehouse; suppliers serve "
                               "dropship and 3pl warehouses", field="warehouse_id")
    suppliers = _suppliers()
    existing = suppliers.store.config(warehouse_id)
    if supplier.credentials is None:
        if suppliers.credentials.get(warehouse_id) is None:
            raise ValidationFailed("credentials are required the first time (a password or a private_key; stored "
                                   "out of the table and never shown again)", field="credentials")
        if existing is None or existing.sftp.destination() != supplier.sftp.destination():
            changed = [name for name in supplier.sftp.DESTINATION
                       if existing is None or getattr(existing.sftp, name) != getattr(supplier.sftp, name)]
            raise ValidationFailed(f"changing sftp {', '.join(changed)} sends the stored credentials to another "
                                   "server; give `credentials` again in the same request", field="credentials",
                                   changed=changed)
    config = SupplierConfig(warehouse_id=warehouse_id, **supplier.model_dump(exclude={"credentials"}))
    if supplier.credentials is not None:
        config.credentials_ref = suppliers.credentials.put(warehouse_id, supplier.credentials)
    elif existing is not None:
        config.credentials_ref = existing.credentials_ref
    if existing is not None:
        config.created_at, config.updated_at = existing.created_at, utcnow()
        config._version = existing._version
    suppliers.store.put_config(config)
    return json_response(200 if existing else 201, _public(config, suppliers))


@router.get("/suppliers")
def list_suppliers() -> dict:
    suppliers = _suppliers()
    return {"suppliers": [_public(c, suppliers) for c in suppliers.store.configs()]}


@router.get("/suppliers/<warehouse_id>")
def get_supplier(warehouse_id: Annotated[Identifier, Path()]) -> dict:
    suppliers = _suppliers()
    config = suppliers.store.config(warehouse_id)
    if config is None:
        raise NotFound(f"no supplier is configured for warehouse {warehouse_id}", warehouse_id=warehouse_id)
    return _public(config, suppliers)


@router.post("/suppliers/<warehouse_id>/poll")
def poll_supplier(warehouse_id: Annotated[Identifier, Path()]) -> dict:
    suppliers = _suppliers()
    if suppliers.store.config(warehouse_id) is None:
        raise NotFound(f"no supplier is configured for warehouse {warehouse_id}", warehouse_id=warehouse_id)
    function = os.environ.get(POLL_FUNCTION_ENV)
    if function:
        from orderflow.adapters.aws import client

        resp = client("lambda").invoke(FunctionName=function, Payload=json.dumps({"warehouse_id": warehouse_id}))
        report = json.loads(resp["Payload"].read() or b"{}")
        if resp.get("FunctionError"):
            raise TransientError("the tracking poll failed; it runs again on its schedule", error=report.get("errorType"))
        return report
    from orderflow.suppliers.tracking import poll_all

    report = poll_all(api_ports(), suppliers, warehouse_id=warehouse_id)
    return {**report.model_dump(), "totals": report.totals()}
