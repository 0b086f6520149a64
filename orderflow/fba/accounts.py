"""Which Amazon account an FBA warehouse ships from, and the open fulfillment orders we are waiting on.

Two kinds of small documents in the settings table:

- ``entity = "fba_account"``, ``id = <warehouse id>`` (:class:`FbaAccount`): the Amazon sales channel whose
  Login-with-Amazon credentials to use (``channel_id``; credentials stay in the channel's secret and are
  never copied here), the marketplace, the shipping speed, the packing-slip comment; optionally another
  SP-API endpoint (the SP-API sandbox, or the local sandbox FBA server);
- ``entity = "fba_open"``, ``id = <shipment id>`` (:class:`OpenFulfillmentOrder`): one per shipment
  forwarded to Amazon and not finished yet. The tracking poll reads exactly these (one query), and
  removes each when its shipment has shipped, was cancelled, or needs attention.
"""

from __future__ import annotations

import hmac
import json
import os
from dataclasses import dataclass
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from orderflow import config
from orderflow.channels.config import (
    SECRET_MODEL_CONFIG,
    AmazonConfig,
    AmazonCredentials,
    BaseUrl,
    check_base_url,
    reveal,
)
from orderflow.channels.http import Deadline, RetryPolicy
from orderflow.channels.ports import ChannelConfigs, CredentialStore
from orderflow.errors import NotFound, ValidationFailed
from orderflow.models import Identifier, Model, utcnow
from orderflow.ports import Documents, Ports

ACCOUNT = "fba_account"
OPEN = "fba_open"
#: Tests and the local stack shorten the HTTP retry backoff with this (seconds, default 1).
RETRY_BASE_ENV = config.FBA_RETRY_BASE_SECONDS.name

MarketplaceId = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^[A-Z0-9]{5,20}$")]


# ``defer_build=True`` (here and below): pydantic builds a model's validator when it is first used, not at
# import, so a function's cold start pays only for the models it validates (issue 13).
class _AccountFields(Model, defer_build=True):
    channel_id: Identifier = Field(description="The Amazon sales channel (POST /channels, type amazon) whose "
                                               "Login-with-Amazon credentials MCF calls use")
    marketplace_id: MarketplaceId | None = Field(None, description="Default: the channel's first marketplace")
    shipping_speed: Literal["Standard", "Expedited", "Priority"] = "Standard"
    comment: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=750)] = Field(
        "Thank you for your order.", description="displayableOrderComment: printed on the packing slip")
    fulfillment_policy: Literal["FillOrKill", "FillAll", "FillAllAvailable"] = "FillOrKill"
    endpoint: BaseUrl | None = Field(None, description="Another SP-API endpoint for MCF (default: the channel's)")
    lwa_url: BaseUrl | None = Field(None, description="Another Login-with-Amazon endpoint (default: the channel's)")

    @field_validator("endpoint", "lwa_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return None if value is None else check_base_url(value)


class FbaAccountIn(_AccountFields):
    """What ``PUT /fba/{warehouse_id}`` accepts."""

    model_config = SECRET_MODEL_CONFIG

    credentials: AmazonCredentials | None = Field(
        None, description="The Amazon channel's credentials, again: needed only when `endpoint` or `lwa_url` "
                          "sends them somewhere the channel does not; checked against the stored ones, never kept")


class FbaAccount(_AccountFields):
    warehouse_id: Identifier
    created_at: str = Field(default_factory=utcnow)
    updated_at: str = Field(default_factory=utcnow)


class OpenFulfillmentOrder(BaseModel, defer_build=True):
    """A shipment Amazon has (or is being given) that has not shipped yet."""

    model_config = ConfigDict(extra="ignore")

    shipment_id: str
    order_id: str
    warehouse_id: str
    seller_fulfillment_order_id: str
    forwarded_at: str = Field(default_factory=utcnow)
    #: Set just before we ask Amazon to cancel: a CANCELLED seen afterwards is ours, not Amazon's.
    cancel_requested_at: str | None = None
    #: Amazon's status at the last poll (normalized, e.g. PLANNING).
    amazon_status: str | None = None
    checked_at: str | None = None


class FbaStore:
    """Accounts and open fulfillment orders, in the one document store (consistent reads throughout)."""

    def __init__(self, docs: Documents) -> None:
        self.docs = docs

    # -- accounts -----------------------------------------------------------------------------------------

    def account(self, warehouse_id: str) -> FbaAccount | None:
        data = self.docs.get(ACCOUNT, warehouse_id)
        return None if data is None else FbaAccount.model_validate(
            {k: v for k, v in data.items() if k in FbaAccount.model_fields})

    def put_account(self, account: FbaAccount) -> tuple[FbaAccount, bool]:
        """Store it (keeping ``created_at`` of the one it replaces). Returns (account, created)."""
        existing = self.account(account.warehouse_id)
        if existing is not None:
            account = account.model_copy(update={"created_at": existing.created_at, "updated_at": utcnow()})
        self.docs.put(ACCOUNT, account.warehouse_id, account.model_dump(mode="json", exclude_none=True))
        return account, existing is None

    def accounts(self) -> list[FbaAccount]:
        return sorted((FbaAccount.model_validate({k: v for k, v in d.items() if k in FbaAccount.model_fields})
                       for d in self.docs.query(ACCOUNT, consistent=True)), key=lambda a: a.warehouse_id)

    # -- open fulfillment orders --------------------------------------------------------------------------

    def open_order(self, shipment_id: str) -> OpenFulfillmentOrder | None:
        data = self.docs.get(OPEN, shipment_id)
        return None if data is None else OpenFulfillmentOrder.model_validate(data)

    def put_open(self, record: OpenFulfillmentOrder) -> None:
        self.docs.put(OPEN, record.shipment_id, record.model_dump(mode="json", exclude_none=True))

    def open_orders(self, warehouse_id: str | None = None) -> list[OpenFulfillmentOrder]:
        records = [OpenFulfillmentOrder.model_validate(d) for d in self.docs.query(OPEN, consistent=True)]
        if warehouse_id is not None:
            records = [r for r in records if r.warehouse_id == warehouse_id]
        return sorted(records, key=lambda r: r.forwarded_at)

    def close(self, shipment_id: str, seller_fulfillment_order_id: str | None = None) -> None:
        """Forget an open order (only that fulfillment order's record, when one is named)."""
        # refused when a newer fulfillment order of the shipment replaced this one: that one stays open
        self.docs.delete(OPEN, shipment_id, where={"seller_fulfillment_order_id": seller_fulfillment_order_id}
                         if seller_fulfillment_order_id else None)


def retry_policy() -> RetryPolicy:
    base = float(os.environ.get(RETRY_BASE_ENV) or 1.0)
    return RetryPolicy(base_delay=base, max_delay=max(base, min(60.0, base * 60)))


@dataclass
class Fba:
    """The FBA side of orderflow: accounts and open orders (``store``), and a client per account,
    built from the Amazon channel's configuration and credentials."""

    store: FbaStore
    channels: ChannelConfigs
    credentials: CredentialStore
    retry: RetryPolicy | None = None

    def account(self, warehouse_id: str) -> FbaAccount:
        account = self.store.account(warehouse_id)
        if account is None:
            raise NotFound(f"warehouse {warehouse_id} has no FBA account; connect one with PUT /fba/{warehouse_id}",
                           warehouse_id=warehouse_id)
        return account

    def channel(self, account: _AccountFields) -> AmazonConfig:
        """The Amazon channel's configuration, pointed at the account's endpoints."""
        try:
            config = self.channels.get(account.channel_id)
        except NotFound as err:
            raise ValidationFailed(f"channel {account.channel_id} does not exist; connect it with POST /channels "
                                   "(type amazon) first", field="channel_id") from err
        if not isinstance(config, AmazonConfig):
            raise ValidationFailed(f"channel {account.channel_id} is a {config.type} channel; FBA needs an Amazon "
                                   "one", field="channel_id")
        changes = {k: v for k, v in (("base_url", account.endpoint), ("lwa_url", account.lwa_url)) if v}
        return config.model_copy(update=changes) if changes else config

    def check_destinations(self, account: FbaAccountIn, existing: FbaAccount | None) -> None:
        """Raise unless the account may send the channel's credentials where it says: an ``endpoint`` or
        ``lwa_url`` that differs from the channel's own (and from what the stored account already sends them
        to) needs the channel's credentials in the same request, matching the stored ones."""
        config = self.channel(account)
        own = self.channels.get(account.channel_id)
        trusted = {(own.base_url, own.lwa_url)}
        if existing is not None and existing.channel_id == account.channel_id:
            trusted.add((existing.endpoint or own.base_url, existing.lwa_url or own.lwa_url))
        if (config.base_url, config.lwa_url) in trusted:
            return
        if account.credentials is None:
            raise ValidationFailed(f"`endpoint`/`lwa_url` would send channel {account.channel_id}'s Login-with-Amazon "
                                   "credentials to a new place; give the channel's `credentials` in the same request",
                                   field="credentials")
        stored = self.credentials.get(account.channel_id, "amazon")
        if stored is None or not hmac.compare_digest(json.dumps(reveal(stored), sort_keys=True).encode(),
                                                     json.dumps(reveal(account.credentials), sort_keys=True).encode()):
            raise ValidationFailed(f"`credentials` are not channel {account.channel_id}'s stored credentials",
                                   field="credentials")

    def marketplace(self, account: _AccountFields) -> str:
        return account.marketplace_id or self.channel(account).marketplace_ids[0]

    def client(self, account: _AccountFields, *, deadline: Deadline | None = None):  # noqa: ANN201 - McfClient
        from orderflow.channels.config import AmazonCredentials
        from orderflow.fba.client import McfClient

        config = self.channel(account)
        credentials = self.credentials.get(config.channel_id, "amazon")
        if not isinstance(credentials, AmazonCredentials):
            raise ValidationFailed(f"channel {config.channel_id} has no credentials; POST /channels with "
                                   "`credentials` first", field="channel_id")
        return McfClient(config, credentials, retry=self.retry or retry_policy(), deadline=deadline)


def default_fba(ports: Ports) -> Fba:
    """The FBA side over the ports' stores (orderflow.wiring picks them): built per use, cheap, and the
    credentials follow the environment (the local stack sets it up after import)."""
    return Fba(store=FbaStore(ports.documents), channels=ports.channels.store,
               credentials=ports.channels.credentials())
