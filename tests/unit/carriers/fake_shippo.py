"""A tiny stand-in for Shippo's API shape on a real loopback socket (shipments, transactions, label files).

It checks the two headers Shippo needs, records every call (method, path, headers, JSON body) and can
be told what to answer next for a route (``queue("transactions", 400, {...})``).
"""

from __future__ import annotations

import json
import secrets
import threading
from collections import defaultdict, deque
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

TINY_PDF = (b"%PDF-1.4\n1 0 obj<</Type/Catalog/Pages 2 0 R>>endobj\n2 0 obj<</Type/Pages/Count 1/Kids[3 0 R]>>endobj\n"
            b"3 0 obj<</Type/Page/Parent 2 0 R/MediaBox[0 0 288 432]>>endobj\ntrailer<</Root 1 0 R>>\n%%EOF\n")
TINY_ZPL = b"^XA^FO50,50^BCN,100,Y,N,N^FD92055901755477000000000015^FS^XZ\n"

RATES = (("USPS", "usps_priority", "Priority Mail", "7.50"),
         ("USPS", "usps_ground_advantage", "Ground Advantage", "5.20"),
         ("UPS", "ups_ground", "Ground", "9.10"))


class FakeShippo:
    def __init__(self, token: str = "shippo_test_0123456789") -> None:
        self.token = token
        self.calls: list[dict[str, Any]] = []
        self.shipments: dict[str, dict] = {}
        self.transactions: dict[str, dict] = {}
        #: Statuses a new transaction goes through on creation and each GET (the last one stays).
        self.transaction_statuses: list[str] = ["SUCCESS"]
        self._queued: dict[str, deque[tuple[int, Any]]] = defaultdict(deque)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def __enter__(self) -> FakeShippo:
        threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def queue(self, route: str, status: int, body: Any) -> None:
        """The next call to ``route`` answers this: ``shipments`` / ``transactions`` (POST), ``shipment`` /
        ``transaction`` (GET one), ``transactions_list``, ``files``."""
        self._queued[route].append((status, body))

    def paths(self, method: str | None = None) -> list[str]:
        return [c["path"] for c in self.calls if method is None or c["method"] == method]

    # -- behaviour

    def _shipment(self, body: dict) -> dict:
        oid = secrets.token_hex(16)
        rates = [{"object_id": secrets.token_hex(16), "provider": p, "servicelevel": {"token": t, "name": n},
                  "amount": a, "currency": "USD", "shipment": oid} for p, t, n, a in RATES]
        shipment = {"object_id": oid, "status": "SUCCESS", "rates": rates, "messages": [],
                    "metadata": body.get("metadata", "")}
        self.shipments[oid] = shipment
        return shipment

    def _transaction(self, body: dict) -> dict:
        oid = secrets.token_hex(16)
        ext = "zpl" if body.get("label_file_type") == "ZPLII" else "pdf"
        statuses = list(self.transaction_statuses)
        tx = {"object_id": oid, "status": statuses.pop(0), "rate": body.get("rate"),
              "tracking_number": f"9205590175547700{len(self.transactions):010d}",
              "tracking_url_provider": "https://tools.usps.com/", "label_url": f"{self.url}/files/{oid}.{ext}",
              "metadata": body.get("metadata", ""), "messages": [], "_next": statuses}
        self.transactions[oid] = tx
        return tx

    @staticmethod
    def _public(tx: dict) -> dict:
        return {k: v for k, v in tx.items() if not k.startswith("_")}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any) -> None:
                raw = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/octet-stream" if isinstance(body, bytes)
                                 else "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _handle(self) -> None:
                path = urlsplit(self.path).path.rstrip("/")
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                with fake._lock:
                    fake.calls.append({"method": self.command, "path": path, "headers": dict(self.headers.items()),
                                       "json": body})
                parts = path.strip("/").split("/")
                if parts[0] == "files":
                    route = "files"
                elif len(parts) == 2:  # GET /shipments/{id}, GET /transactions/{id}
                    route = parts[0][:-1]
                else:  # POST /shipments, POST /transactions, GET /transactions (the list)
                    route = parts[0] if self.command == "POST" else f"{parts[0]}_list"
                with fake._lock:
                    queued = fake._queued[route].popleft() if fake._queued[route] else None
                if queued:
                    return self._send(*queued)
                if route == "files":
                    return self._send(200, TINY_ZPL if path.endswith(".zpl") else TINY_PDF)
                if self.headers.get("Authorization") != f"ShippoToken {fake.token}":
                    return self._send(401, {"detail": "Invalid token."})
                if self.headers.get("SHIPPO-API-VERSION") != "2018-02-08":
                    return self._send(400, {"detail": "unexpected API version"})
                with fake._lock:
                    if self.command == "POST" and path == "/shipments":
                        return self._send(201, fake._shipment(body or {}))
                    if self.command == "GET" and route == "shipment":
                        found = fake.shipments.get(parts[1])
                        return self._send(200, found) if found else self._send(404, {"detail": "Not found."})
                    if self.command == "POST" and path == "/transactions":
                        if not (body or {}).get("rate"):
                            return self._send(400, {"rate": ["This field is required."]})
                        return self._send(201, fake._public(fake._transaction(body)))
                    if route == "transactions_list":
                        return self._send(200, {"results": [fake._public(t) for t in fake.transactions.values()],
                                                "next": None})
                    if self.command == "GET" and route == "transaction":
                        tx = fake.transactions.get(parts[1])
                        if tx is None:
                            return self._send(404, {"detail": "Not found."})
                        if tx["_next"]:
                            tx["status"] = tx["_next"].pop(0)
                        return self._send(200, fake._public(tx))
                return self._send(404, {"detail": "Not found."})

            do_GET = do_POST = _handle  # noqa: N815

        return Handler
