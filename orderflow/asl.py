"""The state machine definition: one ASL file with ``${Placeholders}``, filled by CDK or the local stack."""

from __future__ import annotations

import json
import re
from pathlib import Path

STATEMACHINES = Path(__file__).resolve().parent.parent / "statemachines"
ORDER_WORKFLOW = STATEMACHINES / "order_workflow.asl.json"
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_]+)\}")

#: Lambda-backed placeholders and the function (functions/<name>/) each names.
FUNCTION_PLACEHOLDERS = {
    "PrepareFunctionArn": "prepare",
    "FulfillFunctionArn": "fulfill",
}
TABLE_PLACEHOLDERS = {"OrdersTableName": "orders"}
#: Queue-backed placeholders and the queue each names (orderflow.queues). None since the workflow has one wait
#: for all of an order's shipments: the fulfill function hands shipments to the forwarders' queues, and the
#: code that records a shipment sends it to the channel-updates queue.
QUEUE_PLACEHOLDERS: dict[str, str] = {}


def read(path: Path = ORDER_WORKFLOW) -> str:
    return path.read_text()


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def substitute(text: str, values: dict[str, str]) -> str:
    missing = placeholders(text) - values.keys()
    if missing:
        raise KeyError(f"no value for placeholder(s) {sorted(missing)}")
    out = _PLACEHOLDER.sub(lambda m: values[m.group(1)], text)
    json.loads(out)  # still valid JSON
    return out
