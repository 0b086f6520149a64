"""What the channel slice needs from storage and the scheduler, as Protocols, and the import cursor it
keeps there. The AWS side implements them (:mod:`orderflow.adapters.channel_store`); which
implementation a running function gets is decided in :mod:`orderflow.wiring`, which hands them to the
slice through :class:`orderflow.channels.directory.Channels` (``ports.channels``).

- :class:`ChannelConfigs`: the channels' configurations (never credentials) and their import cursors,
  with the lease that lets one import of a channel run at a time;
- :class:`CredentialStore`: each channel's credentials, kept apart from its configuration;
- :class:`StoredChannelOrders`: which orders of a page of channel orders are stored already;
- :class:`WebhookEventLog`: which webhook deliveries were handled;
- :class:`ImportSchedules`: the schedule that imports a channel's orders.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel

from orderflow.errors import TransientError

if TYPE_CHECKING:
    from orderflow.channels.config import ChannelType, Credentials
    from orderflow.models import Order


class LeaseLost(TransientError):
    """Another import of the channel took over (this one ran past its lease): stop without writing."""


class RunState(BaseModel, defer_build=True):
    """A run in progress: where it is, so the next invocation continues from the same page."""

    updated_after: str
    token: str | None = None
    #: The channel's clock at the first page: the watermark once the run has read every page.
    bound: str | None = None
    pages: int = 0
    started_at: str


class Cursor(BaseModel, defer_build=True):
    """Where a channel's imports are: the watermark (orders changed before it are stored), the run in
    progress, the channel's rate-limit state, the last run's report and the import lease."""

    channel_id: str
    watermark: str | None = None
    run: RunState | None = None
    rate: dict[str, Any] | None = None
    last_run: dict[str, Any] | None = None
    lease_owner: str | None = None
    lease_until: float | None = None


class ChannelConfigs(Protocol):
    """The channels' configurations and import cursors (orderflow.adapters.channel_store.ChannelStore)."""

    def put(self, config: Any) -> tuple[Any, bool]: ...
    def get(self, channel_id: str) -> Any: ...
    def list(self) -> list[Any]: ...
    def delete(self, channel_id: str) -> None: ...
    def cursor(self, channel_id: str) -> Cursor: ...
    def acquire(self, channel_id: str, owner: str, lease_seconds: float) -> Cursor | None:
        """Take the channel's import lease; None if another import holds it."""
        ...
    def save(self, cursor: Cursor, owner: str, lease_seconds: float) -> None:
        """Write the cursor's position if ``owner`` still holds the lease (:class:`LeaseLost` if not)."""
        ...
    def release(self, channel_id: str, owner: str, last_run: dict[str, Any]) -> None: ...


class CredentialStore(Protocol):
    def put(self, channel_id: str, credentials: Credentials) -> str: ...

    def get(self, channel_id: str, channel_type: ChannelType | str) -> Credentials | None: ...

    def delete(self, channel_id: str) -> None: ...


class StoredChannelOrders(Protocol):
    def lookup(self, channel_id: str, external_ids: list[str]) -> dict[str, Order]:
        """external id -> stored order, for those of ``external_ids`` that are stored."""
        ...


class WebhookEventLog(Protocol):
    def seen(self, channel_id: str, event_id: str) -> bool: ...
    def remember(self, channel_id: str, event_id: str, topic: str) -> bool:
        """Record the event; False if it was recorded already."""
        ...


class ImportSchedules(Protocol):
    enabled: bool

    def upsert(self, config: Any) -> str | None: ...
    def delete(self, channel_id: str) -> None: ...
