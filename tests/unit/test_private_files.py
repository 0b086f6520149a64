"""Files holding personal data or secrets are owner-only from their first byte, not chmod-ed after: a
crash (or a reader) between the write and a chmod never finds them open to others."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from types import SimpleNamespace

import pytest

from orderflow.private_files import write_private


class Crash(Exception):
    pass


@pytest.fixture
def crash_mid_write(monkeypatch):
    """The most open umask, and the process dies after the bytes are written but before the file is
    made private or renamed (the fsync or a later chmod fails)."""
    def crash(*_, **__):
        raise Crash

    monkeypatch.setattr(os, "fsync", crash)
    monkeypatch.setattr(Path, "chmod", crash)
    old = os.umask(0)
    yield
    os.umask(old)


def modes(folder: Path) -> dict[str, int]:
    return {p.name: stat.S_IMODE(p.stat().st_mode) for p in folder.iterdir()}


def test_a_private_file_is_owner_only_and_complete(tmp_path):
    (tmp_path / "secret.json.tmp").write_text("left over")
    os.chmod(tmp_path / "secret.json.tmp", 0o666)
    write_private(tmp_path / "secret.json", '{"token": "t"}')
    assert modes(tmp_path) == {"secret.json": 0o600}
    assert (tmp_path / "secret.json").read_text() == '{"token": "t"}'


def test_a_crash_mid_write_leaves_the_snapshot_and_state_files_owner_only(tmp_path, crash_mid_write):
    from orderflow_local.persistence import Snapshots
    from orderflow_local.stack import LocalStack

    with pytest.raises(Crash):
        Snapshots(tmp_path, {}).save(force=True)  # data.json.tmp: every order's personal data
    state = SimpleNamespace(state_dir=tmp_path, environment=dict, api_url="http://x", endpoint="http://y",
                            token="the-api-token", state_machine_arn="arn")
    with pytest.raises(Crash):
        LocalStack._write_state_file(state)  # local.json: the API token
    written = modes(tmp_path)
    assert written and set(written.values()) == {0o600}, written
