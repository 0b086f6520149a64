"""What the sandbox channels share: a real HTTP server on loopback, an in-memory shop, fault injection.

Each sandbox (Shopify, WooCommerce, Amazon) keeps orders in one neutral shape (:class:`ShopOrder`) and
renders them in its channel's JSON. Beside the channel's own API, every sandbox serves:

- ``GET /_sandbox/inventory``: the quantities our auto-sync pushed (``pushes``, and ``levels`` per SKU);
- ``GET /_sandbox/orders``: the shop's orders, summarized; ``POST /_sandbox/orders``: add one
  (``{"state": "paid"|"pending", "malformed": "missing_sku"|..., "lines": [...]}``);
- ``POST /_sandbox/orders/{id}/{pay|cancel|fulfill}``: change an order as the shop would;
- ``POST /_sandbox/faults``: the next ``count`` API requests answer ``status`` (e.g. 429 with
  ``retry_after``), or ``{"kind": "throttled"}`` (Shopify's GraphQL THROTTLED);
- ``GET /_sandbox/requests``: the API requests received (method, path, query, status).
- ``GET /_sandbox/fulfillments``: the shipments our tracking push told the shop (order, lines, tracking).
- ``GET /_sandbox/webhooks``: the webhooks the shop delivered (order, change, event id, our answer).

Tests and the local stack use the same methods in-process (``add_order``, ``inject``, ``pushes`` ...).
"""

from __future__ import annotations

import json
import logging
import queue
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx

log = logging.getLogger(__name__)

#: The local stack's sample SKUs (orderflow_local.seed) with their shop prices.
CATALOG = {"TSHIRT-BLK-M": Decimal("19.99"), "MUG-12OZ": Decimal("12.50"), "POSTER-A2": Decimal("9.00")}
PEOPLE = [
    ("Ada Lovelace", "12 Analytical St", None, "Brooklyn", "NY", "11201", "US"),
    ("Grace Hopper", "1 Navy Way", "Suite 4", "Arlington", "VA", "22202", "US"),
    ("Alan Turing", "78 Bletchley Rd", None, "Austin", "TX", "78701", "US"),
    ("Katherine Johnson", "3 Langley Blvd", None, "Hampton", "VA", "23666", "US"),
    ("Edsger Dijkstra", "400 Shortest Path", "Apt 2", "Seattle", "WA", "98101", "US"),
]
#: What a malformed order gets wrong, by name.
MALFORMATIONS = ("missing_sku", "bad_price", "bad_country", "no_address")


def iso_z(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ShopLine:
    sku: str | None
    quantity: int
    price: str  # decimal string as the shop keeps it
    #: Units fulfilled (shipped) on the shop: by a tracking push, or by the storefront.
    fulfilled: int = 0


@dataclass
class ShopOrder:
    id: str
    number: int
    created: float
    updated: float
    lines: list[ShopLine]
    name: str
    line1: str
    line2: str | None
    city: str
    region: str | None
    postal: str
    country: str | None
    email: str
    currency: str = "USD"
    #: paid | pending | refunded
    payment: str = "paid"
    #: open | cancelled | partially_fulfilled | fulfilled
    status: str = "open"
    has_address: bool = True

    def touch(self, now: float) -> None:
        self.updated = max(now, self.updated + 0.001)


@dataclass
class Fault:
    status: int = 429
    count: int = 1
    retry_after: float | None = None
    kind: str = "http"  # http | throttled (Shopify GraphQL)
    path_prefix: str = ""


@dataclass
class Request:
    method: str
    path: str
    query: dict[str, list[str]]
    headers: dict[str, str]
    body: bytes

    def q(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def json(self) -> Any:
        return json.loads(self.body or b"null", parse_float=Decimal)

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())


@dataclass
class Response:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


def _dumps(value: Any) -> bytes:
    return json.dumps(value, default=lambda o: str(o) if isinstance(o, Decimal) else repr(o)).encode()


class SandboxChannel:
    """Base of the fake channels. Subclasses implement :meth:`route` and the order renderings."""

    kind = "sandbox"

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, order_every: float | None = None,
                 seed: int = 7, webhook_url: str | None = None, webhook_secret: str | None = None,
                 catalog: dict[str, Decimal] | None = None, clock: Callable[[], float] = time.time) -> None:
        self.host = host
        self.clock = clock
        self.catalog = dict(catalog or CATALOG)
        self.random = random.Random(seed)
        self.order_every = order_every
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.lock = threading.RLock()
        self.orders: dict[str, ShopOrder] = {}
        self.pushes: list[dict[str, Any]] = []
        self.fulfillments: list[dict[str, Any]] = []
        self.levels: dict[str, int] = {}
        self.requests: list[dict[str, Any]] = []
        self.faults: list[Fault] = []
        self.webhooks_sent: list[dict[str, Any]] = []
        self._counter = 1000
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._outbox: queue.Queue[tuple[str, dict[str, str], bytes] | None] = queue.Queue()
        channel = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = f"orderflow-sandbox-{self.kind}"

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("sandbox %s: %s", channel.kind, fmt % args)

            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                parts = urlsplit(self.path)
                request = Request(self.command, parts.path, parse_qs(parts.query, keep_blank_values=True),
                                  {k.lower(): v for k, v in self.headers.items()}, body)
                try:
                    response = channel.dispatch(request)
                except Exception as exc:  # noqa: BLE001 - a sandbox bug answers 500, like a real shop would
                    log.exception("sandbox %s crashed on %s %s", channel.kind, request.method, request.path)
                    response = Response(500, {"error": f"sandbox crashed: {type(exc).__name__}"})
                payload = b"" if response.body is None else (
                    response.body if isinstance(response.body, bytes) else _dumps(response.body))
                self.send_response(response.status)  # also sends Date: the shop's clock
                headers = {"Content-Type": "application/json; charset=utf-8", **response.headers}
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _serve  # noqa: N815

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True

    # -- life cycle -----------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> SandboxChannel:
        self._spawn(lambda: self.server.serve_forever(poll_interval=0.05), "http")
        self._spawn(self._deliver_webhooks, "webhooks")
        if self.order_every:
            self._spawn(self._generate, "orders")
        return self

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=f"sandbox-{self.kind}-{name}", daemon=True)
        thread.start()
        self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        self._outbox.put(None)
        self.server.shutdown()
        self.server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> SandboxChannel:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- requests -------------------------------------------------------------------------------------

    def dispatch(self, request: Request) -> Response:
        if request.path.startswith("/_sandbox/"):
            return self._admin(request)
        with self.lock:
            fault = next((f for f in self.faults if request.path.startswith(f.path_prefix)), None)
            if fault is not None:
                fault.count -= 1
                if fault.count <= 0:
                    self.faults.remove(fault)
        if fault is not None:
            response = self.fault_response(fault, request)
        else:
            response = self.route(request)
        record = {"method": request.method, "path": request.path,
                  "query": {k: v[-1] for k, v in request.query.items()}, "status": response.status,
                  "at": self.clock()}
        if request.method in ("POST", "PUT", "PATCH") and len(request.body) < 10_000:
            try:
                record["json"] = json.loads(request.body or b"null")
            except ValueError:
                pass
        with self.lock:
            self.requests.append(record)
        return response

    def route(self, request: Request) -> Response:
        """The channel's own API (each sandbox overrides this)."""
        return Response(404, {"error": f"no route {request.method} {request.path}"})

    def fault_response(self, fault: Fault, request: Request) -> Response:
        headers = {"Retry-After": f"{fault.retry_after:g}"} if fault.retry_after is not None else {}
        return Response(fault.status, {"errors": "Exceeded 2 calls per second for api client. Reduce request "
                                                 "rates to resume uninterrupted service."
                                       if fault.status == 429 else "Internal error"}, headers)

    def _admin(self, request: Request) -> Response:
        path = request.path.removeprefix("/_sandbox")
        if path == "/inventory" and request.method == "GET":
            return Response(200, self.inventory())
        if path == "/fulfillments" and request.method == "GET":
            with self.lock:
                return Response(200, {"fulfillments": list(self.fulfillments)})
        if path == "/webhooks" and request.method == "GET":
            with self.lock:
                return Response(200, {"webhooks": list(self.webhooks_sent)})
        if path == "/requests" and request.method == "GET":
            with self.lock:
                return Response(200, {"requests": list(self.requests)})
        if path == "/orders" and request.method == "GET":
            with self.lock:
                return Response(200, {"orders": [self.summary(o) for o in self.orders.values()]})
        if path == "/orders" and request.method == "POST":
            spec = request.json() or {}
            order_id = self.add_order(state=spec.get("state", "paid"), malformed=spec.get("malformed"),
                                      lines=[(ln["sku"], int(ln.get("quantity", 1))) for ln in spec.get("lines", [])]
                                      or None)
            return Response(201, self.summary(self.orders[order_id]))
        if path == "/faults" and request.method == "POST":
            spec = request.json() or {}
            self.inject(status=int(spec.get("status", 429)), count=int(spec.get("count", 1)),
                        retry_after=spec.get("retry_after"), kind=spec.get("kind", "http"))
            return Response(201, {"faults": len(self.faults)})
        parts = path.strip("/").split("/")
        if len(parts) == 3 and parts[0] == "orders" and request.method == "POST":
            action = {"pay": self.pay, "cancel": self.cancel, "fulfill": self.fulfill}.get(parts[2])
            if action is None or parts[1] not in self.orders:
                return Response(404, {"error": "no such order or action"})
            action(parts[1])
            return Response(200, self.summary(self.orders[parts[1]]))
        return Response(404, {"error": f"no sandbox route {request.method} {request.path}"})

    def channel(self, channel_id: str, **config: Any) -> tuple[Any, Any]:
        """(configuration, credentials) connecting this shop as channel ``channel_id``, the way a
        seller would fill in ``POST /channels``; ``config`` overrides configuration fields."""
        raise TypeError(f"{type(self).__name__} is not a channel")

    # -- the shop, in-process -------------------------------------------------------------------------

    def new_id(self) -> str:
        self._counter += 1
        return str(self._counter)

    def add_order(self, *, state: str = "paid", malformed: str | None = None,
                  lines: list[tuple[str, int]] | None = None, at: float | None = None, notify: bool = True) -> str:
        """A new order in the shop. ``state``: paid or pending; ``malformed``: one of MALFORMATIONS."""
        with self.lock:
            now = self.clock() if at is None else at
            order_id = self.new_id()
            person = self.random.choice(PEOPLE)
            if lines is None:
                skus = self.random.sample(sorted(self.catalog), k=self.random.choice((1, 1, 1, 2)))
                lines = [(sku, self.random.choice((1, 1, 2))) for sku in skus]
            shop_lines = [ShopLine(sku, qty, str(self.catalog.get(sku, Decimal("5.00")))) for sku, qty in lines]
            order = ShopOrder(id=order_id, number=self._counter, created=now, updated=now, lines=shop_lines,
                              name=person[0], line1=person[1], line2=person[2], city=person[3], region=person[4],
                              postal=person[5], country=person[6],
                              email=f"{person[0].split()[0].lower()}@example.com",
                              payment="paid" if state == "paid" else "pending")
            if malformed == "missing_sku":
                order.lines[0].sku = None
            elif malformed == "bad_price":
                order.lines[0].price = "twelve"
            elif malformed == "bad_country":
                order.country = "Narnia"
            elif malformed == "no_address":
                order.has_address = False
            elif malformed is not None:
                raise ValueError(f"malformed must be one of {MALFORMATIONS}")
            self.orders[order_id] = order
        if notify:
            self.notify(order_id, "created")
        return order_id

    def add_orders(self, count: int, *, spread_seconds: float = 0.0) -> list[str]:
        """Many paid orders at once (benchmarks), created over the last ``spread_seconds``."""
        now = self.clock()
        return [self.add_order(at=now - spread_seconds + spread_seconds * i / max(1, count), notify=False)
                for i in range(count)]

    def _change(self, order_id: str, **changes: Any) -> None:
        with self.lock:
            order = self.orders[order_id]
            for key, value in changes.items():
                setattr(order, key, value)
            order.touch(self.clock())

    def pay(self, order_id: str) -> None:
        self._change(order_id, payment="paid")
        self.notify(order_id, "paid")

    def cancel(self, order_id: str) -> None:
        self._change(order_id, status="cancelled")
        self.notify(order_id, "cancelled")

    def fulfill(self, order_id: str) -> None:
        """The seller fulfils the order from the shop's admin (storefront completion)."""
        with self.lock:
            for line in self.orders[order_id].lines:
                line.fulfilled = line.quantity
        self._change(order_id, status="fulfilled")
        self.notify(order_id, "fulfilled")

    def record_fulfillment(self, order_id: str, quantities: dict[int, int], **detail: Any) -> dict[str, Any]:
        """A fulfillment our tracking push created: ``quantities`` maps line index -> units. The order
        becomes fulfilled when every unit is (and the shop sends its ``fulfilled`` webhook)."""
        with self.lock:
            order = self.orders[order_id]
            for index, units in quantities.items():
                line = order.lines[index]
                if units < 1 or line.fulfilled + units > line.quantity:
                    raise ValueError(f"line {index} has {line.quantity - line.fulfilled} unit(s) open, not {units}")
            for index, units in quantities.items():
                order.lines[index].fulfilled += units
            done = all(line.fulfilled >= line.quantity for line in order.lines)
            order.status = "fulfilled" if done else "partially_fulfilled"
            order.touch(self.clock())
            record = {"order_id": order_id, "number": len(self.fulfillments) + 1, "at": iso_z(self.clock()),
                      "lines": {order.lines[i].sku: n for i, n in quantities.items()}, **detail}
            self.fulfillments.append(record)
        if done:
            self.notify(order_id, "fulfilled")
        return record

    def inject(self, *, status: int = 429, count: int = 1, retry_after: float | None = None, kind: str = "http",
               path_prefix: str = "") -> None:
        """The next ``count`` API requests fail with ``status`` (and ``Retry-After``)."""
        with self.lock:
            self.faults.append(Fault(status=status, count=count, retry_after=retry_after, kind=kind,
                                     path_prefix=path_prefix))

    def record_push(self, sku: str, quantity: int, **detail: Any) -> None:
        with self.lock:
            self.levels[sku] = quantity
            self.pushes.append({"sku": sku, "quantity": quantity, "at": iso_z(self.clock()), **detail})

    def inventory(self) -> dict[str, Any]:
        with self.lock:
            return {"channel": self.kind, "levels": dict(self.levels), "pushes": list(self.pushes)}

    def api_requests(self, path_prefix: str = "") -> list[dict[str, Any]]:
        with self.lock:
            return [r for r in self.requests if r["path"].startswith(path_prefix)]

    def summary(self, order: ShopOrder) -> dict[str, Any]:
        return {"id": order.id, "payment": order.payment, "status": order.status, "updated": iso_z(order.updated),
                "lines": [{"sku": ln.sku, "quantity": ln.quantity, "price": ln.price} for ln in order.lines]}

    # -- background: new orders and webhooks ----------------------------------------------------------

    def _generate(self) -> None:
        """Keep the shop busy: a new order every ``order_every`` seconds; some start unpaid and are paid
        a few orders later, a few are cancelled, now and then one is malformed."""
        unpaid: list[str] = []
        assert self.order_every
        while not self._stop.wait(self.order_every):
            try:
                roll = self.random.random()
                if roll < 0.04:
                    self.add_order(malformed=self.random.choice(MALFORMATIONS))
                elif roll < 0.16:
                    unpaid.append(self.add_order(state="pending"))
                else:
                    order_id = self.add_order()
                    if roll > 0.95:
                        self.cancel(order_id)
                if len(unpaid) > 2:
                    self.pay(unpaid.pop(0))
            except Exception:  # noqa: BLE001 - the generator keeps going
                log.exception("sandbox %s order generator failed", self.kind)

    def notify(self, order_id: str, change: str) -> None:
        """Queue the channel's webhook for a change (only when a webhook URL is set)."""
        if not self.webhook_url or not self.webhook_secret:
            return
        delivery = self.webhook(order_id, change)
        if delivery is not None:
            url, headers, body = delivery
            self._outbox.put((url, {**headers, "X-Sandbox-Order": order_id, "X-Sandbox-Change": change}, body))

    def webhook(self, order_id: str, change: str) -> tuple[str, dict[str, str], bytes] | None:
        """(url, headers, body) of this channel's webhook for the change; None if it sends none."""
        return None

    def _deliver_webhooks(self) -> None:
        with httpx.Client(timeout=10) as http:
            while True:
                item = self._outbox.get()
                if item is None or self._stop.is_set():  # stopping: what is still queued is dropped
                    return
                url, headers, body = item
                about = {"order_id": headers.pop("X-Sandbox-Order", None),
                         "change": headers.pop("X-Sandbox-Change", None)}
                try:
                    status = http.post(url, content=body, headers=headers).status_code
                except httpx.HTTPError as exc:
                    status = f"error: {type(exc).__name__}"
                with self.lock:
                    self.webhooks_sent.append({**about, "url": url, "status": status,
                                               "event": next((v for k, v in headers.items()
                                                              if k.lower().endswith(("event-id", "delivery-id"))),
                                                             None)})

    @staticmethod
    def event_id() -> str:
        return str(uuid.uuid4())
