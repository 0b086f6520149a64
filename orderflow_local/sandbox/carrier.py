"""The sandbox carrier: a local HTTP server speaking EasyPost's API, selling labels that are real files.

``orderflow local`` starts one on a free loopback port and registers it as the carrier account
``sandbox``, so ``POST /orders/{id}/labels`` works with no carrier account and no internet. Tests run
the real carrier clients against it over real sockets.

EasyPost's shape (HTTP Basic, the API key as user name):

- ``POST /v2/shipments`` ``{"shipment": {to_address, from_address, parcel, options.label_format, reference}}``
  answers the shipment with ``rates[]`` (USPS and UPS services priced from weight and distance);
- ``POST /v2/shipments/{id}/buy`` ``{"rate": {"id"}}``: a tracking number (USPS IMpb or UPS 1Z, with
  their check digits, never issued twice) and ``postage_label`` whose URLs point back at this server;
- ``GET /v2/shipments/{id}``; ``GET /v2/shipments/{id}/label?file_format=PDF|ZPL`` (another format);
- ``GET /labels/{id}.pdf``: a 4x6 inch PDF (reportlab) with ship-from, ship-to, service, a Code128
  barcode of the tracking number and the number in text; ``GET /labels/{id}.zpl``: the same as ZPL II.

For tests and people (in-process as methods, over HTTP under ``/_sandbox/``):

- ``sales`` / ``GET /_sandbox/sales``: every label sold;
- ``fail(...)`` / ``POST /_sandbox/faults`` ``{"status": 500, "count": 2, "on": "buy"}``: the next
  ``count`` calls (all of them while ``count`` is null) answer ``status`` with an EasyPost error body;
  ``on`` is ``create``, ``buy``, ``label`` or ``any``, or ``buy_lost`` (the label is bought but the
  answer is an error, as when a connection drops); ``clear_faults()`` / ``DELETE /_sandbox/faults``;
- ``hold("buy")``: purchases wait at a gate until released (a test sees a purchase in flight without
  sleeping);
- ``requests`` / ``GET /_sandbox/requests``: the calls received (method, path, status, whether they
  carried an ``Authorization`` header).
"""

from __future__ import annotations

import base64
import io
import json
import logging
import math
import re
import secrets
import threading
import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

log = logging.getLogger(__name__)

PAGE_W, PAGE_H = 288, 432  # 4x6 inch in points
ZPL_DOTS_W, ZPL_DOTS_H = 812, 1218  # 4x6 inch at 203 dpi

#: (carrier, service, base price, price per lb, per-zone factor, days, max weight oz)
SERVICES = (
    ("USPS", "GroundAdvantage", Decimal("4.75"), Decimal("0.62"), Decimal("0.08"), 5, 1120),
    ("USPS", "Priority", Decimal("7.90"), Decimal("0.95"), Decimal("0.10"), 3, 1120),
    ("USPS", "Express", Decimal("26.35"), Decimal("2.10"), Decimal("0.12"), 1, 1120),
    ("UPS", "Ground", Decimal("9.15"), Decimal("0.70"), Decimal("0.09"), 4, 2400),
    ("UPS", "NextDayAir", Decimal("38.40"), Decimal("3.25"), Decimal("0.15"), 1, 2400),
)
ADDRESS_REQUIRED = ("street1", "city", "zip", "country")


class Fault:
    def __init__(self, status: int, count: int | None, on: str, message: str, retry_after: float | None) -> None:
        self.status, self.count, self.on, self.message, self.retry_after = status, count, on, message, retry_after


class Gate:
    """Purchases wait here until :meth:`release`; :attr:`entered` is set once one is waiting."""

    def __init__(self) -> None:
        self.entered = threading.Event()
        self._open = threading.Event()

    def release(self) -> None:
        self._open.set()

    def wait_open(self, timeout: float = 60.0) -> None:
        self.entered.set()
        self._open.wait(timeout)


class SandboxError(Exception):
    def __init__(self, status: int, code: str, message: str, errors: list[dict] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.errors = status, code, message, errors or []

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message, "errors": self.errors}}


@dataclass
class _Shipment:
    data: dict[str, Any]
    labels: dict[str, bytes] = field(default_factory=dict)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _oid(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


# -- tracking numbers -----------------------------------------------------------------------------


def usps_check_digit(digits: str) -> int:
    """USPS IMpb mod 10: from the right, weights 3, 1, 3, 1..."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(digits)))
    return (10 - total % 10) % 10


def ups_check_digit(body: str) -> int:
    """UPS 1Z check digit over the 15 characters after ``1Z`` (letters as (ord - 63) % 10)."""
    values = [int(c) if c.isdigit() else (ord(c) - 63) % 10 for c in body]
    odd = sum(values[0::2])
    even = sum(values[1::2]) * 2
    return (10 - (odd + even) % 10) % 10


def make_tracking_number(carrier: str, serial: int) -> str:
    """A realistic number: USPS ``9400 1...`` (22 digits) or UPS ``1Z...`` (18 characters)."""
    if carrier == "UPS":
        body = "SBX001" + "03" + f"{serial % 10_000:04d}{secrets.randbelow(1000):03d}"
        return f"1Z{body}{ups_check_digit(body)}"
    stem = "94001" + "2" + f"{serial % 1_000_000:06d}" + f"{secrets.randbelow(10 ** 9):09d}"
    return stem + str(usps_check_digit(stem))


def zone(from_zip: str, to_zip: str) -> int:
    """1-8 like the USPS zones, from the first three digits of the ZIP codes (0 when not US ZIPs)."""
    a, b = re.sub(r"\D", "", from_zip)[:3], re.sub(r"\D", "", to_zip)[:3]
    if len(a) < 3 or len(b) < 3:
        return 8
    return 1 + min(7, abs(int(a) - int(b)) // 90)


def price(service: tuple, weight_oz: float, z: int) -> Decimal:
    _, _, base, per_lb, per_zone, _, _ = service
    pounds = max(1, math.ceil(weight_oz / 16))
    value = (base + per_lb * (pounds - 1)) * (1 + per_zone * (z - 1))
    return value.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# -- label files ------------------------------------------------------------------------------------


def _address_lines(address: dict[str, Any]) -> list[str]:
    city = ", ".join(p for p in (address.get("city"), " ".join(
        p for p in (address.get("state"), address.get("zip")) if p)) if p)
    lines = [address.get("name"), address.get("company"), address.get("street1"), address.get("street2"), city,
             address.get("country")]
    return [str(line) for line in lines if line]


def _words(service: str) -> str:
    """``GroundAdvantage`` -> ``Ground Advantage`` (EasyPost's service names are CamelCase)."""
    return re.sub(r"(?<=[a-z])(?=[A-Z0-9])", " ", str(service))


def _spaced(tracking: str) -> str:
    return " ".join(tracking[i:i + 4] for i in range(0, len(tracking), 4))


def render_pdf(sale: dict[str, Any], shipment: dict[str, Any]) -> bytes:
    """A 4x6 inch label: from, service banner, ship-to, Code128 barcode of the tracking number."""
    from reportlab.graphics.barcode import code128
    from reportlab.pdfgen import canvas

    tracking = sale["tracking_code"]
    buf = io.BytesIO()
    c = canvas.Canvas(buf, pagesize=(PAGE_W, PAGE_H), invariant=True)
    c.setTitle(f"{sale['carrier']} {sale['service']} {tracking}")
    c.setAuthor("orderflow sandbox carrier")
    c.setSubject("SANDBOX LABEL - NOT VALID FOR POSTAGE")
    m = 12
    # ship from
    y = PAGE_H - m - 8
    c.setFont("Helvetica-Bold", 7)
    c.drawString(m, y, "FROM")
    c.setFont("Helvetica", 7)
    for line in _address_lines(shipment["from_address"])[:5]:
        y -= 8.5
        c.drawString(m, y, line[:60])
    c.setFont("Helvetica-Bold", 7)
    c.drawRightString(PAGE_W - m, PAGE_H - m - 8, _now()[:10])
    c.drawRightString(PAGE_W - m, PAGE_H - m - 16.5, f"{shipment['parcel'].get('weight', 0)} OZ")
    # service banner
    y -= 30
    c.setFillGray(0)
    c.rect(0, y, PAGE_W, 26, stroke=0, fill=1)
    c.setFillGray(1)
    c.setFont("Helvetica-Bold", 15)
    c.drawCentredString(PAGE_W / 2, y + 8, f"{sale['carrier']} {_words(sale['service'])}".upper())
    c.setFillGray(0)
    # ship to
    y -= 18
    c.setFont("Helvetica-Bold", 8)
    c.drawString(m, y, "SHIP TO:")
    c.setFont("Helvetica-Bold", 12)
    for line in _address_lines(shipment["to_address"])[:6]:
        y -= 15
        c.drawString(m + 18, y, line[:38])
    # the barcode
    c.setLineWidth(2)
    c.line(0, 168, PAGE_W, 168)
    c.setFont("Helvetica-Bold", 8)
    c.drawCentredString(PAGE_W / 2, 156, f"{sale['carrier']} TRACKING #")
    probe = code128.Code128(tracking, barWidth=1, barHeight=70, quiet=True)
    bar_width = min(2.0, (PAGE_W - 2 * m) / probe.width)
    barcode = code128.Code128(tracking, barWidth=bar_width, barHeight=70, quiet=True, humanReadable=False)
    barcode.drawOn(c, (PAGE_W - barcode.width) / 2, 78)
    c.setFont("Helvetica-Bold", 12)
    c.drawCentredString(PAGE_W / 2, 62, _spaced(tracking))
    c.line(0, 50, PAGE_W, 50)
    c.setFont("Helvetica", 6.5)
    c.drawString(m, 36, f"REF {str(shipment.get('reference') or '')[:40]}")
    c.drawRightString(PAGE_W - m, 36, f"{sale['rate']} {sale['currency']}")
    c.setFont("Helvetica-Bold", 8)
    c.drawCentredString(PAGE_W / 2, 18, "SANDBOX LABEL - NOT VALID FOR POSTAGE")
    c.showPage()
    c.save()
    return buf.getvalue()


def _zpl_text(value: Any) -> str:
    return re.sub(r"[\^~\r\n]", " ", str(value))


def render_zpl(sale: dict[str, Any], shipment: dict[str, Any]) -> bytes:
    """The same label in ZPL II for a 203 dpi 4x6 printer (812 x 1218 dots)."""
    tracking = sale["tracking_code"]
    out = ["^XA", "^CI28", f"^PW{ZPL_DOTS_W}", f"^LL{ZPL_DOTS_H}", "^LH0,0"]
    y = 30
    out.append(f"^FO30,{y}^A0N,22,22^FDFROM^FS")
    for line in _address_lines(shipment["from_address"])[:5]:
        y += 26
        out.append(f"^FO30,{y}^A0N,22,22^FD{_zpl_text(line)[:60]}^FS")
    out.append(f"^FO560,30^A0N,22,22^FD{_now()[:10]}^FS")
    y += 40
    out.append(f"^FO0,{y}^GB{ZPL_DOTS_W},80,80^FS")
    out.append(f"^FO0,{y + 18}^FB{ZPL_DOTS_W},1,0,C^A0N,48,48^FR^FD{_zpl_text(sale['carrier'])} "
               f"{_zpl_text(_words(sale['service'])).upper()}^FS")
    y += 110
    out.append(f"^FO30,{y}^A0N,26,26^FDSHIP TO:^FS")
    for line in _address_lines(shipment["to_address"])[:6]:
        y += 44
        out.append(f"^FO80,{y}^A0N,38,38^FD{_zpl_text(line)[:34]}^FS")
    out.append(f"^FO0,700^GB{ZPL_DOTS_W},4,4^FS")
    out.append(f"^FO0,725^FB{ZPL_DOTS_W},1,0,C^A0N,26,26^FD{_zpl_text(sale['carrier'])} TRACKING #^FS")
    out.append(f"^BY3,3,200^FO60,780^BCN,200,N,N,N,A^FD{tracking}^FS")
    out.append(f"^FO0,1010^FB{ZPL_DOTS_W},1,0,C^A0N,40,40^FD{_spaced(tracking)}^FS")
    out.append(f"^FO0,1080^GB{ZPL_DOTS_W},4,4^FS")
    out.append(f"^FO30,1100^A0N,22,22^FDREF {_zpl_text(shipment.get('reference') or '')[:40]}^FS")
    out.append(f"^FO0,1160^FB{ZPL_DOTS_W},1,0,C^A0N,26,26^FDSANDBOX LABEL - NOT VALID FOR POSTAGE^FS")
    out.append("^XZ")
    return ("\n".join(out) + "\n").encode("utf-8")


# -- the server --------------------------------------------------------------------------------------


class SandboxCarrier:
    """The sandbox carrier's state and HTTP server (``start()`` / ``stop()``, or ``with``)."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, api_key: str | None = None) -> None:
        self.host = host
        self.port = port
        #: When set, only this key is accepted (any non-empty key otherwise, like a test-mode account).
        self.api_key = api_key
        self._lock = threading.Lock()
        self._shipments: dict[str, _Shipment] = {}
        self._label_files: dict[str, tuple[str, str]] = {}  # file name -> (shipment id, format)
        self._sales: list[dict[str, Any]] = []
        self._issued: set[str] = set()
        self._faults: list[Fault] = []
        self._gates: dict[str, Gate] = {}
        self._requests: list[dict[str, Any]] = []
        self._serial = 0
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # -- life cycle

    @property
    def url(self) -> str:
        port = self._server.server_address[1] if self._server else self.port
        return f"http://{self.host}:{port}"

    def start(self) -> SandboxCarrier:
        self._server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name="sandbox-carrier", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        with self._lock:
            gates = list(self._gates.values())
            self._gates.clear()
        for gate in gates:
            gate.release()
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> SandboxCarrier:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- inspection and faults

    @property
    def sales(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(s) for s in self._sales]

    @property
    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return [dict(r) for r in self._requests]

    def fail(self, status: int = 500, count: int | None = 1, *, on: str = "any", message: str | None = None,
             retry_after: float | None = None) -> None:
        """The next ``count`` matching calls (all of them while ``count`` is None) answer ``status``."""
        if on not in ("any", "create", "buy", "buy_lost", "label"):
            raise ValueError("on must be any, create, buy, buy_lost or label")
        text = message or ("The sandbox carrier failed on purpose" if status >= 500 else
                           "The sandbox carrier refused the request on purpose")
        with self._lock:
            self._faults.append(Fault(status, count, on, text, retry_after))

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def hold(self, on: str = "buy") -> Gate:
        gate = Gate()
        with self._lock:
            self._gates[on] = gate
        return gate

    def reset(self) -> None:
        with self._lock:
            self._faults.clear()
            self._sales.clear()
            self._requests.clear()

    # -- what the handler calls

    def _fault_for(self, kind: str) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.on == kind or (fault.on == "any" and kind != "buy_lost"):
                    if fault.count is not None:
                        fault.count -= 1
                        if fault.count <= 0:
                            self._faults.remove(fault)
                    return fault
        return None

    def _note(self, method: str, path: str, status: int, authorized: bool) -> None:
        with self._lock:
            self._requests.append({"method": method, "path": path, "status": status, "authorized": authorized,
                                   "at": _now()})
            del self._requests[:-500]

    def _check_key(self, header: str | None) -> None:
        key = ""
        if header and header.startswith("Basic "):
            try:
                key = base64.b64decode(header[6:]).decode().split(":", 1)[0]
            except (ValueError, UnicodeDecodeError):
                key = ""
        if not key:
            raise SandboxError(401, "APIKEY.REQUIRED", "An API key is required (HTTP Basic, the key as user name)")
        if self.api_key is not None and key != self.api_key:
            raise SandboxError(401, "APIKEY.INVALID", "The API key is not valid for this account")

    def create_shipment(self, body: dict[str, Any]) -> dict[str, Any]:
        data = body.get("shipment", body)
        if not isinstance(data, dict):
            raise SandboxError(400, "PARAMETER.INVALID", "shipment must be an object")
        errors = []
        for side in ("to_address", "from_address"):
            address = data.get(side)
            if not isinstance(address, dict):
                errors.append({"field": side, "message": "is required"})
                continue
            errors += [{"field": f"{side}.{k}", "message": "cannot be blank"} for k in ADDRESS_REQUIRED
                       if not str(address.get(k) or "").strip()]
        parcel = data.get("parcel")
        weight = parcel.get("weight") if isinstance(parcel, dict) else None
        if not isinstance(weight, int | float) or weight <= 0:
            errors.append({"field": "parcel.weight", "message": "must be greater than 0"})
        if errors:
            raise SandboxError(422, "SHIPMENT.INVALID_PARAMS", "Unable to create shipment, one or more parameters "
                                                               "were invalid.", errors)
        options = dict(data.get("options") or {})
        options.setdefault("label_format", "PNG")
        sid = _oid("shp")
        z = zone(str(data["from_address"]["zip"]), str(data["to_address"]["zip"]))
        rates = []
        for service in SERVICES:
            carrier, name, *_, days, max_oz = service
            if weight > max_oz:
                continue
            rates.append({"id": _oid("rate"), "object": "Rate", "mode": "test", "shipment_id": sid,
                          "carrier": carrier, "service": name, "rate": str(price(service, weight, z)),
                          "currency": "USD", "delivery_days": days, "carrier_account_id": f"ca_sandbox_{carrier}"})
        messages = [] if rates else [{"carrier": "USPS", "type": "rate_error",
                                      "message": f"No service carries {weight} oz"}]
        shipment = {
            "id": sid, "object": "Shipment", "mode": "test", "created_at": _now(), "status": "unknown",
            "reference": data.get("reference"),
            "to_address": {"id": _oid("adr"), "object": "Address", **data["to_address"]},
            "from_address": {"id": _oid("adr"), "object": "Address", **data["from_address"]},
            "parcel": {"id": _oid("prcl"), "object": "Parcel", **parcel},
            "options": options, "rates": rates, "messages": messages,
            "selected_rate": None, "postage_label": None, "tracking_code": None,
        }
        with self._lock:
            self._shipments[sid] = _Shipment(shipment)
        return shipment

    def _get(self, sid: str) -> _Shipment:
        with self._lock:
            found = self._shipments.get(sid)
        if found is None:
            raise SandboxError(404, "NOT_FOUND", "The requested resource could not be found.")
        return found

    def get_shipment(self, sid: str) -> dict[str, Any]:
        return self._get(sid).data

    def buy(self, sid: str, body: dict[str, Any]) -> dict[str, Any]:
        shipment = self._get(sid)
        rate_ref = body.get("rate")
        rate_id = rate_ref.get("id") if isinstance(rate_ref, dict) else rate_ref
        with self._lock:
            gate = self._gates.pop("buy", None)
        if gate is not None:
            gate.wait_open()
        with self._lock:
            data = shipment.data
            if data["postage_label"]:
                raise SandboxError(422, "SHIPMENT.POSTAGE.EXISTS", "This shipment already has postage.")
            rate = next((r for r in data["rates"] if r["id"] == rate_id), None)
            if rate is None:
                raise SandboxError(422, "SHIPMENT.RATE.INVALID", "The rate does not belong to this shipment.",
                                   [{"field": "rate.id", "message": "not found"}])
            while True:
                self._serial += 1
                tracking = make_tracking_number(rate["carrier"], self._serial)
                if tracking not in self._issued:
                    self._issued.add(tracking)
                    break
            label_id = _oid("pl")
            fmt = str(data["options"].get("label_format", "PNG")).upper()
            fmt = "ZPL" if fmt == "ZPL" else "PDF"
            data.update(selected_rate=rate, tracking_code=tracking, status="pre_transit",
                        postage_label=self._postage_label(label_id, sid, fmt))
            sale = {"label_id": label_id, "shipment_id": sid, "tracking_code": tracking,
                    "carrier": rate["carrier"], "service": rate["service"], "rate": rate["rate"],
                    "currency": rate["currency"], "label_format": fmt.lower(), "reference": data.get("reference"),
                    "to_zip": data["to_address"].get("zip"), "bought_at": _now()}
            self._sales.append(sale)
        return data

    def _postage_label(self, label_id: str, sid: str, fmt: str, existing: dict | None = None) -> dict[str, Any]:
        label = existing or {"id": label_id, "object": "PostageLabel", "created_at": _now(), "label_date": _now(),
                             "label_resolution": 203, "label_size": "4x6", "label_type": "default",
                             "label_pdf_url": None, "label_zpl_url": None, "label_epl2_url": None}
        name = f"{label['id']}.{fmt.lower()}"
        url = f"{self.url}/labels/{name}"
        self._label_files[name] = (sid, fmt.lower())
        label[f"label_{fmt.lower()}_url"] = url
        if existing is None:
            label.update(label_url=url, label_file_type="application/pdf" if fmt == "PDF" else "application/zpl")
        return label

    def convert(self, sid: str, file_format: str) -> dict[str, Any]:
        fmt = file_format.upper()
        if fmt not in ("PDF", "ZPL"):
            raise SandboxError(422, "SHIPMENT.LABEL.FORMAT", f"The sandbox makes PDF and ZPL labels, not {fmt}")
        shipment = self._get(sid)
        with self._lock:
            data = shipment.data
            if not data["postage_label"]:
                raise SandboxError(422, "SHIPMENT.POSTAGE.REQUIRED", "The shipment has no postage yet.")
            self._postage_label(data["postage_label"]["id"], sid, fmt, existing=data["postage_label"])
        return data

    def label_file(self, name: str) -> tuple[bytes, str]:
        with self._lock:
            found = self._label_files.get(name)
        if found is None:
            raise SandboxError(404, "NOT_FOUND", "No such label file.")
        sid, fmt = found
        shipment = self._get(sid)
        with self._lock:
            cached = shipment.labels.get(fmt)
            data = shipment.data
        if cached is None:
            sale = {"tracking_code": data["tracking_code"], "carrier": data["selected_rate"]["carrier"],
                    "service": data["selected_rate"]["service"], "rate": data["selected_rate"]["rate"],
                    "currency": data["selected_rate"]["currency"]}
            cached = render_pdf(sale, data) if fmt == "pdf" else render_zpl(sale, data)
            with self._lock:
                shipment.labels[fmt] = cached
        return cached, "application/pdf" if fmt == "pdf" else "application/zpl"


def _handler(carrier: SandboxCarrier) -> type[BaseHTTPRequestHandler]:
    shipment_path = re.compile(r"^/v2/shipments/(shp_[0-9a-f]+)(/buy|/label)?$")

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "orderflow-sandbox-carrier"
        disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall

        def log_message(self, fmt: str, *args: Any) -> None:
            log.debug("sandbox carrier: " + fmt, *args)

        def _send(self, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None) -> None:
            # noted before answering, so the log is in the order the client saw the answers
            carrier._note(self.command, urlsplit(self.path).path, status, bool(self.headers.get("Authorization")))
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            for key, value in (headers or {}).items():
                self.send_header(key, value)
            self.end_headers()
            self.wfile.write(body)

        def _json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
            self._send(status, json.dumps(body).encode(), "application/json", headers)

        def _body(self) -> dict[str, Any]:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            if not raw:
                return {}
            try:
                body = json.loads(raw)
            except ValueError as err:
                raise SandboxError(400, "PARAMETER.INVALID", "The body is not valid JSON") from err
            if not isinstance(body, dict):
                raise SandboxError(400, "PARAMETER.INVALID", "The body must be a JSON object")
            return body

        def _route(self) -> None:
            parts = urlsplit(self.path)
            path, query = parts.path, parse_qs(parts.query)
            if path.startswith("/_sandbox/"):
                return self._admin(path)
            if path.startswith("/labels/") and self.command == "GET":
                self._faulted("label")
                data, ctype = carrier.label_file(path[len("/labels/"):])
                return self._send(200, data, ctype)
            if not path.startswith("/v2/"):
                raise SandboxError(404, "NOT_FOUND", "The requested resource could not be found.")
            carrier._check_key(self.headers.get("Authorization"))
            if path == "/v2/shipments" and self.command == "POST":
                body = self._body()
                self._faulted("create")
                return self._json(201, carrier.create_shipment(body))
            match = shipment_path.match(path)
            if not match:
                raise SandboxError(404, "NOT_FOUND", "The requested resource could not be found.")
            sid, action = match.groups()
            if action == "/buy" and self.command == "POST":
                body = self._body()
                self._faulted("buy")
                bought = carrier.buy(sid, body)
                self._faulted("buy_lost")  # the label is bought, but the answer gets lost
                return self._json(200, bought)
            if action == "/label" and self.command == "GET":
                self._faulted("label")
                return self._json(200, carrier.convert(sid, (query.get("file_format") or ["PDF"])[-1]))
            if action is None and self.command == "GET":
                self._faulted("any")
                return self._json(200, carrier.get_shipment(sid))
            raise SandboxError(405, "METHOD.NOT_ALLOWED", "Method not allowed")

        def _faulted(self, kind: str) -> None:
            fault = carrier._fault_for(kind)
            if fault is None:
                return
            code = "INTERNAL_SERVER_ERROR" if fault.status >= 500 else (
                "RATE_LIMITED" if fault.status == 429 else "SANDBOX.REFUSED")
            err = SandboxError(fault.status, code, fault.message)
            err.retry_after = fault.retry_after  # type: ignore[attr-defined]
            raise err

        def _admin(self, path: str) -> None:
            if path == "/_sandbox/sales" and self.command == "GET":
                return self._json(200, {"sales": carrier.sales})
            if path == "/_sandbox/requests" and self.command == "GET":
                return self._json(200, {"requests": carrier.requests})
            if path == "/_sandbox/faults" and self.command == "POST":
                body = self._body()
                try:
                    carrier.fail(int(body.get("status", 500)), body.get("count", 1), on=str(body.get("on", "any")),
                                 message=body.get("message"), retry_after=body.get("retry_after"))
                except (TypeError, ValueError) as err:
                    raise SandboxError(400, "PARAMETER.INVALID", str(err)) from err
                return self._json(201, {"ok": True})
            if path == "/_sandbox/faults" and self.command == "DELETE":
                carrier.clear_faults()
                return self._json(200, {"ok": True})
            raise SandboxError(404, "NOT_FOUND", "No such sandbox route")

        def _handle(self) -> None:
            try:
                self._route()
            except SandboxError as err:
                retry_after = getattr(err, "retry_after", None)
                headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
                self._json(err.status, err.body(), headers)
            except Exception:  # noqa: BLE001 - a sandbox bug must still answer
                log.exception("sandbox carrier crashed")
                self._json(500, {"error": {"code": "INTERNAL_SERVER_ERROR", "message": "sandbox bug", "errors": []}})

        do_GET = do_POST = do_DELETE = do_PUT = _handle  # noqa: N815

    return Handler


def pdf_page_size(data: bytes) -> tuple[float, float] | None:
    """The first page's MediaBox (width, height) in points, read without a PDF library (tests use it)."""
    text = data.decode("latin-1")
    match = re.search(r"/MediaBox\s*\[\s*([\d.\-]+)\s+([\d.\-]+)\s+([\d.\-]+)\s+([\d.\-]+)\s*\]", text)
    if not match:
        for stream in re.findall(r"stream\r?\n(.*?)endstream", text, re.S):
            try:
                inner = zlib.decompress(stream.encode("latin-1")).decode("latin-1")
            except zlib.error:
                continue
            match = re.search(r"/MediaBox\s*\[\s*([\d.\-]+)\s+([\d.\-]+)\s+([\d.\-]+)\s+([\d.\-]+)", inner)
            if match:
                break
    if not match:
        return None
    x0, y0, x1, y1 = (float(v) for v in match.groups())
    return x1 - x0, y1 - y0
