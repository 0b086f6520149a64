"""Where suppliers' SFTP credentials live: never in the settings table.

- AWS: one Secrets Manager secret per supplier, ``<prefix><warehouse id>`` (prefix
  ``orderflow/suppliers/`` unless ``ORDERFLOW_SUPPLIER_SECRET_PREFIX`` says otherwise), a JSON object.
  moto serves the same API, so the local stack could use it too.
- Local stack: ``ORDERFLOW_SUPPLIER_CREDENTIALS_FILE`` (set by ``orderflow local`` to
  ``<state dir>/supplier-credentials.json``), one JSON file readable by its owner only.
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Protocol

from botocore.exceptions import ClientError

from orderflow.adapters.aws import client
from orderflow.private_files import write_private
from orderflow.suppliers.config import SupplierCredentials

SECRET_PREFIX_ENV = "ORDERFLOW_SUPPLIER_SECRET_PREFIX"
CREDENTIALS_FILE_ENV = "ORDERFLOW_SUPPLIER_CREDENTIALS_FILE"
DEFAULT_SECRET_PREFIX = "orderflow/suppliers/"


class CredentialStore(Protocol):
    def put(self, warehouse_id: str, credentials: SupplierCredentials) -> str: ...

    def get(self, warehouse_id: str) -> SupplierCredentials | None: ...


class SecretsManagerCredentials:
    """One secret per supplier; values read are cached a minute per container."""

    def __init__(self, prefix: str | None = None, cache_seconds: float = 60.0) -> None:
        self.prefix = prefix or os.environ.get(SECRET_PREFIX_ENV, DEFAULT_SECRET_PREFIX)
        self.cache_seconds = cache_seconds
        self._cache: dict[str, tuple[float, dict[str, str]]] = {}
        self._lock = threading.Lock()

    def name(self, warehouse_id: str) -> str:
        return f"{self.prefix}{warehouse_id}"

    def put(self, warehouse_id: str, credentials: SupplierCredentials) -> str:
        secret = json.dumps(credentials.reveal())
        sm = client("secretsmanager")
        try:
            sm.put_secret_value(SecretId=self.name(warehouse_id), SecretString=secret)
        except ClientError as err:
            if err.response["Error"]["Code"] != "ResourceNotFoundException":
                raise
            sm.create_secret(Name=self.name(warehouse_id), SecretString=secret,
                             Description=f"orderflow supplier {warehouse_id}: SFTP credentials")
        with self._lock:
            self._cache.pop(warehouse_id, None)
        return f"secretsmanager:{self.name(warehouse_id)}"

    def get(self, warehouse_id: str) -> SupplierCredentials | None:
        with self._lock:
            cached = self._cache.get(warehouse_id)
        if cached and cached[0] > time.monotonic():
            return SupplierCredentials.model_validate(cached[1])
        try:
            resp = client("secretsmanager").get_secret_value(SecretId=self.name(warehouse_id))
        except ClientError as err:
            if err.response["Error"]["Code"] == "ResourceNotFoundException":
                return None
            raise
        data = json.loads(resp["SecretString"])
        with self._lock:
            self._cache[warehouse_id] = (time.monotonic() + self.cache_seconds, data)
        return SupplierCredentials.model_validate(data)


class FileCredentials:
    """The local stack's supplier credentials: one JSON file, mode 0600."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()

    def _read(self) -> dict[str, dict[str, str]]:
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}

    def put(self, warehouse_id: str, credentials: SupplierCredentials) -> str:
        with self._lock:
            data = self._read()
            data[warehouse_id] = credentials.reveal()
            write_private(self.path, json.dumps(data, indent=2))
        return f"file:{self.path.name}#{warehouse_id}"

    def get(self, warehouse_id: str) -> SupplierCredentials | None:
        with self._lock:
            data = self._read().get(warehouse_id)
        return SupplierCredentials.model_validate(data) if data else None


def default_credentials() -> CredentialStore:
    """The credentials file when ``ORDERFLOW_SUPPLIER_CREDENTIALS_FILE`` is set, else Secrets Manager."""
    path = os.environ.get(CREDENTIALS_FILE_ENV)
    return FileCredentials(path) if path else SecretsManagerCredentials()
