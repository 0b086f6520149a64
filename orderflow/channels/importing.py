"""Importing orders from sales channels: each channel order stored exactly once, then held, started or
cancelled as the channel says.

One run of :func:`import_channel`:

1. takes the channel's lease (a second import of the same channel running at once finds it taken and
   reports ``busy``);
2. reads pages of orders changed since the channel's watermark minus an overlap (or continues the run
   a previous invocation left unfinished, from its saved page token);
3. stores the orders of a page (:func:`store_page`: one batch look-up of which are stored, the new ones
   written together, their workflows started several at once), then saves the position: the page token
   while pages remain, and, after the last page, the watermark (the channel's clock at the first page).
   The cursor only moves after the orders it covers are stored;
4. stops cleanly before the deadline (the Lambda timeout) or when the channel's rate limit asks for a
   longer wait than the run has left: the next run resumes from the saved page.

Exactly once: a channel order's id is derived from the channel and its external id
(:func:`orderflow.models.channel_order_id`) and its item is written only if absent, so overlapping polls,
retries, webhooks and concurrent imports all land on one order (orders stored before, with a random id
and a guard item ``ref#<channel>#<external id>``, are found through that guard item). An order that cannot be read is stored as
``needs_attention`` with the reason and its payload; it never blocks the rest of its page.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import BaseModel

from orderflow import orders, service
from orderflow.adapters.aws import server_error
from orderflow.channels.base import (
    ChannelError,
    ChannelOrder,
    ChannelState,
    OutOfTime,
    RateLimited,
    iso,
    parse_time,
)
from orderflow.channels.clients import client_for
from orderflow.channels.http import Deadline, RetryPolicy
from orderflow.channels.ports import (
    ChannelConfigs,
    CredentialStore,
    Cursor,
    LeaseLost,
    RunState,
    WebhookEventLog,
)
from orderflow.channels.webhooks import REFUSED, InvalidSignature, read_delivery
from orderflow.errors import Conflict, NotFound, TransientError
from orderflow.models import Address, Order, OrderLine, OrderStatus, channel_order_id, new_id, utcnow
from orderflow.ports import Ports

log = logging.getLogger(__name__)

#: Placeholder for a malformed order whose shipping address could not be read.
UNKNOWN_ADDRESS = Address(name="(unknown)", line1="(missing in the channel's order)", city="(unknown)",
                          postal_code="-", country="ZZ")
PAYLOAD_LIMIT = 64 * 1024
REPORTED_IDS = 200


#: A run's lease outlasts its deadline by this much (its last page and the release).
LEASE_MARGIN_SECONDS = 60.0


@dataclass
class ImportOptions:
    #: Each poll reads back this far before the watermark (late commits, clock granularity).
    overlap_seconds: float = 120.0
    #: A channel's first poll reads orders changed in the last this many days.
    initial_days: float = 30.0
    #: How long one run may hold the channel at most (longer than the Lambda timeout); a run with a
    #: shorter deadline (an API-started import) holds it for its deadline plus :data:`LEASE_MARGIN_SECONDS`,
    #: so a run killed mid-way blocks the scheduled imports for a minute, not for 16.
    lease_seconds: float = 960.0
    #: Orders of one page stored at once.
    workers: int = 4
    #: Stop after this many pages (the rest is left for the next run).
    max_pages: int | None = None
    #: Attempts to store one order when DynamoDB is busy.
    store_attempts: int = 4
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    deadline: Deadline = field(default_factory=Deadline)
    owner: str | None = None
    timeout: float = 30.0


Kind = Literal["new", "updated", "skipped", "failed"]


class Outcome(BaseModel):
    external_id: str
    kind: Kind
    order_id: str | None = None
    detail: str | None = None


class ImportReport(BaseModel):
    channel_id: str
    new: int = 0
    updated: int = 0
    skipped: int = 0
    #: Orders the channel sent that could not be read: stored as needs_attention (see ``failures``).
    failed: int = 0
    pages: int = 0
    #: True when the run stopped before the last page; the next run continues from there.
    more: bool = False
    #: Why the run stopped early: busy, deadline, rate_limited, page_limit, lease_lost, error.
    stopped: str | None = None
    message: str | None = None
    failures: list[dict[str, Any]] = []
    new_orders: list[str] = []
    watermark: str | None = None
    started_at: str = ""
    finished_at: str | None = None

    def add(self, outcome: Outcome) -> None:
        setattr(self, outcome.kind, getattr(self, outcome.kind) + 1)
        if outcome.kind == "failed":
            self.failures.append(outcome.model_dump(exclude_none=True))
        elif outcome.kind == "new" and outcome.order_id and len(self.new_orders) < REPORTED_IDS:
            self.new_orders.append(outcome.order_id)

    def summary(self) -> dict[str, Any]:
        return self.model_dump(exclude={"failures", "new_orders"}, exclude_none=True)


# -- one order ----------------------------------------------------------------------------------------


#: ``import_one(..., known=NOT_LOOKED_UP)``: nobody looked for the stored order yet.
NOT_LOOKED_UP: Any = object()


def import_one(channel_id: str, label: str, co: ChannelOrder, ports: Ports, known: Order | None = NOT_LOOKED_UP
               ) -> Outcome:
    """Store one channel order once, or bring the stored one up to date (paid now, cancelled now).

    ``known``: the stored order if the caller looked it up already (None: it was not stored then).
    """
    out = _out(co)
    if known is not NOT_LOOKED_UP and known is not None:
        return _transition(known, co, label, ports, out)
    if co.state in (ChannelState.CANCELLED, ChannelState.CLOSED, ChannelState.FULFILLED):
        # a cancellation is rare and matters: look again (a webhook may have stored the order since)
        stored = ports.orders.find_by_channel_ref(channel_id, co.external_id)
        if stored is None:
            return out("skipped", detail=f"{co.state_detail}: not imported")
        return _transition(stored, co, label, ports, out)
    if known is NOT_LOOKED_UP:
        stored = ports.orders.find_by_channel_ref(channel_id, co.external_id)
        if stored is not None:
            return _transition(stored, co, label, ports, out)
    # Its id is derived from the channel and the external id: a second create returns the stored order.
    order, created = ports.orders.create(new_order(channel_id, label, co))
    if not created:
        return _transition(order, co, label, ports, out)
    orders.start_workflow(order, ports)
    return created_outcome(order, out)


def new_order(channel_id: str, label: str, co: ChannelOrder) -> Order:
    """What to store for a channel order that is ready, unpaid (held) or could not be read (needs attention)."""
    if co.order is None:
        return attention_order(channel_id, label, co)
    order = Order.from_new(co.order)
    if co.state == ChannelState.UNPAID:
        order.hold_reason = f"unpaid on {label} ({co.state_detail}); held until it is paid"
        order.record("held", order.hold_reason)
    return order


def created_outcome(order: Order, out) -> Outcome:  # noqa: ANN001
    if order.status == OrderStatus.NEEDS_ATTENTION:
        return out("failed", order.order_id, order.attention_reason)
    return out("new", order.order_id, "held: unpaid" if order.hold_reason else None)


def store_page(channel_id: str, label: str, page: list[ChannelOrder], known: dict[str, Order], ports: Ports,
               pool: ThreadPoolExecutor, attempts: int = 4) -> list[Outcome]:
    """Store a page of channel orders, each once, in few round trips; the outcomes in the page's order.

    ``known``: the page's stored orders (one batch look-up). The new orders are written together
    (``ports.orders.create_many``: a transaction of conditional puts per up to 100 orders, instead of a
    transaction of two items per order), then the workflows of those that are ready are started on
    ``pool``; the orders stored before are brought up to date one by one (:func:`import_one`), on the
    pool too, while the new ones are written. Each order's id is derived from the channel and its
    external id, so its own conditional put keeps it single whoever else writes it at the same time (a
    webhook, another import); an order that was stored meanwhile is taken as stored, and one that could
    not be written with the others is written alone. A failing order does not stop the others: all of
    them are done before its error is raised (the page is then read again by the next run). A crash
    between storing and starting leaves a stored ``new`` order without an execution: the next run reads
    the page again and starts it (:func:`_transition`), as does the reconciler after five minutes.
    """
    def retried(action: Callable[[], Outcome]) -> Callable[[], Outcome]:
        return lambda: _with_retries(attempts, action)

    def alone(co: ChannelOrder, stored: Order | None = NOT_LOOKED_UP) -> Future[Outcome]:
        return pool.submit(retried(lambda: import_one(channel_id, label, co, ports, stored)))

    done: dict[int, Outcome | Future[Outcome]] = {}
    fresh: list[int] = []
    in_batch: set[str] = set()
    again: list[int] = []  # the same order twice in one page: after the first is stored
    for i, co in enumerate(page):
        stored = known.get(co.external_id)
        if stored is not None or co.state in (ChannelState.CANCELLED, ChannelState.CLOSED, ChannelState.FULFILLED):
            done[i] = alone(co, stored)
        elif co.external_id in in_batch:
            again.append(i)
        else:
            fresh.append(i)
            in_batch.add(co.external_id)
    batch = [new_order(channel_id, label, page[i]) for i in fresh]
    try:
        results = ports.orders.create_many(batch) if batch else []
    except Exception as err:  # noqa: BLE001 - each order is written alone instead
        log.warning("channel %s: %d orders not written together (%s: %s); writing them one by one", channel_id,
                    len(batch), type(err).__name__, err)
        results = [None] * len(batch)
    for i, result in zip(fresh, results, strict=True):
        co = page[i]
        out = _out(co)
        if result is None:
            done[i] = alone(co, None)
        elif not result[1]:  # stored meanwhile (a webhook, another import)
            done[i] = pool.submit(retried(lambda order=result[0], co=co, out=out: _transition(order, co, label,
                                                                                           ports, out)))
        elif result[0].status == OrderStatus.NEW and not result[0].hold_reason:
            done[i] = pool.submit(retried(lambda order=result[0], out=out: _started(order, ports, out)))
        else:
            done[i] = created_outcome(result[0], out)
    for i in again:
        done[i] = alone(page[i])
    outcomes: list[Outcome] = []
    error: Exception | None = None
    for i in range(len(page)):
        outcome = done[i]
        try:
            outcomes.append(outcome.result() if isinstance(outcome, Future) else outcome)
        except Exception as err:  # noqa: BLE001 - raised once every order of the page is done
            error = error or err
    if error is not None:
        raise error
    return outcomes


def _out(co: ChannelOrder):  # noqa: ANN202
    def out(kind: Kind, order_id: str | None = None, detail: str | None = None) -> Outcome:
        return Outcome(external_id=co.external_id, kind=kind, order_id=order_id, detail=detail)
    return out


def _started(order: Order, ports: Ports, out) -> Outcome:  # noqa: ANN001
    orders.start_workflow(order, ports)  # named after the order: a second start is a no-op
    return created_outcome(order, out)


def _transition(order: Order, co: ChannelOrder, label: str, ports: Ports, out) -> Outcome:  # noqa: ANN001
    if co.order is None and co.state in (ChannelState.READY, ChannelState.UNPAID):
        return out("skipped", order.order_id, "already stored")
    if co.state == ChannelState.READY and order.status == OrderStatus.NEW and not order.hold_reason:
        # stored by an earlier try whose StartExecution never happened: start it (a no-op if it runs)
        ports.workflow.start(order.order_id, getattr(order, "attempt", 1))
        return out("skipped", order.order_id, "already stored")
    if co.state == ChannelState.READY and order.hold_reason and order.status == OrderStatus.NEW:
        def paid(o: Order) -> bool:
            if not o.hold_reason:
                return False
            o.hold_reason = None
            o.record("payment_received", f"{co.state_detail} on {label}")
            return True

        released = ports.orders.update(order.order_id, paid)
        # named after the order: a second start is a no-op
        ports.workflow.start(released.order_id, getattr(released, "attempt", 1))
        return out("updated", order.order_id, "paid: released and started")
    if co.state == ChannelState.CANCELLED and order.status != OrderStatus.CANCELLED:
        try:
            service.cancel_order(order.order_id, ports, reason=f"{co.state_detail}")
            return out("updated", order.order_id, "cancelled")
        except Conflict as err:
            noted: list[bool] = []

            def note(o: Order) -> bool:
                noted.clear()
                if any(e.type == "channel_cancelled" for e in o.events):
                    return False
                o.record("channel_cancelled", f"{co.state_detail}, but here it is {o.status.value}: "
                                              "not cancelled (it has shipped or gone to a fulfiller)")
                noted.append(True)
                return True

            ports.orders.update(order.order_id, note)
            return out("updated" if noted else "skipped", order.order_id, err.message)
    if co.state == ChannelState.FULFILLED and order.status in orders.SHIPPABLE_STATUSES:
        completed = service.complete_from_channel(order.order_id, ports, detail=f"{co.state_detail} on {label}")
        return out("updated" if completed else "skipped", order.order_id, "fulfilled on the channel: completed")
    if co.state == ChannelState.FULFILLED and order.status in orders.NOT_SHIPPING_YET:
        noted = service.note_channel_fulfilled(order.order_id, ports, f"{co.state_detail} on {label}")
        return out("updated" if noted else "skipped", order.order_id, "fulfilled on the channel before it shipped here")
    return out("skipped", order.order_id, "no change")


def attention_order(channel_id: str, label: str, co: ChannelOrder) -> Order:
    """A channel order that cannot be read, kept with what could be read, the reason and its payload."""
    partial = co.partial
    reason = f"the {label} order could not be read: {co.problem}"
    order = Order(
        order_id=channel_order_id(channel_id, co.external_id), status=OrderStatus.NEEDS_ATTENTION, currency=partial.get("currency", "USD"),
        channel=channel_id, external_id=co.external_id,
        shipping_address=partial.get("address") or UNKNOWN_ADDRESS,
        lines=[OrderLine(line_no=i, **line.model_dump()) for i, line in enumerate(partial.get("lines", []), 1)],
        attention_reason=reason, channel_payload=payload_text(co.raw))
    order.record("created", f"imported from {label}; it could not be read")
    order.record("needs_attention", reason)
    return order


def payload_text(raw: Any) -> str:
    text = json.dumps(raw, default=str, sort_keys=True)
    return text if len(text) <= PAYLOAD_LIMIT else text[:PAYLOAD_LIMIT] + "…(truncated)"


def _with_retries(attempts: int, action) -> Outcome:  # noqa: ANN001
    """Run ``action`` again when storage was busy (throttled, a transaction conflict, a 5xx)."""
    for attempt in range(1, attempts + 1):
        try:
            return action()
        except Exception as err:
            if attempt == attempts or not (isinstance(err, TransientError) or server_error(err)):
                raise
            time.sleep(min(2.0, 0.05 * 2 ** attempt))
    raise AssertionError("unreachable")


# -- one run ------------------------------------------------------------------------------------------


def import_channel(channel_id: str, ports: Ports, *, store: ChannelConfigs | None = None,
                   credentials: CredentialStore | None = None,
                   options: ImportOptions | None = None) -> ImportReport:
    """Import what changed on the channel since its last run (or continue an unfinished run).
    ``store`` and ``credentials``: the channel's, when not those of ``ports.channels``."""
    store = store or ports.channels.store
    credentials = credentials or ports.channels.credentials()
    options = options or ImportOptions()
    config = store.get(channel_id)  # NotFound -> 404
    report = ImportReport(channel_id=channel_id, started_at=utcnow())
    owner = options.owner or new_id("imp")
    options.lease_seconds = min(options.lease_seconds, options.deadline.left() + LEASE_MARGIN_SECONDS)
    cursor = store.acquire(channel_id, owner, options.lease_seconds)
    if cursor is None:
        report.stopped, report.more = "busy", True
        report.message = "another import of this channel is running; its orders are stored by that run"
        report.finished_at = utcnow()
        return report
    error: Exception | None = None
    try:
        secrets = credentials.get(channel_id, config.type)
        channel = client_for(config, secrets, retry=options.retry, deadline=options.deadline,
                             rate_state=cursor.rate, timeout=options.timeout)
        try:
            _run(config, channel, cursor, ports, store, owner, options, report)
        finally:
            _save_rate(channel, cursor)
            channel.close()
    except (RateLimited, OutOfTime) as stop:
        report.more = True
        report.stopped = "rate_limited" if isinstance(stop, RateLimited) else "deadline"
        report.message = stop.message
        _save_quietly(store, cursor, owner, options)
    except LeaseLost as lost:
        report.more, report.stopped, report.message = True, "lease_lost", lost.message
    except ChannelError as err:
        report.stopped, report.message, error = "error", err.message, err
        _save_quietly(store, cursor, owner, options)
    except Exception as err:
        report.stopped, report.message, error = "error", f"{type(err).__name__}: {err}", err
        raise
    finally:
        report.finished_at = utcnow()
        report.watermark = cursor.watermark
        try:
            store.release(channel_id, owner, report.summary())
        except Exception:  # noqa: BLE001 - the lease expires by itself
            log.warning("could not release the import lease of %s", channel_id)
        eventful = report.new or report.updated or report.failed or report.stopped not in (None, "busy")
        log.log(logging.INFO if eventful else logging.DEBUG,
                "import of %s: %d new, %d updated, %d skipped, %d failed, %d page(s)%s", channel_id,
                report.new, report.updated, report.skipped, report.failed, report.pages,
                f", stopped: {report.stopped}" if report.stopped else "")
    if error is not None:
        raise error
    return report


def _run(config: Any, channel: Any, cursor: Cursor, ports: Ports, store: ChannelConfigs, owner: str,
         options: ImportOptions, report: ImportReport) -> None:
    label = str(config.type)
    run = cursor.run
    if run is None:
        start = parse_time(cursor.watermark) if cursor.watermark else None
        if start is None:
            start = datetime.now(UTC) - timedelta(days=options.initial_days)
        else:
            start -= timedelta(seconds=options.overlap_seconds)
        run = RunState(updated_after=iso(start), started_at=iso(datetime.now(UTC)))
        cursor.run = run
    restarted = False
    lookup = ports.channels.stored_orders()
    with ThreadPoolExecutor(max(1, options.workers), thread_name_prefix=f"import-{config.channel_id}") as pool:
        while True:
            if options.max_pages is not None and report.pages >= options.max_pages:
                report.more, report.stopped = True, "page_limit"
                return
            options.deadline.check(f"the import of {config.channel_id}")
            try:
                page = channel.fetch_page(parse_time(run.updated_after), run.token)
            except ChannelError as err:
                # A saved page token the channel no longer takes (Amazon's expire after 24 h): read the
                # same window again from its start; what is already stored is skipped.
                if run.token is None or restarted or err.details.get("status") not in (400, 404, 410, 422):
                    raise
                log.warning("channel %s refused the saved page token (%s); reading the window again",
                            config.channel_id, err.message)
                run.token, run.bound, restarted = None, None, True
                continue
            if run.bound is None:
                run.bound = iso(page.server_time) if page.server_time else run.started_at
            known = lookup.lookup(config.channel_id, [co.external_id for co in page.orders])
            outcomes = store_page(config.channel_id, label, page.orders, known, ports, pool, options.store_attempts)
            for outcome in outcomes:
                report.add(outcome)
                if outcome.kind == "failed":
                    log.warning("channel %s order %s stored as needs_attention: %s", config.channel_id,
                                outcome.external_id, outcome.detail)
            report.pages += 1
            run.pages += 1
            run.token = page.next_token
            if page.next_token is None:
                bound = run.bound
                if not cursor.watermark or bound > cursor.watermark:
                    cursor.watermark = bound
                cursor.run = None
                _save_rate(channel, cursor)
                store.save(cursor, owner, options.lease_seconds)
                return
            _save_rate(channel, cursor)
            store.save(cursor, owner, options.lease_seconds)


def _save_rate(channel: Any, cursor: Cursor) -> None:
    state = getattr(channel, "rate_state", None)
    if callable(state):
        cursor.rate = state()


def _save_quietly(store: ChannelConfigs, cursor: Cursor, owner: str, options: ImportOptions) -> None:
    try:
        store.save(cursor, owner, options.lease_seconds)
    except Exception:  # noqa: BLE001 - the last saved page is still there
        log.warning("could not save the position of %s", cursor.channel_id)


# -- webhooks -----------------------------------------------------------------------------------------

#: How long a webhook may spend asking the store to confirm a deletion (the API function has 29 s).
WEBHOOK_CONFIRM_SECONDS = 15.0


def _confirmed_deletions(config: Any, secrets: Any, orders: list[ChannelOrder]) -> list[ChannelOrder]:
    client = client_for(config, secrets, deadline=Deadline.after(WEBHOOK_CONFIRM_SECONDS), timeout=10.0)
    try:
        confirmed = [co for co in orders if client.order_deleted(co.external_id)]
    finally:
        client.close()
    for co in orders:
        if co not in confirmed:
            log.warning("channel %s: an order.deleted webhook for order %s, which the store still has: ignored",
                        config.channel_id, co.external_id)
    return confirmed


def receive_webhook(channel_id: str, headers: dict[str, str], raw: bytes, ports: Ports, *,
                    store: ChannelConfigs | None = None, credentials: CredentialStore | None = None,
                    events: WebhookEventLog | None = None) -> dict[str, Any]:
    """Verify a webhook delivery and import the order in it (exactly once, like a poll would)."""
    store = store or ports.channels.store
    credentials = credentials or ports.channels.credentials()
    events = events or ports.channels.webhook_events()
    try:
        config = store.get(channel_id)
    except NotFound:  # answered like a bad signature: channel ids cannot be probed
        raise InvalidSignature(REFUSED, channel_id=channel_id) from None
    secrets = credentials.get(channel_id, config.type)
    secret = getattr(secrets, "webhook_secret", None)
    delivery = read_delivery(config.type, channel_id, headers, raw,
                             secret.get_secret_value() if secret is not None else None)
    answer: dict[str, Any] = {"channel_id": channel_id, "topic": delivery.topic, "event_id": delivery.event_id}
    if delivery.ignored:
        return {**answer, "status": "ignored", "reason": delivery.ignored}
    if delivery.event_id and events.seen(channel_id, delivery.event_id):
        return {**answer, "status": "duplicate"}
    if delivery.topic == "order.deleted" and delivery.orders:
        # The topic header is not signed: a captured body replayed as a deletion must not cancel the
        # order. Only what the store confirms it deleted is imported as deleted.
        delivery.orders = _confirmed_deletions(config, secrets, delivery.orders)
        if not delivery.orders:
            return {**answer, "status": "ignored", "reason": "the store still has the order: not deleted"}
    outcomes = [_with_retries(4, lambda co=co: import_one(channel_id, str(config.type), co, ports))
                for co in delivery.orders]
    if delivery.event_id:
        events.remember(channel_id, delivery.event_id, delivery.topic)
    for outcome in outcomes:
        if outcome.kind == "failed":
            log.warning("channel %s webhook order %s stored as needs_attention: %s", channel_id,
                        outcome.external_id, outcome.detail)
    return {**answer, "status": "processed", "orders": [o.model_dump(exclude_none=True) for o in outcomes]}
