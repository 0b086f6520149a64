"""Files that hold personal data or secrets (local credential files, the local stack's state): created
0600 from their first byte, written whole and renamed into place, so no reader ever sees them open to
others or half written."""

from __future__ import annotations

import os
from pathlib import Path


def write_private(path: Path, text: str, *, tmp: Path | None = None) -> None:
    """Write ``text`` to ``path`` atomically, readable by the owner only (also while it is written)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = tmp or path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)  # an older tmp file left with wider permissions is narrowed before the write
        with os.fdopen(fd, "w") as handle:
            fd = -1
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
    finally:
        if fd != -1:
            os.close(fd)
    os.replace(tmp, path)
