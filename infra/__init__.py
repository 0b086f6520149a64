"""The AWS deployment of orderflow (CDK app in ``app.py``; Lambda assets built by ``infra.build_assets``).

Importing this package stays cheap (no ``aws_cdk``): ``make build`` only needs the constants below.
"""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".build"
CODE_DIR = BUILD_DIR / "code"
LAYER_DIR = BUILD_DIR / "layer"

#: The Lambda runtime's Python. The layer's compiled wheels (pydantic-core) are built for exactly this
#: version, so the function runtime (``infra.constructs.functions``) is derived from the same constant.
#: cdk-nag's AwsSolutions-L1 wants the latest Python runtime aws-cdk-lib knows (2.275.0: python3.14).
LAMBDA_PYTHON_VERSION = "3.14"
#: manylinux2014_x86_64 wheels in the layer -> the functions run on x86_64.
LAMBDA_PLATFORM = "manylinux2014_x86_64"

#: functions/<name>/handler.py, one Lambda function each.
FUNCTION_NAMES = ("prepare", "fulfill", "import_orders", "api", "sync_stock",
                  "reconcile", "forward_supplier", "poll_tracking", "forward_fba", "poll_fba",
                  "tell_channel")


def handler_for(name: str) -> str:
    return f"functions.{name}.handler.lambda_handler"
