"""Where label files live: S3 on AWS (``ORDERFLOW_LABEL_BUCKET``), a folder on the local stack
(``ORDERFLOW_LABEL_DIR``, files under its ``labels/``). Keys are ``labels/{order_id}/{shipment_id}.{pdf|zpl}``
in both."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Protocol

from orderflow import config
from orderflow.adapters.s3 import S3Files
from orderflow.carriers.base import LabelFormat
from orderflow.errors import NotFound, TransientError

BUCKET_ENV = config.LABEL_BUCKET.name
DIR_ENV = config.LABEL_DIR.name
_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_\-]{0,127}$")


def label_key(order_id: str, shipment_id: str, fmt: LabelFormat) -> str:
    for value in (order_id, shipment_id):
        if not _SAFE.match(value):
            raise ValueError(f"not a safe id for a storage key: {value!r}")
    return f"labels/{order_id}/{shipment_id}.{fmt.value}"


class LabelStore(Protocol):
    def put(self, order_id: str, shipment_id: str, fmt: LabelFormat, data: bytes) -> str:
        """Store the label; return its key."""
        ...

    def get(self, key: str) -> bytes: ...


class S3LabelStore:
    def __init__(self, bucket: str | None = None) -> None:
        self.bucket = bucket or os.environ.get(BUCKET_ENV) or ""
        if not self.bucket:
            raise RuntimeError(f"labels need a bucket: set {BUCKET_ENV} (or {DIR_ENV} for a local folder)")

    def put(self, order_id: str, shipment_id: str, fmt: LabelFormat, data: bytes) -> str:
        key = label_key(order_id, shipment_id, fmt)
        try:
            S3Files(self.bucket).put(key, data, fmt.content_type)
        except TransientError as err:
            raise TransientError("the label could not be stored; retry (the label is not bought twice)") from err
        return key

    def get(self, key: str) -> bytes:
        try:
            return S3Files(self.bucket).get(key)
        except NotFound as err:
            raise NotFound("the label file is missing from storage", key=key) from err


class LocalLabelStore:
    def __init__(self, root: Path | str) -> None:
        self.root = Path(root).resolve()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"label key outside the store: {key!r}")
        return path

    def put(self, order_id: str, shipment_id: str, fmt: LabelFormat, data: bytes) -> str:
        key = label_key(order_id, shipment_id, fmt)
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
        return key

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError as err:
            raise NotFound("the label file is missing from storage", key=key) from err


def default_label_store() -> LabelStore:
    folder = os.environ.get(DIR_ENV)
    return LocalLabelStore(folder) if folder else S3LabelStore()
