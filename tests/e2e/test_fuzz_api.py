"""Schemathesis generates requests from the published OpenAPI document (/openapi.json) and sends
them to the running local stack: no generated request may get a 5xx."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.e2e.conftest import TOKEN

pytestmark = pytest.mark.e2e


def test_no_generated_request_gets_a_server_error(local_stack, tmp_path):
    st = Path(sys.executable).with_name("schemathesis")
    run = subprocess.run(
        [str(st), "run", f"{local_stack['url']}/openapi.json", "-H", f"Authorization: Bearer {TOKEN}",
         "--checks", "not_a_server_error", "--max-examples", "5", "--seed", "7", "--workers", "2",
         "--phases", "examples,coverage,fuzzing", "--no-color"],
        capture_output=True, text=True, timeout=600, cwd=tmp_path)
    report = run.stdout[-6000:] + run.stderr[-2000:]
    assert "generated" in report, report  # it ran
    assert "Server error" not in report and "ST101" not in report, report
