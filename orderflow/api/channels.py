"""Channel routes: connect a channel, list them, import now, and receive the channels' webhooks.

- ``POST /channels``: a channel's configuration with its credentials (``type`` picks the shape); the
  credentials go to Secrets Manager (or the local stack's credentials file), never to the settings
  table and never back out of the API; the channel's import schedule is created or updated. Re-posting
  a channel may leave out ``credentials`` to keep the stored ones, unless it changes where they are
  sent (``base_url``, an Amazon channel's ``lwa_url``) or the channel's ``type``: then the request
  must carry them again (422 otherwise, and nothing is changed).
- ``GET /channels``, ``GET /channels/{channel_id}``: configurations, whether credentials are stored,
  the import cursor and the last run's report.
- ``DELETE /channels/{channel_id}``: disconnect it (schedule, credentials, configuration, cursor).
- ``POST /channels/{channel_id}/import``: import now; reports how many orders were new, updated,
  skipped and failed (and whether more is left for the next run).
- ``POST /webhooks/{channel_id}``: the channel's webhooks, verified by the channel's own signature
  (no bearer token: the local front and API Gateway leave ``/webhooks/`` open).
"""

from __future__ import annotations

import time
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from orderflow.api.common import json_response
from orderflow.api.common import ports as api_ports
from orderflow.api.openapi import MIN_RATE
from orderflow.channels.config import ChannelIn, StoredCredentialsInvalid, split
from orderflow.channels.http import Deadline
from orderflow.channels.importing import ImportOptions, import_channel, receive_webhook
from orderflow.channels.ports import ChannelConfigs, CredentialStore, ImportSchedules
from orderflow.channels.webhooks import raw_body
from orderflow.errors import NotFound, ValidationFailed
from orderflow.models import Identifier

router = Router()

#: API Gateway gives an integration 29 s; an import started over HTTP stops in time to answer.
API_IMPORT_SECONDS = 24.0


# The channel slice's stores: those of the API's ports (orderflow.wiring builds them).


def channel_store() -> ChannelConfigs:
    return api_ports().channels.store


def credential_store() -> CredentialStore:
    return api_ports().channels.credentials()


def schedules() -> ImportSchedules:
    return api_ports().channels.schedules()


#: Where a channel's credentials are sent: changing one of these needs the credentials in the same request.
DESTINATION_FIELDS = ("base_url", "lwa_url")


def public(config: Any, *, with_cursor: bool = False) -> dict[str, Any]:
    out = config.model_dump(mode="json")
    try:
        stored = credential_store().get(config.channel_id, config.type)
    except StoredCredentialsInvalid as err:  # e.g. written for another type: shown, never a 500
        out["credentials"] = {"stored": True, "fields": [], "valid": False, "problem": err.message}
    else:
        out["credentials"] = {"stored": stored is not None, "fields": sorted(
            name for name, value in stored if value is not None) if stored else []}
    out["schedule"] = {"expression": config.import_schedule.expression(), "enabled": config.import_schedule.enabled}
    if with_cursor:
        cursor = channel_store().cursor(config.channel_id)
        out["import"] = {"watermark": cursor.watermark, "last_run": cursor.last_run,
                         "run_in_progress": cursor.run.model_dump() if cursor.run else None,
                         "running": bool(cursor.lease_until and float(cursor.lease_until) > time.time())}
    return out


@router.post("/channels")
def put_channel(channel: Annotated[ChannelIn, Body()]):
    config, credentials = split(channel)
    rate = getattr(getattr(config, "rate_limit", None), "rate", None)
    if rate is not None and rate < MIN_RATE:  # DynamoDB cannot store 5e-324; nobody means it
        raise ValidationFailed(f"rate_limit.rate must be at least {MIN_RATE} requests per second",
                               field="body.rate_limit.rate")
    store = channel_store()
    try:
        existing = store.get(config.channel_id)
    except NotFound:
        existing = None
    if credentials is None:
        _may_keep_credentials(existing, config)
    if credentials is not None:
        credential_store().put(config.channel_id, credentials)
    config, created = store.put(config)
    scheduled = schedules().upsert(config)
    body = public(config)
    body["schedule"]["name"] = scheduled
    return json_response(201 if created else 200, body)


def _may_keep_credentials(existing: Any, config: Any) -> None:
    """Raise unless ``config`` may use the stored credentials: a new channel, another ``type``, or a new
    place to send them (``base_url``, ``lwa_url``) needs the credentials again in the same request, so
    nobody who lacks them can have them sent to a server of their choosing."""
    if existing is None:
        raise ValidationFailed("a new channel needs its `credentials`", field="body.credentials")
    if existing.type != config.type:
        raise ValidationFailed(f"changing channel {config.channel_id} from {existing.type} to {config.type} needs "
                               "its `credentials` (for the new type) in the same request", field="body.credentials")
    for name in DESTINATION_FIELDS:
        if getattr(existing, name, None) != getattr(config, name, None):
            raise ValidationFailed(f"changing `{name}` sends the channel's credentials to a new place; give its "
                                   "`credentials` again in the same request", field="body.credentials",
                                   changed=name)


@router.get("/channels")
def list_channels() -> dict:
    return {"channels": [public(c, with_cursor=True) for c in channel_store().list()]}


@router.get("/channels/<channel_id>")
def get_channel(channel_id: Annotated[Identifier, Path()]) -> dict:
    return public(channel_store().get(channel_id), with_cursor=True)


@router.delete("/channels/<channel_id>")
def delete_channel(channel_id: Annotated[Identifier, Path()]):
    """Disconnect a channel: its schedule, credentials, configuration and cursor go; its orders stay."""
    store = channel_store()
    store.get(channel_id)  # 404 for a channel that does not exist
    schedules().delete(channel_id)
    credential_store().delete(channel_id)
    store.delete(channel_id)
    return Response(status_code=204)


@router.post("/channels/<channel_id>/import")
def import_now(channel_id: Annotated[Identifier, Path()],
               max_pages: Annotated[int | None, Query(ge=1, le=1000)] = None) -> dict:
    context = router.lambda_context
    remaining = Deadline.of_lambda(context, margin=4.0).left() if context is not None else float("inf")
    options = ImportOptions(deadline=Deadline.after(min(API_IMPORT_SECONDS, remaining)), max_pages=max_pages)
    report = import_channel(channel_id, api_ports(), options=options)
    return report.model_dump(mode="json")


@router.post("/webhooks/<channel_id>")
def webhook(channel_id: Annotated[Identifier, Path()]) -> dict:
    event = router.current_event
    return receive_webhook(channel_id, dict(event.headers or {}), raw_body(event.raw_event), api_ports())
