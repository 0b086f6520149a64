"""The channel slice's AWS side, implementing the ports of :mod:`orderflow.channels.ports`:
configurations and import cursors (settings table), credentials (Secrets Manager or the local stack's
credentials file), which orders of a page are stored, webhook event ids (guard items in the orders
table), and one EventBridge Scheduler schedule per channel.

- configuration: ``entity = "channel"``, ``id = <channel id>``: no credentials, ever;
- cursor: ``entity = "cursor"``, ``id = <channel id>``: the watermark (orders changed before it are
  stored), the run in progress (its page token, so a run cut off by the Lambda timeout resumes), the
  Amazon token bucket, the last run's report, and a lease so one import of a channel runs at a time;
- credentials: in the secrets store (orderflow.adapters.secrets): the secret ``<prefix><channel id>``
  (prefix ``orderflow/channels/``), a JSON object; with ``ORDERFLOW_CHANNEL_CREDENTIALS_FILE`` set (the
  local stack), a 0600 JSON file instead;
- webhook events: ``order_id = "webhook#<channel>#<event id>"`` in the orders table, written once.
"""

from __future__ import annotations

import json
import logging
import os
import time
from decimal import Decimal
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel

from orderflow import config
from orderflow.adapters.aws import client
from orderflow.adapters.dynamodb import find_channel_orders, from_item, query_entity, storage_errors, to_item
from orderflow.adapters.secrets import SecretsHome, SliceSecrets
from orderflow.channels.config import ChannelType, Credentials, config_from, credentials_from, reveal
from orderflow.channels.ports import CredentialStore, Cursor, LeaseLost
from orderflow.errors import NotFound
from orderflow.models import Order, utcnow
from orderflow.settings import Settings, get_settings

log = logging.getLogger(__name__)

SECRET_PREFIX_ENV = config.CHANNEL_SECRET_PREFIX.name
CREDENTIALS_FILE_ENV = config.CHANNEL_CREDENTIALS_FILE.name
SCHEDULE_GROUP_ENV = config.IMPORT_SCHEDULE_GROUP.name
SCHEDULER_ROLE_ENV = config.IMPORT_SCHEDULER_ROLE_ARN.name
IMPORT_FUNCTION_ENV = config.IMPORT_FUNCTION_ARN.name
DEFAULT_SECRET_PREFIX = "orderflow/channels/"


class ChannelStore:
    """The channels' configurations and import cursors in the settings table (the
    :class:`orderflow.channels.ports.ChannelConfigs` port)."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.table = (settings or get_settings()).settings_table

    # configurations

    def put(self, config: Any) -> tuple[Any, bool]:
        """Store a configuration; keeps ``created_at`` of the one it replaces. Returns (config, created)."""
        try:
            existing = self.get(config.channel_id)
        except NotFound:
            existing = None
        if existing is not None:
            config = config.model_copy(update={"created_at": existing.created_at, "updated_at": utcnow()})
        data = _numbers(config.model_dump(mode="json"))
        with storage_errors():
            client("dynamodb").put_item(TableName=self.table,
                                        Item=to_item({"entity": "channel", "id": config.channel_id, **data}))
        return config, existing is None

    def get(self, channel_id: str) -> Any:
        with storage_errors():
            resp = client("dynamodb").get_item(TableName=self.table, ConsistentRead=True,
                                               Key={"entity": {"S": "channel"}, "id": {"S": channel_id}})
        if "Item" not in resp:
            raise NotFound(f"channel {channel_id} not found", channel_id=channel_id)
        return config_from(_strip(from_item(resp["Item"])))

    def list(self) -> list[Any]:
        items = query_entity(self.table, "channel")
        return sorted((config_from(_strip(from_item(i))) for i in items), key=lambda c: c.channel_id)

    def delete(self, channel_id: str) -> None:
        """Forget the channel's configuration and cursor (its stored orders stay)."""
        with storage_errors():
            for entity in ("channel", "cursor"):
                client("dynamodb").delete_item(TableName=self.table,
                                               Key={"entity": {"S": entity}, "id": {"S": channel_id}})

    # cursors

    def cursor(self, channel_id: str) -> Cursor:
        with storage_errors():
            resp = client("dynamodb").get_item(TableName=self.table, ConsistentRead=True,
                                               Key={"entity": {"S": "cursor"}, "id": {"S": channel_id}})
        if "Item" not in resp:
            return Cursor(channel_id=channel_id)
        return _cursor(from_item(resp["Item"]))

    def acquire(self, channel_id: str, owner: str, lease_seconds: float) -> Cursor | None:
        """Take the channel's import lease. None if another import holds it."""
        now = time.time()
        try:
            with storage_errors():
                resp = client("dynamodb").update_item(
                    TableName=self.table, Key={"entity": {"S": "cursor"}, "id": {"S": channel_id}},
                    UpdateExpression="SET lease_owner = :o, lease_until = :u",
                    ConditionExpression="attribute_not_exists(lease_until) OR lease_until < :now OR lease_owner = :o",
                    ExpressionAttributeValues={":o": {"S": owner}, ":u": {"N": f"{now + lease_seconds:.3f}"},
                                               ":now": {"N": f"{now:.3f}"}},
                    ReturnValues="ALL_NEW")
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return None
            raise
        return _cursor(from_item(resp["Attributes"]))

    def save(self, cursor: Cursor, owner: str, lease_seconds: float) -> None:
        """Write the cursor's position (and extend the lease) if ``owner`` still holds the lease."""
        values = {":o": {"S": owner}, ":u": {"N": f"{time.time() + lease_seconds:.3f}"}}
        sets = ["lease_until = :u"]
        removes = []
        for name in ("watermark", "run", "rate"):
            value = getattr(cursor, name)
            if value is None:
                removes.append(name)
            else:
                values[f":{name}"] = to_item({"v": value.model_dump() if isinstance(value, BaseModel) else value})["v"]
                sets.append(f"#{name} = :{name}")
        expression = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(f"#{n}" for n in removes) if removes else "")
        names = {f"#{n}": n for n in ("watermark", "run", "rate") if f"#{n}" in expression}
        try:
            with storage_errors():
                client("dynamodb").update_item(
                    TableName=self.table, Key={"entity": {"S": "cursor"}, "id": {"S": cursor.channel_id}},
                    UpdateExpression=expression, ConditionExpression="lease_owner = :o",
                    ExpressionAttributeValues=values, **({"ExpressionAttributeNames": names} if names else {}))
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                raise LeaseLost(f"import of {cursor.channel_id} lost its lease; another import continues",
                                channel_id=cursor.channel_id) from err
            raise

    def release(self, channel_id: str, owner: str, last_run: dict[str, Any]) -> None:
        try:
            with storage_errors():
                client("dynamodb").update_item(
                    TableName=self.table, Key={"entity": {"S": "cursor"}, "id": {"S": channel_id}},
                    UpdateExpression="SET last_run = :l REMOVE lease_owner, lease_until",
                    ConditionExpression="lease_owner = :o",
                    ExpressionAttributeValues={":o": {"S": owner}, ":l": to_item({"v": last_run})["v"]})
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConditionalCheckFailedException":
                raise


def _numbers(value: Any) -> Any:
    """DynamoDB takes no floats: a rate of 0.0056 requests per second is stored as a Decimal."""
    if isinstance(value, float):
        return Decimal(str(value))
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


def _strip(data: dict[str, Any]) -> dict[str, Any]:
    data.pop("entity", None)
    data.pop("id", None)
    return data


def _cursor(data: dict[str, Any]) -> Cursor:
    channel_id = data.pop("id")
    data.pop("entity", None)
    return Cursor(channel_id=channel_id, **{k: v for k, v in data.items() if k in Cursor.model_fields})


# -- credentials --------------------------------------------------------------------------------------


class ChannelCredentials(SliceSecrets):
    """A channel's credentials in the secrets store (orderflow.adapters.secrets), named by the channel id:
    the JSON of the channel type's credentials model. Secret ``orderflow/channels/<channel id>``; the local
    stack's ``channel-credentials.json``. A deleted secret is kept 7 days; connecting the channel again
    restores it."""

    #: Read at every use (no cache): the API lets a channel's base URL change only together with new
    #: credentials, so that the stored ones never go to another server; a warm function holding the old
    #: credentials from a cache would send them to the new URL it reads from the (uncached) configuration.
    home = SecretsHome(file_env=CREDENTIALS_FILE_ENV, prefix_env=SECRET_PREFIX_ENV,
                       default_prefix=DEFAULT_SECRET_PREFIX, cache_seconds=0)

    def put(self, channel_id: str, credentials: Credentials) -> str:
        return self.secrets.put(channel_id, reveal(credentials),
                                description=f"orderflow channel {channel_id} credentials")

    def get(self, channel_id: str, channel_type: ChannelType | str) -> Credentials | None:
        data = self.secrets.get(channel_id)
        return credentials_from(channel_type, data) if data else None


#: One secret per channel, ``<prefix><channel id>`` (prefix ``orderflow/channels/``).
SecretsManagerCredentials = ChannelCredentials.in_secrets_manager
#: The local stack's channel credentials: one JSON file, readable by its owner only.
FileCredentials = ChannelCredentials.in_file


def default_credentials() -> CredentialStore:
    """The credentials file when ``ORDERFLOW_CHANNEL_CREDENTIALS_FILE`` is set (local stack), else
    AWS Secrets Manager."""
    return ChannelCredentials()


# -- a page's stored orders ---------------------------------------------------------------------------


class ChannelOrders:
    """The stored orders of a page of channel orders, in batch reads
    (:func:`orderflow.adapters.dynamodb.find_channel_orders`): the order items under the ids derived from
    the channel and the external ids, and, for orders stored before those ids, their guard items
    ``ref#<channel>#<external id>`` and the orders they name. A poll reads back the orders of its overlap
    every time; this makes seeing them again cost a call or two per page instead of one or two per order."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.table = (settings or get_settings()).orders_table

    def lookup(self, channel_id: str, external_ids: list[str]) -> dict[str, Order]:
        """external id -> stored order, for those of ``external_ids`` that are stored."""
        return find_channel_orders(self.table, channel_id, external_ids)


# -- webhook event ids --------------------------------------------------------------------------------


class WebhookEvents:
    """Which webhook events were handled, so a redelivery is answered without doing the work again."""

    def __init__(self, settings: Settings | None = None) -> None:
        self.table = (settings or get_settings()).orders_table

    @staticmethod
    def _key(channel_id: str, event_id: str) -> dict[str, Any]:
        return {"order_id": {"S": f"webhook#{channel_id}#{event_id}"}}

    def seen(self, channel_id: str, event_id: str) -> bool:
        with storage_errors():
            resp = client("dynamodb").get_item(TableName=self.table, Key=self._key(channel_id, event_id),
                                               ConsistentRead=True)
        return "Item" in resp

    def remember(self, channel_id: str, event_id: str, topic: str) -> bool:
        """Record the event; False if it was recorded already."""
        item = {**self._key(channel_id, event_id), **to_item({
            "topic": topic, "at": utcnow(), "expires_at": int(time.time()) + 7 * 86400})}
        try:
            with storage_errors():
                client("dynamodb").put_item(TableName=self.table, Item=item,
                                            ConditionExpression="attribute_not_exists(order_id)")
        except ClientError as err:
            if err.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise
        return True


# -- one EventBridge Scheduler schedule per channel ---------------------------------------------------


class ChannelSchedules:
    """The schedule that polls a channel: ``<group>/<channel id>``, invoking the import function with
    ``{"channel_id": …}`` at the channel's ``rate(N minutes)``. Created or updated with the channel.

    Needs ``ORDERFLOW_IMPORT_SCHEDULE_GROUP``, ``ORDERFLOW_IMPORT_SCHEDULER_ROLE_ARN`` and
    ``ORDERFLOW_IMPORT_FUNCTION_ARN`` (CDK sets them on the API function; the local stack sets them and
    runs the schedules itself, since moto stores schedules but never fires them).
    """

    def __init__(self) -> None:
        self.group = os.environ.get(SCHEDULE_GROUP_ENV)
        self.role_arn = os.environ.get(SCHEDULER_ROLE_ENV)
        self.function_arn = os.environ.get(IMPORT_FUNCTION_ENV)

    @property
    def enabled(self) -> bool:
        return bool(self.group and self.role_arn and self.function_arn)

    def upsert(self, config: Any) -> str | None:
        """Create or update the channel's schedule. Returns its ``group/name``, or None if not configured."""
        if not self.enabled:
            log.warning("channel schedules are not configured (%s unset); channel %s is imported on demand only",
                        SCHEDULE_GROUP_ENV, config.channel_id)
            return None
        schedule = config.import_schedule
        kwargs = {
            "Name": config.channel_id, "GroupName": self.group,
            "ScheduleExpression": schedule.expression(),
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "State": "ENABLED" if schedule.enabled else "DISABLED",
            "Description": f"orderflow: import orders from channel {config.channel_id}",
            "Target": {"Arn": self.function_arn, "RoleArn": self.role_arn,
                       "Input": json.dumps({"channel_id": config.channel_id}),
                       "RetryPolicy": {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}},
        }
        scheduler = client("scheduler")
        try:
            scheduler.create_schedule(**kwargs)
        except ClientError as err:
            if err.response["Error"]["Code"] != "ConflictException":
                raise
            scheduler.update_schedule(**kwargs)
        return f"{self.group}/{config.channel_id}"

    def delete(self, channel_id: str) -> None:
        if not self.enabled:
            return
        try:
            client("scheduler").delete_schedule(Name=channel_id, GroupName=self.group)
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
