"""Every ``ORDERFLOW_*`` environment variable, declared once: its name, what it means, who sets it.

The code reads a variable through its declaration here (``STATE_MACHINE_ARN.get()``), the CDK app sets
it by the same name (``infra/constructs``), and the local runtime gives a function the ones declared
``LOCAL`` (``orderflow_local/function_env.py``) and nothing else outside its template. No other module of
``orderflow``, ``functions`` or ``infra`` spells an ``ORDERFLOW_`` name (``tests/unit/test_config.py``),
and ``docs/configuration.md`` is this table, checked by the same test.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from enum import StrEnum

PREFIX = "ORDERFLOW_"


class SetBy(StrEnum):
    CDK = "CDK (the function's environment in the template)"
    LOCAL = "the local stack (its stand-ins for AWS, the sandboxes)"
    OPERATOR = "the operator, when the default does not suit"


@dataclass(frozen=True)
class Variable:
    name: str
    meaning: str
    set_by: SetBy
    default: str | None = None

    def get(self) -> str | None:
        """Its value now (an empty one counts as unset), else the default."""
        return os.environ.get(self.name) or self.default


def table_variable(key: str) -> str:
    """The variable naming table ``key`` (``orderflow.tables``) to the functions that use it."""
    return f"{PREFIX}{key.upper()}_TABLE"


def queue_variable(key: str) -> str:
    """The variable holding the URL of queue ``key`` (``orderflow.queues``)."""
    return f"{PREFIX}{key.upper().replace('-', '_')}_QUEUE_URL"


def function_variable(name: str) -> str:
    """The variable naming function ``name`` (``functions/<name>``) to a function that invokes it."""
    return f"{PREFIX}{name.upper()}_FUNCTION"


# -- the workflow, labels, the console ---------------------------------------------------------------------

STATE_MACHINE_ARN = Variable(f"{PREFIX}STATE_MACHINE_ARN", "the order workflow's state machine", SetBy.CDK)
LABEL_BUCKET = Variable(f"{PREFIX}LABEL_BUCKET", "the S3 bucket that keeps bought labels", SetBy.CDK)
LABEL_DIR = Variable(f"{PREFIX}LABEL_DIR", "the folder that keeps labels instead of S3", SetBy.LOCAL)
CONSOLE_ORIGIN = Variable(f"{PREFIX}CONSOLE_ORIGIN",
                          "the console's origin (its CloudFront URL): the only one CORS answers", SetBy.CDK)
POLL_TRACKING_FUNCTION = Variable(function_variable("poll_tracking"),
                                  "the function POST /suppliers/{id}/poll invokes (not the API's 29 s)", SetBy.CDK)
AWS_ENDPOINT = Variable(f"{PREFIX}AWS_ENDPOINT",
                        "an AWS endpoint other than AWS's own (the console links no AWS console then)",
                        SetBy.OPERATOR)

# -- channels ------------------------------------------------------------------------------------------

IMPORT_SCHEDULE_GROUP = Variable(f"{PREFIX}IMPORT_SCHEDULE_GROUP",
                                 "the EventBridge Scheduler group of the channels' import schedules", SetBy.CDK)
IMPORT_SCHEDULER_ROLE_ARN = Variable(f"{PREFIX}IMPORT_SCHEDULER_ROLE_ARN",
                                     "the role those schedules invoke the import function with", SetBy.CDK)
IMPORT_FUNCTION_ARN = Variable(f"{PREFIX}IMPORT_FUNCTION_ARN", "the import function the schedules invoke",
                               SetBy.CDK)
CHANNEL_CREDENTIALS_FILE = Variable(f"{PREFIX}CHANNEL_CREDENTIALS_FILE",
                                    "the 0600 file of channel credentials instead of Secrets Manager", SetBy.LOCAL)
CHANNEL_SECRET_PREFIX = Variable(f"{PREFIX}CHANNEL_SECRET_PREFIX", "the channels' Secrets Manager name prefix",
                                 SetBy.OPERATOR, "orderflow/channels/")
CHANNEL_UPDATE_RETRY_SECONDS = Variable(f"{PREFIX}CHANNEL_UPDATE_RETRY_SECONDS",
                                        "the first wait before telling a channel again", SetBy.OPERATOR, "30")

# -- suppliers, carriers, FBA ------------------------------------------------------------------------------

SUPPLIER_CREDENTIALS_FILE = Variable(f"{PREFIX}SUPPLIER_CREDENTIALS_FILE",
                                     "the 0600 file of SFTP credentials instead of Secrets Manager", SetBy.LOCAL)
SUPPLIER_SECRET_PREFIX = Variable(f"{PREFIX}SUPPLIER_SECRET_PREFIX", "the suppliers' Secrets Manager name prefix",
                                  SetBy.OPERATOR, "orderflow/suppliers/")
SUPPLIER_RETRY_SECONDS = Variable(f"{PREFIX}SUPPLIER_RETRY_SECONDS",
                                  "the wait before forwarding to an unreachable supplier again", SetBy.OPERATOR, "60")
CARRIER_CREDENTIALS_FILE = Variable(f"{PREFIX}CARRIER_CREDENTIALS_FILE",
                                    "the 0600 file of carrier API keys instead of Secrets Manager", SetBy.LOCAL)
CARRIER_SECRET_PREFIX = Variable(f"{PREFIX}CARRIER_SECRET_PREFIX", "the carriers' Secrets Manager name prefix",
                                 SetBy.OPERATOR, "orderflow/carriers/")
CARRIER_KEY_PREFIX = f"{PREFIX}CARRIER_KEY_"  # + the carrier id (orderflow.carriers.accounts.env_key_name)
CARRIER_KEY = Variable(f"{CARRIER_KEY_PREFIX}<CARRIER_ID>",
                       "a carrier's API key from the environment (CI, a developer's shell), before any store",
                       SetBy.OPERATOR)
FBA_RETRY_BASE_SECONDS = Variable(f"{PREFIX}FBA_RETRY_BASE_SECONDS",
                                  "the first wait before asking Amazon FBA again", SetBy.OPERATOR, "1")

# -- the local stack's sandboxes -------------------------------------------------------------------------

SANDBOX_PREFIX = f"{PREFIX}SANDBOX_"
SANDBOX_LOOPBACK = Variable(f"{SANDBOX_PREFIX}LOOPBACK",
                            "1: base URLs on 127.0.0.1 are allowed (the sandboxes); never on AWS", SetBy.LOCAL)
SANDBOX_CARRIER_URL = Variable(f"{SANDBOX_PREFIX}CARRIER_URL", "the sandbox carrier's address", SetBy.LOCAL)
SANDBOX_SUPPLIER_DELAY = Variable(f"{SANDBOX_PREFIX}SUPPLIER_DELAY_SECONDS",
                                  "seconds the sandbox supplier waits before it ships a file's orders", SetBy.LOCAL,
                                  default="3")
SANDBOX_FBA_STEP = Variable(f"{SANDBOX_PREFIX}FBA_STEP_SECONDS",
                            "seconds the sandbox FBA keeps a fulfillment order at each step", SetBy.LOCAL,
                            default="5")

#: Every variable above, in the order docs/configuration.md lists them (plus one per table, queue and
#: invoked function, which orderflow.tables, orderflow.queues and the CDK app derive by name).
VARIABLES: tuple[Variable, ...] = (
    STATE_MACHINE_ARN, LABEL_BUCKET, LABEL_DIR, CONSOLE_ORIGIN, POLL_TRACKING_FUNCTION, AWS_ENDPOINT,
    IMPORT_SCHEDULE_GROUP, IMPORT_SCHEDULER_ROLE_ARN, IMPORT_FUNCTION_ARN, CHANNEL_CREDENTIALS_FILE,
    CHANNEL_SECRET_PREFIX, CHANNEL_UPDATE_RETRY_SECONDS, SUPPLIER_CREDENTIALS_FILE, SUPPLIER_SECRET_PREFIX,
    SUPPLIER_RETRY_SECONDS, CARRIER_CREDENTIALS_FILE, CARRIER_SECRET_PREFIX, CARRIER_KEY, FBA_RETRY_BASE_SECONDS,
    SANDBOX_LOOPBACK, SANDBOX_CARRIER_URL, SANDBOX_SUPPLIER_DELAY, SANDBOX_FBA_STEP,
)


def local_runtime_variable(name: str) -> bool:
    """A variable the local runtime gives every function (not from its template): the LOCAL ones, the
    sandboxes', and those an operator may set on any function."""
    if name.startswith((SANDBOX_PREFIX, CARRIER_KEY_PREFIX)):
        return True
    return any(v.name == name and v.set_by is not SetBy.CDK for v in VARIABLES)


def markdown() -> str:
    """docs/configuration.md."""
    rows = "\n".join(f"| `{v.name}` | {v.meaning} | {v.set_by.value} | {f'`{v.default}`' if v.default else ''} |"
                     for v in VARIABLES)
    return f"""# Configuration

Every `ORDERFLOW_*` variable, from `orderflow/config.py` (this page is generated from it:
`python -c "from orderflow import config; print(config.markdown(), end='')" > docs/configuration.md`,
and a test fails when it is out of date). The CDK app sets each function only the variables it needs; the
local stack gives a function its template's variables and the local ones, nothing else.

| variable | meaning | set by | default |
| --- | --- | --- | --- |
{rows}
| `{table_variable('<key>')}` | each table (`orderflow/tables.py`: orders, inventory, ledger, settings) | {SetBy.CDK.value} | |
| `{queue_variable('<key>')}` | each queue's URL (`orderflow/queues.py`) | {SetBy.CDK.value} | |
| `{function_variable('<name>')}` | a function another one invokes (`functions/<name>`) | {SetBy.CDK.value} | |
"""
