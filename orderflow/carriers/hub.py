"""The carriers port: accounts, keys, label storage and a provider per account, each built on first use.

Creating a :class:`Carriers` costs nothing (no client, no import of httpx), so every handler's
``default_ports()`` can carry one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from orderflow.errors import ValidationFailed

if TYPE_CHECKING:
    from orderflow.carriers.accounts import CarrierAccount, CarrierAccounts, KeyStore
    from orderflow.carriers.base import LabelProvider
    from orderflow.carriers.storage import LabelStore

#: Builds a provider for an account and its key (tests may swap it).
ProviderFactory = Callable[["CarrierAccount", "str | None"], "LabelProvider"]


def build_provider(account: CarrierAccount, api_key: str | None) -> LabelProvider:
    from orderflow.carriers.accounts import CarrierType
    from orderflow.carriers.http import RetryPolicy

    retry = RetryPolicy(max_attempts=account.max_attempts)
    common: dict[str, Any] = {"timeout": float(account.timeout_seconds), "retry": retry,
                              "display_name": account.display_name}
    if account.type == CarrierType.SHIPPO:
        from orderflow.carriers.shippo import ShippoClient

        if not api_key:
            raise _no_key(account)
        return ShippoClient(api_key, account.base_url, **common)
    from orderflow.carriers.easypost import EasyPostClient

    if account.type == CarrierType.SANDBOX:
        return EasyPostClient(api_key or "sandbox", account.base_url, **common)
    if not api_key:
        raise _no_key(account)
    return EasyPostClient(api_key, account.base_url, **common)


def _no_key(account: CarrierAccount) -> ValidationFailed:
    return ValidationFailed(f"carrier account {account.carrier_id} has no API key; set one with "
                            f"PUT /carriers/{account.carrier_id}", field="carrier_id",
                            carrier_id=account.carrier_id)


class Carriers:
    def __init__(self, settings: Any, *, keys: KeyStore | None = None, store: LabelStore | None = None,
                 provider_factory: ProviderFactory | None = None) -> None:
        self._settings = settings
        self._keys = keys
        self._store = store
        self._accounts: CarrierAccounts | None = None
        self.provider_factory: ProviderFactory = provider_factory or build_provider

    @property
    def accounts(self) -> CarrierAccounts:
        if self._accounts is None:
            from orderflow.carriers.accounts import CarrierAccounts

            self._accounts = CarrierAccounts(self._settings)
        return self._accounts

    @property
    def keys(self) -> KeyStore:
        if self._keys is None:
            from orderflow.carriers.accounts import default_keys

            self._keys = default_keys()
        return self._keys

    @property
    def store(self) -> LabelStore:
        if self._store is None:
            from orderflow.carriers.storage import default_label_store

            self._store = default_label_store()
        return self._store

    def provider(self, account: CarrierAccount) -> LabelProvider:
        key = self.keys.get(account.carrier_id)
        return self.provider_factory(account, key.get_secret_value() if key else None)
