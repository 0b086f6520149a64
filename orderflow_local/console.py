"""The console's static files (``console/``) on the local stack: ``/console/`` on the API's port.

Public like a CloudFront distribution's files: the pages hold no data; every API call they make carries
the bearer token the user signs in with. ``config.json`` tells the console how to sign in here (the
stack's token) and that the API is on the same origin.
"""

from __future__ import annotations

import json
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent / "console"
PREFIX = "/console"
TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8",
         ".json": "application/json", ".png": "image/png", ".svg": "image/svg+xml", ".ico": "image/x-icon"}
HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; frame-src blob:; object-src 'none'; "
                               "base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
LOCAL_CONFIG = {"auth": "token", "api": ""}


def is_console(path: str) -> bool:
    return path == PREFIX or path.startswith(PREFIX + "/")


def serve(method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    """The answer to ``method path`` under ``/console``: a file, a redirect to ``/console/``, 404 or 405."""
    if method not in ("GET", "HEAD"):
        return 405, {"Allow": "GET, HEAD", "Content-Type": "text/plain"}, b"the console's files are read-only\n"
    if path == PREFIX:
        return 301, {"Location": PREFIX + "/"}, b""
    name = path[len(PREFIX) + 1:] or "index.html"
    if name == "config.json":
        return 200, {**HEADERS, "Content-Type": TYPES[".json"]}, json.dumps(LOCAL_CONFIG).encode()
    file = (ROOT / name).resolve()
    if ROOT not in file.parents or not file.is_file() or file.suffix not in TYPES:
        return 404, {"Content-Type": "text/plain"}, b"no such console file\n"
    return 200, {**HEADERS, "Content-Type": TYPES[file.suffix]}, file.read_bytes()
