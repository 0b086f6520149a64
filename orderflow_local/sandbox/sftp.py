"""A real SFTP server on loopback for sandbox suppliers and the tests, and a sandbox supplier behind it.

:class:`SandboxSftpServer` is asyncssh's SFTP server on ``127.0.0.1`` (a free port), with a generated
Ed25519 host key and password accounts, each chrooted to its own folder; it runs its event loop in a
background thread, so it is real SSH and SFTP on the wire for the production paramiko client. It can
be told to go down (the listener closes, connections drop, new ones are refused) and to come back on
the same port.

:class:`SandboxSupplier` plays the supplier behind one account: it picks up the order files we drop in
its ``in`` folder and, after a short delay, writes a tracking file to ``out`` (``.tmp`` then rename),
one row per line with a made-up tracking number; a cancellation file stops an order it has not shipped
yet. Picked-up files move to ``picked/``, as real suppliers move files away. So the local stack shows
dropship and 3PL orders completing by supplier tracking with no internet.
"""

from __future__ import annotations

import asyncio
import csv
import hashlib
import hmac
import io
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncssh

from orderflow.suppliers.config import OrderFileFormat, TrackingFileFormat

log = logging.getLogger(__name__)
# asyncssh logs every connection with the peer's address at INFO.
logging.getLogger("asyncssh").setLevel(logging.WARNING)

FOLDERS = ("in", "out", "archive", "error")


class SandboxSftpServer:
    def __init__(self, root: Path | str, host: str = "127.0.0.1", port: int = 0) -> None:
        self.root = Path(root)
        self.host = host
        self.port = port
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        self._accounts: dict[str, str] = {}
        self._keys: dict[str, str] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._listener: Any = None
        self._connections: set[Any] = set()
        self._lock = threading.Lock()
        self.suppliers: list[SandboxSupplier] = []

    @property
    def fingerprint(self) -> str:
        """``SHA256:…``, as ``ssh-keygen -lf`` prints it (what a supplier config pins)."""
        return self.host_key.get_fingerprint("sha256")

    @property
    def up(self) -> bool:
        return self._listener is not None

    def add_account(self, username: str, password: str | None = None, public_key: str | None = None) -> Path:
        """A login chrooted to ``<root>/<username>``, with in/, out/, archive/ and error/ folders; it
        authenticates with the password, or with the private key of ``public_key`` (OpenSSH format)."""
        folder = self.folder(username)
        for name in FOLDERS:
            (folder / name).mkdir(parents=True, exist_ok=True)
        with self._lock:
            if password is not None:
                self._accounts[username] = password
            if public_key is not None:
                self._keys[username] = asyncssh.import_public_key(public_key).export_public_key("openssh").decode()
        return folder

    def folder(self, username: str) -> Path:
        return self.root / username

    # -- life cycle ------------------------------------------------------------------------------

    def start(self) -> SandboxSftpServer:
        self.root.mkdir(parents=True, exist_ok=True)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="sandbox-sftp", daemon=True)
        self._thread.start()
        self.come_back()
        return self

    def _call(self, coro) -> Any:  # noqa: ANN001
        assert self._loop is not None, "start() the server first"
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=10)

    def come_back(self) -> None:
        """(Re)start listening, on the same port as before."""
        if self._listener is None:
            self._listener = self._call(self._listen())

    def go_down(self) -> None:
        """Stop listening and drop every connection: clients see the server as down."""
        if self._listener is not None:
            self._call(self._close())

    def stop(self) -> None:
        for supplier in self.suppliers:
            supplier.stop()
        if self._loop is None:
            return
        self.go_down()
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread:
            self._thread.join(timeout=5)
        self._loop.close()
        self._loop = None

    async def _listen(self) -> Any:
        server = self

        class Session(asyncssh.SSHServer):
            def connection_made(self, conn: Any) -> None:
                self.conn = conn
                server._connections.add(conn)

            def connection_lost(self, exc: Exception | None) -> None:
                server._connections.discard(getattr(self, "conn", None))

            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return True

            def validate_password(self, username: str, password: str) -> bool:
                with server._lock:
                    expected = server._accounts.get(username)
                return expected is not None and hmac.compare_digest(expected.encode(), password.encode())

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: Any) -> bool:
                with server._lock:
                    expected = server._keys.get(username)
                return expected is not None and key.export_public_key("openssh").decode() == expected

        def sftp_factory(chan: Any) -> asyncssh.SFTPServer:
            username = chan.get_extra_info("username")
            return asyncssh.SFTPServer(chan, chroot=str(server.folder(username)))

        listener = await asyncssh.listen(self.host, self.port, server_host_keys=[self.host_key],
                                         server_factory=Session, sftp_factory=sftp_factory, allow_scp=False,
                                         reuse_address=True)
        self.port = listener.sockets[0].getsockname()[1]
        return listener

    async def _close(self) -> None:
        listener, self._listener = self._listener, None
        listener.close()
        for conn in list(self._connections):
            conn.abort()
        self._connections.clear()
        await listener.wait_closed()

    def __enter__(self) -> SandboxSftpServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@dataclass
class _Pending:
    po_number: str
    order_number: str
    lines: list[tuple[str, int]]
    due: float


@dataclass
class SandboxSupplier:
    """The supplier (or 3PL) behind one sandbox account; reads and writes its folder directly."""

    folder: Path
    order_format: OrderFileFormat = field(default_factory=OrderFileFormat)
    tracking_format: TrackingFileFormat = field(default_factory=TrackingFileFormat)
    in_folder: str = "in"
    out_folder: str = "out"
    #: Seconds between picking an order up and writing its tracking file.
    delay_seconds: float = 3.0
    scan_seconds: float = 0.2
    carrier: str = "UPS"
    service: str = "Ground"
    #: Parcels per order: more than one puts several tracking numbers in one cell, joined with the
    #: format's first separator.
    parcels: int = 1
    shipped: list[str] = field(default_factory=list)
    cancelled: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._pending: dict[str, _Pending] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def start(self) -> SandboxSupplier:
        self._thread = threading.Thread(target=self._loop, name=f"sandbox-supplier-{self.folder.name}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def _loop(self) -> None:
        while not self._stop.wait(self.scan_seconds):
            try:
                self.step()
            except Exception as exc:  # noqa: BLE001 - a sandbox keeps going
                log.warning("sandbox supplier %s: %s", self.folder.name, exc)

    def step(self, now: float | None = None) -> None:
        """Pick up new files, then ship what is due."""
        now = time.time() if now is None else now
        inbound = self.folder / self.in_folder.strip("/")
        picked = self.folder / "picked"
        for path in sorted(inbound.iterdir()) if inbound.is_dir() else []:
            if not path.is_file() or path.name.endswith(".tmp") or path.name.startswith("."):
                continue
            self._take(path.read_bytes(), now)
            picked.mkdir(exist_ok=True)
            shutil.move(str(path), picked / path.name)
        with self._lock:
            due = [p for p in self._pending.values() if p.due <= now]
        for pending in due:
            self._ship(pending)
            with self._lock:
                self._pending.pop(pending.po_number, None)
                self.shipped.append(pending.po_number)

    def _take(self, data: bytes, now: float) -> None:
        fmt = self.order_format
        rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig"), newline=""), delimiter=fmt.delimiter))
        if not rows:
            return
        header = rows[0] if fmt.header_row else None
        if header is not None and [c.header for c in fmt.cancel_columns] == header:
            fields = [c.field for c in fmt.cancel_columns]
            for row in rows[1:]:
                values = dict(zip(fields, row, strict=False))
                po = values.get("po_number") or ""
                with self._lock:
                    if self._pending.pop(po, None) is not None or po not in self.shipped:
                        self.cancelled.append(po)
            return
        fields = [c.field for c in fmt.columns]
        for row in rows[1:] if header is not None else rows:
            values = dict(zip(fields, row, strict=False))
            po = values.get("po_number") or ""
            with self._lock:
                if po in self.cancelled or po in self.shipped:
                    continue
                pending = self._pending.setdefault(po, _Pending(po, values.get("order_number") or "", [],
                                                                now + self.delay_seconds))
                pending.lines.append((values.get("sku") or "", int(values.get("quantity") or 1)))

    def _ship(self, pending: _Pending) -> None:
        fmt = self.tracking_format
        numbers = [_tracking_number(self.carrier, f"{pending.po_number}#{n}") for n in range(max(1, self.parcels))]
        cell = fmt.tracking_separators[0].join(numbers)
        values_per_line = [{"po_number": pending.po_number, "order_number": pending.order_number, "sku": sku,
                            "quantity": str(quantity), "carrier": self.carrier, "service": self.service,
                            "tracking_number": cell, "ship_date": time.strftime("%Y-%m-%d", time.gmtime()),
                            "tracking_url": "", "line_number": ""}
                           for sku, quantity in pending.lines]
        out = io.StringIO(newline="")
        writer = csv.writer(out, delimiter=fmt.delimiter, lineterminator="\r\n")
        columns = list(fmt.columns.items())
        writer.writerow([header for _, header in columns])
        for values in values_per_line:
            writer.writerow([values.get(ours, "") for ours, _ in columns])
        target = self.folder / self.out_folder.strip("/") / f"SHIP_{pending.po_number}.csv"
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_bytes(out.getvalue().encode())
        os.replace(tmp, target)


def _tracking_number(carrier: str, seed: str) -> str:
    digest = hashlib.sha256(seed.encode()).hexdigest().upper()
    if carrier.upper() == "UPS":
        return "1Z" + digest[:16]
    return "".join(str(int(c, 16) % 10) for c in digest[:20])
