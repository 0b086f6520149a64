"""The ports the domain talks through, owned by the domain: what it needs from storage, the workflow
engine and the outside world, as Protocols. The AWS adapters (orderflow.adapters and the slices'
stores) implement them; tests pass in-memory ones (tests/unit/memory_ports.py). Which adapters a
running function gets is decided in one place: :mod:`orderflow.wiring`.

The domain modules import this one only for its types, never an adapter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

if TYPE_CHECKING:
    from orderflow.models import AllocatedLine, Document, Order, OrderStatus, StockLevel, Warehouse
    from orderflow.queues import Queue
    from orderflow.rules.allocation import AllocationPolicy

D = TypeVar("D", bound="Document")


class OrderStore(Protocol):
    """Orders, each one item, written with optimistic concurrency."""

    def get(self, order_id: str) -> Order: ...
    def find_by_channel_ref(self, channel: str, external_id: str) -> Order | None: ...
    def create(self, order: Order) -> tuple[Order, bool]: ...
    def create_many(self, orders: list[Order]) -> list[tuple[Order, bool] | None]:
        """Create these together, in as few round trips as the store allows: each (order, created now), or
        (the stored order, False) when it was stored already, or None when it could not be written with
        the others (nothing of it written: write it with :meth:`create`)."""
        ...
    def update(self, order_id: str, change: Callable[[Order], Any], attempts: int = 8, *,
               current: Order | None = None) -> Order:
        """Change the order and save it, again on a concurrent update. ``current``: the order as the caller
        just read or saved it; the first attempt starts from a copy of it instead of reading it again."""
        ...
    def list_by_status(self, status: OrderStatus, limit: int = 50, cursor: dict | None = None,
                       oldest_first: bool = False) -> tuple[list[Order], dict | None]: ...
    def count_by_status(self, status: OrderStatus) -> int: ...


class StockLedger(Protocol):
    """Stock levels per SKU and warehouse; every change is a ledger entry applied exactly once per key.
    ``listeners`` are told the SKUs of every change."""

    listeners: list[Callable[[list[str]], None]]

    def levels(self, sku: str) -> list[StockLevel]: ...
    def available_for(self, skus: Iterable[str]) -> dict[str, dict[str, int]]:
        """The planning read: units available of each SKU by warehouse (``{}`` for an SKU with no level)."""
        ...
    def known_skus(self, skus: Iterable[str]) -> set[str]: ...
    def all_levels(self) -> dict[str, list[StockLevel]]:
        """Every SKU's levels (one read of the whole ledger, eventually consistent)."""
        ...
    def reserve(self, key: str, lines: list[AllocatedLine]) -> bool: ...
    def ship(self, key: str, lines: list[AllocatedLine]) -> bool: ...
    def release(self, key: str, lines: list[AllocatedLine]) -> bool: ...


class SettingsDocs(Protocol):
    """Warehouses, the allocation policy and other small documents."""

    table: str

    def warehouses(self) -> list[Warehouse]: ...
    def warehouse(self, warehouse_id: str) -> Warehouse: ...
    def allocation_policy(self) -> AllocationPolicy: ...
    def get_doc(self, entity: str, doc_id: str, model: type[D]) -> D | None: ...
    def list_docs(self, entity: str, model: type[D]) -> list[D]: ...
    def put_doc(self, entity: str, doc_id: str, doc: Document, *, new: bool = False) -> None: ...


class Documents(Protocol):
    """Small documents as plain dicts by kind (``entity``) and id, beside the typed ones of
    :class:`SettingsDocs` (orderflow.adapters.documents): the slices' records, stock sync's markers."""

    def get(self, entity: str, doc_id: str) -> dict[str, Any] | None: ...
    def put(self, entity: str, doc_id: str, data: dict[str, Any]) -> None: ...
    def query(self, entity: str, *, consistent: bool = False) -> list[dict[str, Any]]: ...
    def by_id(self, entity: str) -> dict[str, dict[str, Any]]:
        """Every document of one kind, by its id."""
        ...
    def claim(self, entity: str, doc_id: str, data: dict[str, Any], *, expiry: str, now: float,
              expires_at: float) -> bool:
        """Write unless a live one (``expiry`` not before ``now``) is there; False if one is."""
        ...
    def delete(self, entity: str, doc_id: str, *, where: dict[str, str] | None = None, expiry: str | None = None,
               expired_before: float | None = None) -> bool:
        """Delete it if it matches (``where``; expired before the time); False if it did not."""
        ...


class Queues(Protocol):
    """The SQS queues of orderflow.queues (orderflow.adapters.queues)."""

    def url(self, queue: Queue) -> str | None: ...
    def send(self, queue: Queue, body: dict[str, Any], *, group: str | None = None,
             dedup_id: str | None = None) -> None: ...


class Workflow(Protocol):
    """The order's execution: started once per attempt, resumed or abandoned through task tokens."""

    def start(self, order_id: str, attempt: int = 1) -> str | None: ...
    def status(self, order_id: str, attempt: int = 1) -> str | None: ...
    def execution_status(self, execution_id: str) -> str | None:
        """The status of the execution with this id (what a waiting step's message carries); None if
        there is none."""
        ...
    def resume(self, task_token: str, output: dict[str, Any]) -> bool: ...
    def abandon(self, task_token: str, error: str, cause: str) -> bool: ...
    def stop(self, order_id: str, attempt: int, error: str, cause: str) -> bool: ...


class PurchaseOrders(Protocol):
    def draft_for_backorders(self, *args: Any, **kwargs: Any) -> Any: ...


class CarrierHub(Protocol):
    """Carrier accounts, label providers and label storage."""

    store: Any


class ChannelDirectory(Protocol):
    """Connected sales channels: their configurations and clients (orderflow.channels.directory, which
    also carries the channel slice's own stores)."""

    def list(self, *, fresh: bool = False) -> list[Any]:
        """The configurations; ``fresh``: read now, not from a cache of a few seconds."""
        ...
    def find(self, channel_id: str) -> Any | None: ...
    def client(self, config: Any, **options: Any) -> Any: ...


class Secrets(Protocol):
    """Secrets by name, each a JSON object: a channel's, a supplier's or a carrier account's credentials
    (orderflow.adapters.secrets). Reads may be cached; a put or delete through the store is seen by its
    next read. ``put`` and ``ref`` answer where the secret is kept, never its value."""

    def get(self, name: str) -> dict[str, Any] | None: ...
    def put(self, name: str, value: dict[str, Any], *, description: str = "") -> str: ...
    def delete(self, name: str) -> None: ...
    def ref(self, name: str) -> str: ...


class FulfilmentRoute(Protocol):
    """A route whose shipments leave our hands (Amazon FBA, a supplier or 3PL): it is asked before an
    order is cancelled (it may refuse: 409, or be unreachable: 503) and told after."""

    def recall(self, order: Order, ports: Ports) -> None: ...
    def cancelled(self, order: Order, ports: Ports) -> bool:
        """Tell the fulfiller; True if that changed the order (read it again)."""
        ...


@dataclass
class Ports:
    orders: OrderStore
    inventory: StockLedger
    settings: SettingsDocs
    workflow: Workflow
    purchasing: PurchaseOrders
    #: Carrier accounts, label providers and label storage; nothing is connected until a label is bought.
    carriers: CarrierHub = field(default=None, kw_only=True)  # type: ignore[assignment]
    #: Sales channels: configurations and clients (order import, stock auto-sync, tracking push).
    channels: ChannelDirectory = field(default=None, kw_only=True)  # type: ignore[assignment]
    #: Small untyped documents in the settings table (stock sync's pending markers).
    documents: Documents = field(default=None, kw_only=True)  # type: ignore[assignment]
    #: The SQS queues orderflow sends to (stock sync's requests).
    queues: Queues = field(default=None, kw_only=True)  # type: ignore[assignment]
    #: The routes that hand shipments to someone else, asked around a cancel (orderflow.wiring).
    routes: tuple[FulfilmentRoute, ...] = field(default=(), kw_only=True)
