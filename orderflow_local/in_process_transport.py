"""boto3 calls made inside the local stack's own process reach its moto server without a socket.

The handlers, the Step Functions interpreter and the local stack's own services all run in the process
that serves moto. Every AWS call they made went out over loopback HTTP and back in through moto's
threaded HTTP server: a socket, a server thread and HTTP parsing on both sides, per call. Profiled end to
end (``py-spy --gil``, 150 orders), sockets, ``http.server`` and urllib3 took about a quarter of the
process's CPU, more than moto's DynamoDB.

This hands such a request to the same WSGI application the server runs (moto's
``DomainDispatcherApplication``), in the calling thread: the same bytes in and out, the same routing,
signatures and errors; only the socket is gone. Clients in other processes (the CLI, a browser, the
console's tests) still use the server. It is registered on botocore's ``before-send`` event for every
session created after :func:`install` (botocore's own handler list, as moto registers its mock) and
answers only requests for the local server's address.
"""

from __future__ import annotations

import io
import sys
import threading
from collections import Counter
from typing import Any
from urllib.parse import unquote_to_bytes, urlsplit

from botocore.awsrequest import AWSPreparedRequest, AWSResponse
from botocore.compat import HTTPHeaders


class _Body(io.BytesIO):
    """A response body botocore can read and stream."""

    def stream(self, **_: Any) -> Any:
        while chunk := self.read(65536):
            yield chunk


class InProcessTransport:
    """botocore ``before-send`` handler: requests for ``endpoint`` go straight to the WSGI ``app``."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Any] = {}  # "http://127.0.0.1:PORT" -> its WSGI app
        self.calls: Counter[str] = Counter()  # requests answered, by endpoint
        self._lock = threading.Lock()

    def serve(self, endpoint: str, app: Any) -> None:
        with self._lock:
            self.endpoints = {**self.endpoints, endpoint.rstrip("/"): app}

    def forget(self, endpoint: str) -> None:
        with self._lock:
            self.endpoints = {k: v for k, v in self.endpoints.items() if k != endpoint.rstrip("/")}

    def __call__(self, request: AWSPreparedRequest, **_: Any) -> AWSResponse | None:
        url = urlsplit(request.url)
        endpoint = f"{url.scheme}://{url.netloc}"
        app = self.endpoints.get(endpoint)
        if app is None:
            return None
        self.calls[endpoint] += 1
        body = request.body
        if body is None:
            body = b""
        elif isinstance(body, str):
            body = body.encode("utf-8")
        elif not isinstance(body, bytes | bytearray):
            body = body.read()
        host, _, port = url.netloc.partition(":")
        environ: dict[str, Any] = {
            "REQUEST_METHOD": request.method, "SCRIPT_NAME": "", "PATH_INFO": _unquote_path(url.path or "/"),
            "QUERY_STRING": url.query, "SERVER_NAME": host, "SERVER_PORT": port or "80",
            "SERVER_PROTOCOL": "HTTP/1.1", "REMOTE_ADDR": "127.0.0.1", "CONTENT_LENGTH": str(len(body)),
            "wsgi.version": (1, 0), "wsgi.url_scheme": url.scheme, "wsgi.input": io.BytesIO(body),
            "wsgi.errors": sys.stderr, "wsgi.multithread": True, "wsgi.multiprocess": False,
            "wsgi.run_once": False, "RAW_URI": request.url.split(url.netloc, 1)[1] or "/",
        }
        for name, value in request.headers.items():
            value = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            key = name.upper().replace("-", "_")
            if key == "CONTENT_TYPE":
                environ["CONTENT_TYPE"] = value
            elif key != "CONTENT_LENGTH":
                environ[f"HTTP_{key}"] = value
        environ.setdefault("HTTP_HOST", url.netloc)
        started: list[Any] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
            started[:] = [status, headers]
            return lambda data: chunks.append(data)

        chunks: list[bytes] = []
        result = app(environ, start_response)
        try:
            chunks.extend(result)
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()
        status, header_list = started
        headers = HTTPHeaders()
        for name, value in header_list:
            headers[name] = value
        return AWSResponse(request.url, int(status.split(" ", 1)[0]), headers, _Body(b"".join(chunks)))


def _unquote_path(path: str) -> str:
    """WSGI's PATH_INFO is the decoded path (as werkzeug's server gives it), bytes as latin-1."""
    return unquote_to_bytes(path).decode("latin-1")


TRANSPORT = InProcessTransport()
_installed = False


def install() -> None:
    """Register the transport for every botocore session created from now on (idempotent)."""
    global _installed
    if _installed:
        return
    from botocore import handlers

    handlers.BUILTIN_HANDLERS.append(("before-send", TRANSPORT))
    _installed = True
