"""What the API's routers share: the ports they run on (overridable by tests) and JSON responses. The
routers import this module, never orderflow.api.app (which includes them), so there is no cycle."""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.event_handler import Response, content_types

from orderflow.ports import Ports
from orderflow.wiring import default_ports

_ports: Ports | None = None


def ports() -> Ports:
    return _ports or default_ports()


def use_ports(custom: Ports | None) -> None:
    """Tests may run the API over their own ports."""
    global _ports
    _ports = custom


def json_response(status: int, body: Any, headers: dict[str, str] | None = None) -> Response:
    return Response(status_code=status, content_type=content_types.APPLICATION_JSON,
                    body=json.dumps(body, default=str), headers=headers)
