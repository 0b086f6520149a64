"""Routes for carrier accounts and shipping labels (included by orderflow.api.app).

- ``PUT /carriers/{carrier_id}``, ``GET /carriers[/{carrier_id}]``: carrier accounts; keys are stored
  out of the table and never echoed back; a PUT that changes ``base_url`` of an account with a key
  must give ``api_key`` again (422 ``field: api_key`` otherwise, nothing changed);
- ``POST /orders/{order_id}/labels``: buy a label (201; 200 with the existing one on a retry);
- ``GET /orders/{order_id}/labels/{shipment_id}``: the label file (PDF or ZPL).
"""

from __future__ import annotations

import hmac
import os
from typing import Annotated

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Header, Path

from orderflow.api.common import json_response
from orderflow.api.common import ports as api_ports
from orderflow.api.openapi import ID_PATTERN
from orderflow.carriers import labels
from orderflow.carriers.accounts import (
    DEFAULT_BASE_URLS,
    SANDBOX_URL_ENV,
    CarrierAccount,
    CarrierAccountIn,
    CarrierType,
)
from orderflow.errors import ValidationFailed
from orderflow.models import Identifier

router = Router()


# -- carrier accounts ------------------------------------------------------------------------------

def _public(account: CarrierAccount) -> dict:
    keys = api_ports().carriers.keys
    has_key = keys.get(account.carrier_id) is not None
    return account.public(has_api_key=has_key, key_ref=keys.ref(account.carrier_id) if has_key else None)


@router.put("/carriers/<carrier_id>")
def put_carrier(carrier_id: Annotated[Identifier, Path()], account: CarrierAccountIn):
    hub = api_ports().carriers
    data = account.model_dump(exclude={"api_key"})
    if not data["base_url"]:  # only a sandbox account can come without one
        data["base_url"] = os.environ.get(SANDBOX_URL_ENV)
        if not data["base_url"]:
            raise ValidationFailed("a sandbox account needs base_url (the local stack fills it in)", field="base_url")
    stored = CarrierAccount(carrier_id=carrier_id, **data)
    _may_send_key(carrier_id, account, stored.base_url, hub)
    if account.api_key is not None:
        hub.keys.put(carrier_id, account.api_key)
    elif account.type != CarrierType.SANDBOX and hub.keys.get(carrier_id) is None:
        raise ValidationFailed(f"a {account.type.value} account needs api_key (stored out of the table, never "
                               "shown again)", field="api_key")
    saved, created = hub.accounts.put(stored)
    return json_response(201 if created else 200, _public(saved), headers={"Location": f"/carriers/{carrier_id}"})


def _may_send_key(carrier_id: str, account: CarrierAccountIn, base_url: str, hub) -> None:  # noqa: ANN001
    """Raise unless the key in use may go to ``base_url``: a base URL other than the stored account's (for a
    new account: other than the carrier's public API, or the local sandbox) needs ``api_key`` in the same
    request, and when the key in use comes from the environment (which wins over a stored one), that key."""
    in_use = hub.keys.get(carrier_id)
    if in_use is None:
        return  # no key to send anywhere
    current = hub.accounts.find(carrier_id)
    if current is not None:
        trusted = {current.base_url}
    else:
        trusted = {DEFAULT_BASE_URLS.get(account.type)}
        if account.type == CarrierType.SANDBOX:
            trusted.add(os.environ.get(SANDBOX_URL_ENV))
    if base_url in trusted:
        return
    if account.api_key is None:
        raise ValidationFailed(f"base_url {base_url} would receive carrier {carrier_id}'s API key; give `api_key` "
                               "again in the same request", field="api_key")
    ref = hub.keys.ref(carrier_id)
    if ref.startswith("env:") and not hmac.compare_digest(account.api_key.get_secret_value().encode(),
                                                          in_use.get_secret_value().encode()):
        raise ValidationFailed(f"carrier {carrier_id}'s key comes from {ref.removeprefix('env:')} (it wins over a "
                               f"stored one) and would go to base_url {base_url}; give that key as `api_key`",
                               field="api_key")


@router.get("/carriers")
def list_carriers() -> dict:
    return {"carriers": [_public(a) for a in api_ports().carriers.accounts.list()]}


@router.get("/carriers/<carrier_id>")
def get_carrier(carrier_id: Annotated[Identifier, Path()]) -> dict:
    return _public(api_ports().carriers.accounts.get(carrier_id))


# -- labels ------------------------------------------------------------------------------------------

@router.post("/orders/<order_id>/labels")
def buy_label(order_id: Annotated[str, Path(max_length=80, pattern=ID_PATTERN)], label: labels.LabelIn,
              idempotency_key: Annotated[labels.IdempotencyKey | None, Header(alias="Idempotency-Key")] = None):
    result = labels.buy_label(order_id, label, api_ports(), idempotency_key=idempotency_key)
    location = labels.download_path(order_id, result.shipment.shipment_id)
    return json_response(201 if result.created else 200, result.body(), headers={"Location": location})


@router.get("/orders/<order_id>/labels/<shipment_id>")
def download_label(order_id: Annotated[str, Path(max_length=80, pattern=ID_PATTERN)], shipment_id: Annotated[str, Path(max_length=100, pattern=ID_PATTERN)]):
    data, fmt = labels.label_file(order_id, shipment_id, api_ports())
    return Response(status_code=200, content_type=fmt.content_type, body=data,
                    headers={"Content-Disposition": f'inline; filename="{shipment_id}.{fmt.value}"',
                             "Cache-Control": "private, max-age=300"})
