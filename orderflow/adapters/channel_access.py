"""The sales channels as the rest of orderflow uses them: their configurations and a client for
each, built on first use (credentials are read then, never kept in a table)."""

from __future__ import annotations

import time
from typing import Any


class Channels:
    #: Channel configurations are read at most this often per container (every stock change asks).
    CACHE_SECONDS = 5.0

    def __init__(self) -> None:
        self._store: Any = None
        self._cached: tuple[float, list[Any]] | None = None

    def _store_(self) -> Any:
        if self._store is None:
            from orderflow.adapters.channel_store import ChannelStore

            self._store = ChannelStore()
        return self._store

    def list(self, *, fresh: bool = False) -> list[Any]:
        now = time.monotonic()
        if fresh or self._cached is None or now - self._cached[0] > self.CACHE_SECONDS:
            self._cached = (now, self._store_().list())
        return self._cached[1]

    def find(self, channel_id: str) -> Any | None:
        """The channel's configuration; read again before saying it is not there (connected just now)."""
        for fresh in (False, True):
            found = next((c for c in self.list(fresh=fresh) if c.channel_id == channel_id), None)
            if found is not None:
                return found
        return None

    def client(self, config: Any, **options: Any) -> Any:
        """A client of the channel; ``options`` (``retry``, ``timeout`` ...) as :func:`client_for` takes."""
        from orderflow.adapters.channel_store import default_credentials
        from orderflow.channels.clients import client_for

        # Chosen per call, not cached: the local stack switches to its credentials file after start-up.
        credentials = default_credentials().get(config.channel_id, config.type)
        return client_for(config, credentials, **options)
