"""FBA routes: connect an FBA warehouse to an Amazon account, see it, and poll Amazon for tracking now.

- ``PUT /fba/{warehouse_id}``: ``{"channel_id", "marketplace_id"?, "shipping_speed"?, "comment"?,
  "fulfillment_policy"?, "endpoint"?, "lwa_url"?, "credentials"?}``: the warehouse must be an ``fba``
  warehouse and the channel an Amazon channel with credentials (``POST /channels``); 201 when new, 200
  when replaced. An ``endpoint``/``lwa_url`` other than the channel's own (and than the stored account's)
  sends the channel's credentials elsewhere: the request must then carry the channel's ``credentials``,
  matching the stored ones (checked, never kept), else 422 ``field: credentials`` and nothing changes;
- ``GET /fba/{warehouse_id}``: the settings, whether the channel's credentials are there, and the
  fulfillment orders Amazon has that have not shipped yet; ``GET /fba``: every FBA account;
- ``POST /fba/{warehouse_id}/poll``: ask Amazon about this warehouse's open fulfillment orders now (what
  the schedule does), and report what each one did.
"""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path

from orderflow.api.common import json_response
from orderflow.api.common import ports as api_ports
from orderflow.channels.http import Deadline
from orderflow.errors import Conflict, NotFound
from orderflow.fba.accounts import FbaAccount, FbaAccountIn, default_fba
from orderflow.fba.tracking import poll
from orderflow.models import Identifier, WarehouseKind

router = Router()

#: API Gateway gives an integration 29 s; a poll started over HTTP stops in time to answer.
API_POLL_SECONDS = 24.0


def _public(account: FbaAccount, fba) -> dict[str, Any]:  # noqa: ANN001
    out = account.model_dump(mode="json")
    try:
        channel = fba.channel(account)
        credentials = fba.credentials.get(channel.channel_id, "amazon")
        out["channel"] = {"exists": True, "credentials_stored": credentials is not None,
                          "marketplace_id": account.marketplace_id or channel.marketplace_ids[0]}
    except Exception as err:  # noqa: BLE001 - a missing or changed channel is shown, not a 500
        out["channel"] = {"exists": False, "problem": getattr(err, "message", type(err).__name__)}
    out["open_fulfillment_orders"] = [
        {"shipment_id": r.shipment_id, "order_id": r.order_id, "seller_fulfillment_order_id":
         r.seller_fulfillment_order_id, "amazon_status": r.amazon_status, "forwarded_at": r.forwarded_at,
         "cancel_requested_at": r.cancel_requested_at}
        for r in fba.store.open_orders(account.warehouse_id)]
    return out


@router.put("/fba/<warehouse_id>")
def put_account(warehouse_id: Annotated[Identifier, Path()], account: Annotated[FbaAccountIn, Body()]):
    warehouse = api_ports().settings.warehouse(warehouse_id)  # 404 for an unknown warehouse
    if warehouse.kind != WarehouseKind.FBA:
        raise Conflict(f"warehouse {warehouse_id} is a {warehouse.kind.value} warehouse; only an fba warehouse "
                       "ships through Amazon", field="warehouse_id", kind=warehouse.kind.value)
    fba = default_fba(api_ports())
    fba.channel(account)  # 422 unless it is an Amazon channel
    fba.check_destinations(account, fba.store.account(warehouse_id))  # 422: a new endpoint needs the credentials
    stored, created = fba.store.put_account(FbaAccount(warehouse_id=warehouse_id,
                                                       **account.model_dump(exclude={"credentials"})))
    return json_response(201 if created else 200, _public(stored, fba))


@router.get("/fba")
def list_accounts() -> dict:
    fba = default_fba(api_ports())
    return {"accounts": [_public(a, fba) for a in fba.store.accounts()]}


@router.get("/fba/<warehouse_id>")
def get_account(warehouse_id: Annotated[Identifier, Path()]) -> dict:
    fba = default_fba(api_ports())
    account = fba.store.account(warehouse_id)
    if account is None:
        raise NotFound(f"warehouse {warehouse_id} has no FBA account; connect one with PUT /fba/{warehouse_id}",
                       warehouse_id=warehouse_id)
    return _public(account, fba)


@router.post("/fba/<warehouse_id>/poll")
def poll_now(warehouse_id: Annotated[Identifier, Path()]) -> dict:
    fba = default_fba(api_ports())
    fba.account(warehouse_id)  # 404 unless it has an FBA account
    context = router.lambda_context
    remaining = Deadline.of_lambda(context, margin=4.0).left() if context is not None else float("inf")
    report = poll(api_ports(), fba, warehouse_id=warehouse_id,
                  deadline=Deadline.after(min(API_POLL_SECONDS, remaining)))
    return report.model_dump(mode="json")
