"""The sales channels as the rest of orderflow uses them (``ports.channels``, the
:class:`orderflow.ports.ChannelDirectory` port): their configurations and a client for each, built on
first use (credentials are read then, never kept in a table); and, for the channel slice itself, the
stores behind them (:mod:`orderflow.channels.ports`), which :mod:`orderflow.wiring` hands in."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # the stores' protocols (their module's pydantic models are not needed to hold them)
    from orderflow.channels.ports import (
        ChannelConfigs,
        CredentialStore,
        ImportSchedules,
        StoredChannelOrders,
        WebhookEventLog,
    )


class Channels:
    #: Channel configurations are read at most this often per container (every stock change asks).
    CACHE_SECONDS = 5.0

    def __init__(self, *, store: Callable[[], ChannelConfigs], credentials: Callable[[], CredentialStore],
                 stored_orders: Callable[[], StoredChannelOrders], webhook_events: Callable[[], WebhookEventLog],
                 schedules: Callable[[], ImportSchedules]) -> None:
        self._new_store = store
        self._credentials = credentials
        self._stored_orders = stored_orders
        self._webhook_events = webhook_events
        self._new_schedules = schedules
        self._store: ChannelConfigs | None = None
        self._schedules: ImportSchedules | None = None
        self._cached: tuple[float, list[Any]] | None = None

    # -- the stores (built on first use, once; the credentials and the per-run ones at every use) ----------

    @property
    def store(self) -> ChannelConfigs:
        """Configurations and import cursors, read uncached."""
        if self._store is None:
            self._store = self._new_store()
        return self._store

    def credentials(self) -> CredentialStore:
        # Chosen per call, not cached: the local stack switches to its credentials file after start-up.
        return self._credentials()

    def stored_orders(self) -> StoredChannelOrders:
        return self._stored_orders()

    def webhook_events(self) -> WebhookEventLog:
        return self._webhook_events()

    def schedules(self) -> ImportSchedules:
        if self._schedules is None:
            self._schedules = self._new_schedules()
        return self._schedules

    # -- the ChannelDirectory port ----------------------------------------------------------------------

    def list(self, *, fresh: bool = False) -> list[Any]:
        now = time.monotonic()
        if fresh or self._cached is None or now - self._cached[0] > self.CACHE_SECONDS:
            self._cached = (now, self.store.list())
        return self._cached[1]

    def find(self, channel_id: str) -> Any | None:
        """The channel's configuration; read again before saying it is not there (connected just now)."""
        for fresh in (False, True):
            found = next((c for c in self.list(fresh=fresh) if c.channel_id == channel_id), None)
            if found is not None:
                return found
        return None

    def client(self, config: Any, **options: Any) -> Any:
        """A client of the channel; ``options`` (``retry``, ``timeout`` ...) as
        :func:`orderflow.channels.clients.client_for` takes."""
        # imported on first use: the channel clients are not loaded at every function's cold start
        from orderflow.channels.clients import client_for

        return client_for(config, self.credentials().get(config.channel_id, config.type), **options)
