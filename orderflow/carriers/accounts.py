"""Carrier accounts: seller configuration in the settings table, API keys kept elsewhere.

- the account (``entity = "carrier"``, ``id = <carrier id>``): type, base URL, default service, the
  ship-from address (default: the shipment's warehouse address), timeouts. Never a key.
- the API key: ``ORDERFLOW_CARRIER_KEY_<CARRIER_ID>`` in the environment if set (CI, a developer's
  shell; :func:`env_key_name` gives each carrier id its own name); else, with ``ORDERFLOW_CARRIER_CREDENTIALS_FILE`` set (the local stack), a 0600 JSON file;
  else AWS Secrets Manager, secret ``orderflow/carriers/<carrier id>`` (prefix from
  ``ORDERFLOW_CARRIER_SECRET_PREFIX``) holding ``{"api_key": ...}``; the file and the secret are the one
  secrets store (orderflow.adapters.secrets).

Keys are ``SecretStr`` in every model, so they print as ``**********`` in reprs, logs and errors.
"""

from __future__ import annotations

import os
import re
from enum import StrEnum
from typing import Annotated, Protocol

from pydantic import ConfigDict, Field, SecretStr, StringConstraints, field_validator, model_validator

from orderflow import config, outbound
from orderflow.adapters.secrets import SecretsHome, SliceSecrets
from orderflow.errors import NotFound, ValidationFailed
from orderflow.models import Address, Document, Identifier, Model, ShortText, utcnow

ENTITY = "carrier"
CREDENTIALS_FILE_ENV = config.CARRIER_CREDENTIALS_FILE.name
SECRET_PREFIX_ENV = config.CARRIER_SECRET_PREFIX.name
DEFAULT_SECRET_PREFIX = "orderflow/carriers/"
KEY_ENV_PREFIX = config.CARRIER_KEY_PREFIX
#: The local stack tells where its sandbox carrier listens (the default base URL of a sandbox account).
SANDBOX_URL_ENV = config.SANDBOX_CARRIER_URL.name


class CarrierType(StrEnum):
    EASYPOST = "easypost"
    SHIPPO = "shippo"
    #: The local stack's sandbox carrier (EasyPost's API shape, no real postage).
    SANDBOX = "sandbox"


DEFAULT_BASE_URLS = {CarrierType.EASYPOST: "https://api.easypost.com", CarrierType.SHIPPO: "https://api.goshippo.com"}
DISPLAY_NAMES = {CarrierType.EASYPOST: "EasyPost", CarrierType.SHIPPO: "Shippo", CarrierType.SANDBOX: "Sandbox"}


def check_base_url(value: str) -> str:
    """``https://`` to a public host; plain ``http://`` only to the local sandbox carrier (orderflow.outbound)."""
    return outbound.check_base_url(value, "https://api.easypost.com")


BaseUrl = Annotated[str, StringConstraints(strip_whitespace=True, min_length=8, max_length=300)]
Service = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]


# ``defer_build=True`` (here and below): pydantic builds a model's validator when it is first used, not at
# import, so a function's cold start pays only for the models it validates (issue 13).
class _AccountFields(Model, defer_build=True):
    type: CarrierType
    name: ShortText | None = None
    base_url: BaseUrl | None = Field(None, description="The carrier API's root; default: the carrier's public API")
    default_service: Service | None = Field(
        None, description='Service bought when a request names none, e.g. "Priority" or "USPS:Priority"; '
                          "default: the cheapest rate")
    from_address: Address | None = Field(None, description="Ship-from address; default: the warehouse's address")
    is_default: bool = Field(False, description="Used when a label request names no carrier_id")
    timeout_seconds: Annotated[int, Field(ge=1, le=25)] = Field(15, description="Per HTTP call")
    max_attempts: Annotated[int, Field(ge=1, le=6)] = Field(4, description="Tries per call on 429/5xx")

    @field_validator("base_url")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        return check_base_url(value) if value else value


class CarrierAccountIn(_AccountFields):
    """``PUT /carriers/{carrier_id}``: the account, and its API key (kept out of the table; never echoed)."""

    #: A key that fails validation is never repeated in the error's text.
    model_config = ConfigDict(hide_input_in_errors=True)

    api_key: Annotated[SecretStr, Field(min_length=1, max_length=512)] | None = Field(
        None, description="Required the first time for easypost and shippo; omit it to keep the stored key")

    @model_validator(mode="after")
    def _sandbox_needs_url(self) -> CarrierAccountIn:
        if self.type != CarrierType.SANDBOX and not self.base_url:
            self.base_url = DEFAULT_BASE_URLS[self.type]
        return self


class CarrierAccount(_AccountFields, Document):
    carrier_id: Identifier
    base_url: BaseUrl  # type: ignore[assignment] - always set once stored
    created_at: str = Field(default_factory=utcnow)
    updated_at: str = Field(default_factory=utcnow)

    @property
    def display_name(self) -> str:
        return self.name or DISPLAY_NAMES[self.type]

    def public(self, *, has_api_key: bool, key_ref: str | None) -> dict:
        out = self.model_dump(mode="json")
        out.update(has_api_key=has_api_key, api_key_ref=key_ref)
        return out


# -- the accounts ---------------------------------------------------------------------------------


class SettingsDocs(Protocol):
    """What this needs of :class:`orderflow.adapters.dynamodb.SettingsRepository`."""

    def get_doc(self, entity: str, doc_id: str, model: type) -> object | None: ...

    def put_doc(self, entity: str, doc_id: str, doc: Document, *, new: bool = False) -> None: ...

    def list_docs(self, entity: str, model: type) -> list: ...


class CarrierAccounts:
    def __init__(self, settings: SettingsDocs) -> None:
        self.settings = settings

    def get(self, carrier_id: str) -> CarrierAccount:
        account = self.settings.get_doc(ENTITY, carrier_id, CarrierAccount)
        if account is None:
            raise NotFound(f"carrier account {carrier_id} not found; add it with PUT /carriers/{carrier_id}",
                           field="carrier_id", carrier_id=carrier_id)
        return account  # type: ignore[return-value]

    def find(self, carrier_id: str) -> CarrierAccount | None:
        return self.settings.get_doc(ENTITY, carrier_id, CarrierAccount)  # type: ignore[return-value]

    def list(self) -> list[CarrierAccount]:
        return sorted(self.settings.list_docs(ENTITY, CarrierAccount), key=lambda a: a.carrier_id)

    def put(self, account: CarrierAccount) -> tuple[CarrierAccount, bool]:
        """Create or replace (keeps ``created_at``); making it the default takes that from the others."""
        current = self.find(account.carrier_id)
        if current is not None:
            account.created_at = current.created_at
            account._version = current._version
        account.updated_at = utcnow()
        self.settings.put_doc(ENTITY, account.carrier_id, account)
        if account.is_default:
            for other in self.list():
                if other.carrier_id != account.carrier_id and other.is_default:
                    other.is_default = False
                    self.settings.put_doc(ENTITY, other.carrier_id, other)
        return account, current is None

    def choose(self, carrier_id: str | None) -> CarrierAccount:
        """The named account; else the default one; else the only one."""
        if carrier_id:
            return self.get(carrier_id)
        accounts = self.list()
        defaults = [a for a in accounts if a.is_default]
        if len(defaults) == 1:
            return defaults[0]
        if len(accounts) == 1:
            return accounts[0]
        if not accounts:
            raise ValidationFailed("no carrier account is configured; add one with PUT /carriers/{carrier_id}",
                                   field="carrier_id")
        raise ValidationFailed(f"{len(accounts)} carrier accounts and none is the default; name one with carrier_id",
                               field="carrier_id", choices=[a.carrier_id for a in accounts])


# -- API keys -------------------------------------------------------------------------------------


class KeyStore(Protocol):
    def put(self, carrier_id: str, api_key: SecretStr) -> str: ...

    def get(self, carrier_id: str) -> SecretStr | None: ...

    def ref(self, carrier_id: str) -> str: ...


_PLAIN_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_ESCAPES = {"_": "__", "-": "_0"}


def env_key_name(carrier_id: str) -> str:
    """The environment variable holding ``carrier_id``'s key; distinct ids get distinct names.

    An id of lower-case letters, digits and ``-`` is upper-cased with ``-`` as ``_`` (``ups-1`` ->
    ``ORDERFLOW_CARRIER_KEY_UPS_1``). Any other id (with ``_`` or upper-case letters, which would
    otherwise collide: ``ups_1``, ``UPS-1``) starts with ``_`` and escapes: ``_`` -> ``__``, ``-`` ->
    ``_0``, an upper-case letter X -> ``_X`` (``ups_1`` -> ``ORDERFLOW_CARRIER_KEY__UPS__1``). Plain
    names never start with ``_``, and the escapes are a prefix-free code, so the mapping is injective.
    """
    if _PLAIN_ID.match(carrier_id):
        return KEY_ENV_PREFIX + carrier_id.upper().replace("-", "_")
    out = []
    for char in carrier_id:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif "A" <= char <= "Z":
            out.append("_" + char)
        elif "a" <= char <= "z" or "0" <= char <= "9":
            out.append(char.upper())
        else:
            raise ValueError(f"not a carrier id: {carrier_id!r}")
    return KEY_ENV_PREFIX + "_" + "".join(out)


class CarrierKeys(SliceSecrets):
    """Carrier accounts' API keys in the secrets store (orderflow.adapters.secrets), named by the carrier id:
    ``{"api_key": ...}``. Secret ``orderflow/carriers/<carrier id>``; the local stack's
    ``carrier-credentials.json``."""

    home = SecretsHome(file_env=CREDENTIALS_FILE_ENV, prefix_env=SECRET_PREFIX_ENV,
                       default_prefix=DEFAULT_SECRET_PREFIX)

    def put(self, carrier_id: str, api_key: SecretStr) -> str:
        return self.secrets.put(carrier_id, {"api_key": api_key.get_secret_value()},
                                description=f"orderflow carrier account {carrier_id}")

    def get(self, carrier_id: str) -> SecretStr | None:
        value = (self.secrets.get(carrier_id) or {}).get("api_key")
        return SecretStr(value) if value else None


#: One secret per account, ``orderflow/carriers/<carrier id>``; values read are cached a minute per process.
SecretsManagerKeys = CarrierKeys.in_secrets_manager
#: The local stack's keys: one JSON file, readable by its owner only.
FileKeys = CarrierKeys.in_file


class EnvFirst:
    """``ORDERFLOW_CARRIER_KEY_<ID>`` wins over the store (for CI and a developer's shell)."""

    def __init__(self, store: KeyStore) -> None:
        self.store = store

    def ref(self, carrier_id: str) -> str:
        name = env_key_name(carrier_id)
        return f"env:{name}" if os.environ.get(name) else self.store.ref(carrier_id)

    def put(self, carrier_id: str, api_key: SecretStr) -> str:
        return self.store.put(carrier_id, api_key)

    def get(self, carrier_id: str) -> SecretStr | None:
        value = os.environ.get(env_key_name(carrier_id))
        return SecretStr(value) if value else self.store.get(carrier_id)


def default_keys() -> KeyStore:
    """The key in the environment, else in the file ``ORDERFLOW_CARRIER_CREDENTIALS_FILE`` names (the local
    stack), else in Secrets Manager."""
    return EnvFirst(CarrierKeys())
