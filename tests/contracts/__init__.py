"""Real API models published by the platforms, kept in the repository so contract tests always run
(see ``amazon-sp-api/README.md`` for their source and licence)."""

from __future__ import annotations

import json
from pathlib import Path

AMAZON_SP_API = Path(__file__).parent / "amazon-sp-api"


def amazon_model(name: str) -> dict:
    """One of Amazon's SP-API OpenAPI models, e.g. ``orders_2026-01-01.json``."""
    return json.loads((AMAZON_SP_API / name).read_text())
