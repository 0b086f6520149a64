"""orderflow: a serverless sales-order backend (import, allocate, reduce stock, fulfil, complete)."""

import sys

__version__ = "0.1.0"

# httpx imports its command line client (httpx._main, which loads click, rich and pygments: about 40 ms)
# whenever those happen to be installed. The functions' layer (requirements/lambda.txt) has none of them,
# so there httpx skips it; this makes an environment where development tools brought them (the tests, the
# local stack, the cold-start benchmark) import httpx as the functions do. ``python -m httpx`` and the
# ``httpx`` command run without orderflow and keep their CLI.
if "httpx" not in sys.modules:
    sys.modules.setdefault("httpx._main", None)  # type: ignore[assignment]
