"""A channel as the seller configures it: type, base URL, schedule, stock auto-sync, credentials.

The configuration (:data:`ChannelConfig`) is stored in the settings table; the credentials
(:data:`Credentials`) never are: they go to AWS Secrets Manager (or the local stack's credentials
file) through :mod:`orderflow.adapters.channel_store`. Credential fields are ``SecretStr``, so they
print as ``**********`` in logs, reprs and errors, and every model that holds them hides its input in
validation errors (:data:`SECRET_MODEL_CONFIG`), so a credential that fails validation is never spelled
out in an error's text either.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, SecretStr, StringConstraints, ValidationError, field_validator

from orderflow import outbound
from orderflow.errors import ValidationFailed
from orderflow.models import Identifier, Model, ShortText, utcnow


class ChannelType(StrEnum):
    SHOPIFY = "shopify"
    WOOCOMMERCE = "woocommerce"
    AMAZON = "amazon"


Secret = Annotated[SecretStr, Field(min_length=1, max_length=4096)]
#: The configuration of every model holding a secret: its validation errors never repeat the input (a
#: wrong credential object would otherwise be spelled out in the error text, and from there in logs, an
#: import's report or an order event).
SECRET_MODEL_CONFIG = ConfigDict(extra="forbid", str_strip_whitespace=True, hide_input_in_errors=True)


def check_base_url(value: str) -> str:
    """``https://`` to a public host; plain ``http://`` only to the local stack's sandboxes (orderflow.outbound)."""
    return outbound.check_base_url(value, "https://example.myshopify.com")


BaseUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=300)]


class ImportSchedule(Model):
    every_minutes: Annotated[int, Field(ge=1, le=1440)] = Field(5, description="How often orders are polled")
    enabled: bool = True

    def expression(self) -> str:
        """The EventBridge Scheduler expression: ``rate(5 minutes)``."""
        unit = "minute" if self.every_minutes == 1 else "minutes"
        return f"rate({self.every_minutes} {unit})"


class RateLimit(Model):
    """Requests per second and burst of the channel's order search (a token bucket on our side)."""

    rate: Annotated[float, Field(gt=0, le=1000)]
    burst: Annotated[int, Field(ge=1, le=1000)]


# ``defer_build=True`` (here and below): pydantic builds a model's validator when it is first used, not at
# import, so a function's cold start pays only for the models it validates (issue 13).
class _ChannelBase(Model, defer_build=True):
    channel_id: Identifier
    name: ShortText | None = None
    base_url: BaseUrl = Field(description="The channel's API root, e.g. https://shop.myshopify.com")
    import_schedule: ImportSchedule = Field(default_factory=ImportSchedule)
    auto_sync_stock: bool = Field(False, description="Push available quantities to this channel")
    created_at: str = Field(default_factory=utcnow)
    updated_at: str = Field(default_factory=utcnow)

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str) -> str:
        return check_base_url(value)


class ShopifyConfig(_ChannelBase):
    type: Literal["shopify"] = "shopify"
    api_version: Annotated[str, StringConstraints(pattern=r"^\d{4}-\d{2}$")] = "2026-04"
    #: The Shopify location whose ``available`` quantity auto-sync sets (default: the shop's first).
    location_id: Annotated[str, StringConstraints(max_length=120)] | None = None
    #: 25 orders of up to 30 lines each stay under a standard shop's 1000-point GraphQL query cost.
    page_size: Annotated[int, Field(ge=1, le=250)] = 25


class WooCommerceConfig(_ChannelBase):
    type: Literal["woocommerce"] = "woocommerce"
    page_size: Annotated[int, Field(ge=1, le=100)] = 100


class AmazonConfig(_ChannelBase):
    type: Literal["amazon"] = "amazon"
    #: Login with Amazon's token endpoint root (``https://api.amazon.com``).
    lwa_url: BaseUrl = "https://api.amazon.com"
    seller_id: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
    marketplace_ids: Annotated[list[Annotated[str, StringConstraints(pattern=r"^[A-Z0-9]{5,20}$")]],
                               Field(min_length=1, max_length=50)]
    #: Amazon ships FBA (AMAZON) orders itself: by default only MERCHANT orders are imported.
    fulfilled_by: list[Literal["MERCHANT", "AMAZON"]] = Field(default_factory=lambda: ["MERCHANT"])
    #: The Amazon product type patchListingsItem needs for quantity updates.
    product_type: Annotated[str, StringConstraints(min_length=1, max_length=100)] = "PRODUCT"
    #: searchOrders' published usage plan; the client also adapts to ``x-amzn-RateLimit-Limit``.
    rate_limit: RateLimit = Field(default_factory=lambda: RateLimit(rate=0.0056, burst=20))
    page_size: Annotated[int, Field(ge=1, le=100)] = 100

    @field_validator("lwa_url")
    @classmethod
    def _lwa(cls, value: str) -> str:
        return check_base_url(value)


ChannelConfig = Annotated[ShopifyConfig | WooCommerceConfig | AmazonConfig, Field(discriminator="type")]


# -- credentials --------------------------------------------------------------------------------------


class ShopifyCredentials(Model, defer_build=True):
    model_config = SECRET_MODEL_CONFIG

    access_token: Secret = Field(description="Admin API access token (X-Shopify-Access-Token)")
    #: The app's client secret: Shopify signs webhooks with it (X-Shopify-Hmac-Sha256).
    webhook_secret: Secret | None = None


class WooCommerceCredentials(Model, defer_build=True):
    model_config = SECRET_MODEL_CONFIG

    consumer_key: Secret
    consumer_secret: Secret
    #: The secret set on the store's webhooks (X-WC-Webhook-Signature).
    webhook_secret: Secret | None = None


class AmazonCredentials(Model, defer_build=True):
    model_config = SECRET_MODEL_CONFIG

    client_id: Secret = Field(description="LWA client id")
    client_secret: Secret = Field(description="LWA client secret")
    refresh_token: Secret = Field(description="The seller's LWA refresh token")


CREDENTIALS_BY_TYPE: dict[ChannelType, type[Model]] = {
    ChannelType.SHOPIFY: ShopifyCredentials,
    ChannelType.WOOCOMMERCE: WooCommerceCredentials,
    ChannelType.AMAZON: AmazonCredentials,
}
Credentials = ShopifyCredentials | WooCommerceCredentials | AmazonCredentials


class StoredCredentialsInvalid(ValidationFailed):
    """Stored credentials that do not fit the channel's type (e.g. written for another type). The message
    names the fields at fault, never their values."""


def credentials_from(channel_type: ChannelType | str, data: dict[str, Any]) -> Credentials:
    """Stored credentials as the model of ``channel_type``; :class:`StoredCredentialsInvalid` (no values
    in its text, no pydantic error chained to it) when they do not fit."""
    try:
        return CREDENTIALS_BY_TYPE[ChannelType(channel_type)].model_validate(data)  # type: ignore[return-value]
    except ValidationError as err:
        problems = sorted({f"{'.'.join(str(p) for p in e['loc']) or '(all)'}: {e['type']}"
                           for e in err.errors(include_url=False, include_context=False, include_input=False)})
    raise StoredCredentialsInvalid(
        f"the stored credentials do not fit a {ChannelType(channel_type).value} channel ({'; '.join(problems)}); "
        "POST /channels with its `credentials`", field="credentials", problems=problems)


def reveal(credentials: Credentials) -> dict[str, str]:
    """The plain values, for the secret store only."""
    out = {}
    for name, value in credentials:
        if value is not None:
            out[name] = value.get_secret_value() if isinstance(value, SecretStr) else str(value)
    return out


# -- what POST /channels accepts: a configuration plus its credentials ---------------------------------


class ShopifyChannelIn(ShopifyConfig):
    model_config = SECRET_MODEL_CONFIG

    credentials: ShopifyCredentials | None = None


class WooCommerceChannelIn(WooCommerceConfig):
    model_config = SECRET_MODEL_CONFIG

    credentials: WooCommerceCredentials | None = None


class AmazonChannelIn(AmazonConfig):
    model_config = SECRET_MODEL_CONFIG

    credentials: AmazonCredentials | None = None


ChannelIn = Annotated[ShopifyChannelIn | WooCommerceChannelIn | AmazonChannelIn, Field(discriminator="type")]

CONFIG_BY_TYPE: dict[ChannelType, type[_ChannelBase]] = {
    ChannelType.SHOPIFY: ShopifyConfig,
    ChannelType.WOOCOMMERCE: WooCommerceConfig,
    ChannelType.AMAZON: AmazonConfig,
}


def split(channel: ShopifyChannelIn | WooCommerceChannelIn | AmazonChannelIn) -> tuple[Any, Credentials | None]:
    """A submitted channel as (configuration to store, credentials to keep apart)."""
    config_cls = CONFIG_BY_TYPE[channel.type]
    config = config_cls.model_validate(channel.model_dump(exclude={"credentials"}))
    return config, channel.credentials


def config_from(data: dict[str, Any]) -> ShopifyConfig | WooCommerceConfig | AmazonConfig:
    """A stored configuration (ignores attributes it does not know, e.g. from a newer version)."""
    config_cls = CONFIG_BY_TYPE[ChannelType(data["type"])]
    known = {k: v for k, v in data.items() if k in config_cls.model_fields}
    return config_cls.model_validate(known)  # type: ignore[return-value]
