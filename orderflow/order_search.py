"""Finding orders for the API's list (``GET /orders``) and the console: newest first, paged, filtered.

DynamoDB-friendly by construction:
- exact lookups first: an order id is one ``GetItem``; a channel order id (external id) is one
  ``BatchGetItem`` per connected channel (or for the one channel named as ``<channel>:<external id>``)
  of the order's derived id and of the ``ref#<channel>#<external id>`` guard item of an older order; an
  external id of another channel is found by the scan;
- otherwise the ``by_status`` index (status + created_at), one lazy query per status merged newest
  first, filtered in the function (SKU on a line, customer or ship-to name) and bounded by a scan
  budget: a search that has not found a page's worth within the budget answers what it found and a
  ``next`` token that continues from where it stopped.

The page token is opaque to callers: the (created_at, order_id) of the last order given, base64url JSON.
"""

from __future__ import annotations

import base64
import binascii
import heapq
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass

from orderflow.errors import NotFound, ValidationFailed
from orderflow.models import Order, OrderStatus
from orderflow.ports import Ports

#: Orders read (and filtered) at most per search request.
SCAN_BUDGET = 1000
#: Index page size while searching (plain listing reads limit + 1).
SEARCH_PAGE = 100
_ID_LIKE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-.#:]{0,79}$")


@dataclass(frozen=True)
class Page:
    orders: list[Order]
    next: str | None
    scanned: int


def encode_token(order: Order) -> str:
    raw = json.dumps({"c": order.created_at, "o": order.order_id}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_token(token: str) -> tuple[str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        created_at, order_id = data["c"], data["o"]
        if not isinstance(created_at, str) or not isinstance(order_id, str):
            raise TypeError
    except (ValueError, TypeError, KeyError, binascii.Error) as err:
        raise ValidationFailed("next: not a page token this API gave out", field="query.next") from err
    return created_at, order_id


def _key(order: Order) -> tuple[str, str]:
    return order.created_at, order.order_id


def _newest_first(ports: Ports, status: OrderStatus, before: tuple[str, str] | None, page: int) -> Iterator[Order]:
    """Orders in ``status`` strictly older than ``before``, newest first, read a page at a time."""
    cursor = None
    while True:
        batch, cursor = ports.orders.list_by_status(status, limit=page, cursor=cursor,
                                                    created_at_most=before[0] if before else None)
        for order in batch:
            if before is None or _key(order) < before:
                yield order
        if not cursor:
            return


def matches(order: Order, query: str) -> bool:
    """Exact (any case) order id, external id or SKU; customer or ship-to name containing the words."""
    q = query.casefold()
    if q in (order.order_id.casefold(), (order.external_id or "").casefold()):
        return True
    if any(line.sku.casefold() == q for line in order.lines):
        return True
    names = " ".join(n for n in ((order.customer.name if order.customer else None),
                                 order.shipping_address.name) if n).casefold()
    return bool(names) and all(word in names for word in q.split())


def _exact(ports: Ports, query: str) -> list[Order] | None:
    """The orders an id or an external id names exactly, or None when it names none."""
    if not _ID_LIKE.match(query):
        return None
    try:
        return [ports.orders.get(query)]
    except NotFound:
        pass
    found = []
    for sep in ("#", ":"):  # "<channel>#<external id>" or "<channel>:<external id>"
        channel, _, external = query.partition(sep)
        if channel and external:
            order = ports.orders.find_by_channel_ref(channel, external)
            if order is not None:
                return [order]
    for channel in ports.channels.list(fresh=True):
        order = ports.orders.find_by_channel_ref(channel.channel_id, query)
        if order is not None:
            found.append(order)
    return found or None


def find_orders(ports: Ports, *, status: OrderStatus | None = None, query: str | None = None, limit: int = 50,
                token: str | None = None) -> Page:
    statuses = [status] if status else list(OrderStatus)
    before = decode_token(token) if token else None
    query = (query or "").strip() or None
    if query and before is None:
        exact = _exact(ports, query)
        if exact is not None:
            hits = sorted((o for o in exact if status is None or o.status == status), key=_key, reverse=True)
            return Page(hits[:limit], None, len(exact))
    page = SEARCH_PAGE if query else limit + 1
    merged = heapq.merge(*(_newest_first(ports, st, before, page) for st in statuses), key=_key, reverse=True)
    found: list[Order] = []
    scanned = 0
    last: Order | None = None
    for order in merged:
        if len(found) == limit:  # one more exists: there is a next page
            return Page(found, encode_token(found[-1]), scanned)
        if query and scanned >= SCAN_BUDGET:  # stop here; the token continues after the last one read
            return Page(found, encode_token(last), scanned) if last else Page(found, None, scanned)
        scanned += 1
        last = order
        if query is None or matches(order, query):
            found.append(order)
    return Page(found, None, scanned)


def counts(ports: Ports) -> dict[str, int]:
    return {st.value: ports.orders.count_by_status(st) for st in OrderStatus}
