"""Stock auto-sync: after a stock change, every channel with ``auto_sync_stock`` gets the SKU's new
available quantity (summed over the warehouses that feed it).

- **Coalescing.** A change asks for a sync of its SKUs (:func:`request_sync`). The first request for a
  SKU writes a pending marker and sends one message to the stock-sync queue, which delays it by the
  window; later requests find the marker and send nothing. So a burst on one SKU becomes one update.
- **Newest value wins.** The queue is FIFO, grouped by SKU: one SKU's syncs run one at a time, in
  order. A sync first clears the marker (a change from then on schedules another sync), then reads
  the stock as it is now: whatever it pushes is at least as new as every change before it.
- **Failures** fail the message: SQS retries it, then moves it to the DLQ; orders never wait for it.
  What was already pushed is remembered per channel and SKU, so a retry pushes only what is missing.
- **Missed changes** (a crash between a stock write and its request) are caught by
  :func:`sync_all`, run on a schedule and by ``orderflow sync-stock``.
- **A lost request never blocks later ones.** A failed send deletes its marker again (and raises); a
  marker older than :data:`MARKER_STALE_SECONDS` (its message was lost) is replaced by the next change,
  and the sweep clears stale markers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable
from typing import Any

from orderflow.models import Document, StockLevel, WarehouseKind, new_id, utcnow
from orderflow.ports import Ports
from orderflow.queues import STOCK_SYNC

log = logging.getLogger(__name__)

PENDING = "stock_sync_pending"
PUSHED = "stock_sync_pushed"
#: The pending marker's field: when it counts as lost (epoch seconds).
STALE_AFTER = "stale_after"
#: A pending marker this old has lost its message (the delay plus a consumer's retries are far shorter):
#: the next change replaces it and sends again; the sweep deletes it.
MARKER_STALE_SECONDS = STOCK_SYNC.delay_seconds + 900


class Pushed(Document):
    channel_id: str
    sku: str
    quantity: int
    at: str


def request_sync(skus: Iterable[str], ports: Ports) -> list[str]:
    """Ask for a sync of these SKUs; returns the SKUs a message was sent for (the rest were pending)."""
    if not ports.queues.url(STOCK_SYNC) or not any(getattr(c, "auto_sync_stock", False)
                                                   for c in ports.channels.list()):
        return []
    sent = []
    for sku in dict.fromkeys(skus):
        marker = new_id("sync")
        now = time.time()
        # a marker without stale_after was left by a release whose sends could fail for good
        if not ports.documents.claim(PENDING, sku, {"marker": marker, "at": utcnow()}, expiry=STALE_AFTER,
                                     now=now, expires_at=now + MARKER_STALE_SECONDS):
            continue  # a sync of this SKU is already on its way and will read the newest stock
        try:
            ports.queues.send(STOCK_SYNC, {"sku": sku, "marker": marker}, group=sku, dedup_id=marker)
        except Exception:
            _drop_marker(sku, ports, marker)  # nothing is on its way: the next change must send again
            raise
        sent.append(sku)
    return sent


def _drop_marker(sku: str, ports: Ports, marker: str | None = None, *, stale_before: float | None = None) -> None:
    """Delete the SKU's pending marker: only ``marker`` (when given), only one stale before the time."""
    ports.documents.delete(PENDING, sku, where={"marker": marker} if marker is not None else None,
                           expiry=STALE_AFTER, expired_before=stale_before)


def channel_quantity(levels: list[StockLevel], feeding: set[str]) -> int:
    return max(0, sum(level.available for level in levels if level.warehouse_id in feeding))


def feeding_warehouses(channel: Any, ports: Ports) -> set[str]:
    """The warehouses whose stock a channel sells: its own list, or every warehouse but FBA (Amazon
    counts FBA stock itself)."""
    chosen = getattr(channel, "stock_warehouse_ids", None)
    if chosen:
        return set(chosen)
    return {w.warehouse_id for w in ports.settings.warehouses() if w.kind != WarehouseKind.FBA}


def auto_sync_channels(ports: Ports) -> list[tuple[Any, set[str]]]:
    """The channels that sync stock, each with the warehouses that feed it (read once per sweep)."""
    return [(channel, feeding_warehouses(channel, ports)) for channel in ports.channels.list()
            if getattr(channel, "auto_sync_stock", False)]


def sync_sku(sku: str, ports: Ports, *, clear_marker: bool = True,
             channels: list[tuple[Any, set[str]]] | None = None) -> dict[str, int]:
    """Push the SKU's available quantity to every auto-sync channel that does not have it yet
    (``channels``: :func:`auto_sync_channels`, when the caller has read them already).
    Returns channel id -> quantity pushed. Raises if any channel failed (after trying them all)."""
    if clear_marker:
        _drop_marker(sku, ports)
    levels = ports.inventory.levels(sku)
    pushed: dict[str, int] = {}
    failures: list[str] = []
    for channel, feeding in (auto_sync_channels(ports) if channels is None else channels):
        quantity = channel_quantity(levels, feeding)
        key = f"{channel.channel_id}#{sku}"
        last = ports.settings.get_doc(PUSHED, key, Pushed)
        if last is not None and last.quantity == quantity:
            continue
        try:
            ports.channels.client(channel).push_inventory(
                sku, quantity, idempotency_key=f"{key}#{quantity}#{last._version if last else 0}",
                expected_quantity=last.quantity if last else None)
        except Exception as exc:  # noqa: BLE001 - every channel gets its turn; the message is retried
            log.warning("stock sync of %s to %s failed: %s", sku, channel.channel_id, exc)
            failures.append(f"{channel.channel_id}: {exc}")
            continue
        record = Pushed(channel_id=channel.channel_id, sku=sku, quantity=quantity, at=utcnow())
        record._version = last._version if last else 0
        ports.settings.put_doc(PUSHED, key, record)
        pushed[channel.channel_id] = quantity
    if failures:
        from orderflow.errors import TransientError

        raise TransientError(f"stock sync of {sku} failed for " + "; ".join(failures), sku=sku)
    return pushed


def sync_all(ports: Ports) -> dict[str, dict[str, int]]:
    """Push every stocked SKU that a channel does not have yet (the scheduled catch-up).

    It reads in bulk: the channels once, the pending markers, what was pushed and every SKU's levels in
    one read each; only a SKU some channel lacks is synced (read again, consistently, and pushed). A change
    after these reads asks for its own sync."""
    channels = auto_sync_channels(ports)  # once, not once per SKU
    if not channels:
        return {}
    now = time.time()
    for sku, marker in ports.documents.by_id(PENDING).items():
        if float(marker.get(STALE_AFTER) or 0) < now:  # lost (or left without stale_after by an old release)
            _drop_marker(sku, ports, stale_before=now)  # conditional: a marker renewed meanwhile stays
    pushed = {(doc.get("channel_id"), doc.get("sku")): doc.get("quantity") for doc in ports.documents.query(PUSHED)}
    out = {}
    for sku, levels in ports.inventory.all_levels().items():
        if all(pushed.get((channel.channel_id, sku)) == channel_quantity(levels, feeding)
               for channel, feeding in channels):
            continue  # every channel has this quantity already
        try:
            done = sync_sku(sku, ports, clear_marker=False, channels=channels)
        except Exception as exc:  # noqa: BLE001 - one SKU's failure must not stop the sweep
            log.warning("stock sync sweep: %s", exc)
            continue
        if done:
            out[sku] = done
    return out
