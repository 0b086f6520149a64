"""The local stack's data on disk: moto keeps everything in memory, so the stack writes every table's
items to ``<state dir>/data.json`` and loads them when it starts again.

- **When**: every ``every`` seconds while it runs (only when something was written since the last
  snapshot) and once more at a clean stop. A ``kill -9`` loses at most the last ``every`` seconds.
- **Consistent**: a snapshot holds moto's DynamoDB write lock while it reads, so it never holds half of a
  transaction (a stock change without its ledger entry).
- **Atomic**: written to ``data.json.tmp`` and renamed; a crash mid-write leaves the previous snapshot.
- **What is not kept**: Step Functions executions and queued SQS messages (their task tokens die with the
  process). After a restart the reconciler (run once at start, then on its schedule) redrives every order
  whose workflow should be running: each step is idempotent, so no stock moves twice and no supplier file
  or label is made twice. Credentials and labels are files in the state folder already.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from pathlib import Path
from typing import Any

from orderflow.adapters.aws import client
from orderflow.private_files import write_private

log = logging.getLogger(__name__)

FORMAT = 1
DATA_FILE = "data.json"


class Snapshots:
    def __init__(self, state_dir: Path, tables: dict[str, str], *, every: float = 5.0) -> None:
        self.path = Path(state_dir) / DATA_FILE
        self.tables = tables  # table key -> table name
        self.every = every
        self.saved_at: float | None = None
        self.items_saved = 0
        self._writes_seen = -1
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._save_lock = threading.Lock()

    # -- load ---------------------------------------------------------------------------------------

    def load(self) -> int:
        """Put the saved items back into the (new, empty) tables. Returns how many were loaded."""
        if not self.path.exists():
            return 0
        try:
            data = json.loads(self.path.read_text())
        except (OSError, ValueError) as err:
            broken = self.path.with_suffix(f".unreadable-{int(time.time())}.json")
            self.path.rename(broken)
            log.warning("the local stack's saved data could not be read (%s); kept it as %s and started empty",
                        err, broken.name)
            return 0
        if data.get("format") != FORMAT:
            log.warning("the saved data has format %s, not %s: starting empty", data.get("format"), FORMAT)
            return 0
        ddb = client("dynamodb")
        loaded = 0
        for key, items in (data.get("tables") or {}).items():
            name = self.tables.get(key)
            if name is None:
                continue
            for item in items:
                # A lease (an import of a channel, an upload to a supplier) held by the stopped process
                # ended with it: the next run may take it at once instead of waiting for it to run out.
                if "lease_until" in item:
                    item["lease_until"] = {"N": "0"}
            for start in range(0, len(items), 25):
                requests = [{"PutRequest": {"Item": item}} for item in items[start:start + 25]]
                pending: dict[str, Any] = {name: requests}
                while pending:
                    pending = ddb.batch_write_item(RequestItems=pending).get("UnprocessedItems") or {}
            loaded += len(items)
        self._writes_seen = _write_count()
        self.items_saved = loaded
        log.info("loaded %d item(s) saved at %s from %s", loaded, data.get("saved_at_utc", "?"), self.path)
        return loaded

    # -- save ---------------------------------------------------------------------------------------

    def save(self, *, force: bool = False) -> bool:
        """Write every table's items (when anything was written since the last save, or ``force``)."""
        from orderflow_local.lambda_binding import DYNAMODB_WRITE_LOCK

        with self._save_lock:
            writes = _write_count()
            if not force and writes == self._writes_seen:
                return False
            ddb = client("dynamodb")
            tables: dict[str, list[dict[str, Any]]] = {}
            with DYNAMODB_WRITE_LOCK:  # no write lands while we read: one consistent cut
                writes = _write_count()
                for key, name in self.tables.items():
                    items: list[dict[str, Any]] = []
                    for page in ddb.get_paginator("scan").paginate(TableName=name, ConsistentRead=True):
                        items.extend(page.get("Items", []))
                    tables[key] = items
            body = {"format": FORMAT, "saved_at_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "tables": tables}
            write_private(self.path, json.dumps(body, separators=(",", ":")),
                          tmp=self.path.with_suffix(".json.tmp"))
            self._writes_seen = writes
            self.saved_at = time.time()
            self.items_saved = sum(len(v) for v in tables.values())
            return True

    # -- background ---------------------------------------------------------------------------------

    def start(self) -> Snapshots:
        def run() -> None:
            while not self._stop.wait(self.every):
                try:
                    self.save()
                except Exception as exc:  # noqa: BLE001 - try again next time; a clean stop saves too
                    log.warning("could not save the local stack's data: %s", exc)

        self._thread = threading.Thread(target=run, name="local-snapshots", daemon=True)
        self._thread.start()
        return self

    def stop(self, *, final: bool = True) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=30)
            self._thread = None
        if final:
            self.save(force=True)


def _write_count() -> int:
    """How many DynamoDB writes moto has taken (counted by the write lock's wrapper)."""
    from orderflow_local import lambda_binding

    return lambda_binding.dynamodb_writes()
