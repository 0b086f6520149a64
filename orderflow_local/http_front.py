"""The local stack's front door: a real HTTP server that plays API Gateway.

``/console/`` serves the operator console's static files (orderflow_local.console), public as they
are on CloudFront. Each other request is routed the way the template's REST API routes it: a method the template leaves open
(``AuthorizationType: NONE``: ``GET /health``, the webhooks) is public; every other method needs the
local bearer token (the local stand-in for SigV4). The request becomes an API Gateway REST proxy event for
the same Lambda handler that serves the API on AWS.
"""

from __future__ import annotations

import base64
import hmac
import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from orderflow_local import console
from orderflow_local.lambda_binding import LocalLambdaContext

log = logging.getLogger(__name__)

MAX_BODY = 1024 * 1024
#: Connections waiting to be accepted: a burst of a few hundred is queued, never reset.
LISTEN_BACKLOG = 1024


class _Server(ThreadingHTTPServer):
    request_queue_size = LISTEN_BACKLOG
    daemon_threads = True


def proxy_event(method: str, raw_path: str, headers: dict[str, str], body: bytes, source_ip: str,
                resource: str = "/{proxy+}") -> dict[str, Any]:
    parts = urlsplit(raw_path)
    query = parse_qs(parts.query, keep_blank_values=True)
    text: str | None
    is_b64 = False
    try:
        text = body.decode("utf-8") if body else None
    except UnicodeDecodeError:
        text, is_b64 = base64.b64encode(body).decode(), True
    request_id = str(uuid.uuid4())
    return {
        "resource": resource,
        "path": parts.path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": {k: v[-1] for k, v in query.items()} or None,
        "multiValueQueryStringParameters": query or None,
        "pathParameters": {"proxy": parts.path.lstrip("/")} if resource.endswith("+}") else None,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource, "httpMethod": method, "path": f"/local{parts.path}", "stage": "local",
            "requestId": request_id, "accountId": "000000000000", "apiId": "local",
            "requestTimeEpoch": int(time.time() * 1000), "identity": {"sourceIp": source_ip},
        },
        "body": text,
        "isBase64Encoded": is_b64,
    }


class ApiFront:
    def __init__(self, host: str, port: int, token: str, handler: Callable[[dict, Any], dict],
                 routes: Callable[[str, str], Any]) -> None:
        """``routes(method, path)`` is the template's method for a request (orderflow_local.cloudformation.Route),
        None when the REST API has none."""
        self.token = token
        self.handler = handler
        self.routes = routes
        from orderflow_local import api_containers

        api_containers.install()
        front = self

        class RequestHandler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # keep-alive replies otherwise wait ~40 ms for a delayed ACK
            server_version = "orderflow-local"

            def log_message(self, fmt: str, *args: Any) -> None:
                log.debug("%s %s", self.address_string(), fmt % args)

            def _reply(self, status: int, headers: dict[str, str], body: bytes) -> None:
                self.send_response(status)
                for key, value in headers.items():
                    if key.lower() not in {"content-length", "connection"}:
                        self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def _error(self, status: int, code: str, message: str) -> None:
                body = json.dumps({"error": {"code": code, "message": message, "details": {}}}).encode()
                self._reply(status, {"Content-Type": "application/json"}, body)

            def _handle(self) -> None:
                # Route and auth before a byte of the body is read; a length that is not a plain count
                # (``-1``, ``1e9``, two headers) or a chunked body is refused, never read to EOF.
                path = urlsplit(self.path).path
                if console.is_console(path):  # the console's static files (CloudFront + S3 on AWS)
                    return self._reply(*console.serve(self.command, path))
                route = front.routes(self.command, path)
                lengths = self.headers.get_all("Content-Length") or []
                if self.headers.get("Transfer-Encoding"):
                    self.close_connection = True
                    return self._error(411, "length_required", "send the body with a Content-Length "
                                                               "(chunked bodies are not accepted)")
                if len(lengths) > 1 or (lengths and not lengths[0].strip().isdigit()):
                    self.close_connection = True
                    return self._error(400, "bad_request", "Content-Length must be one non-negative number")
                length = int(lengths[0]) if lengths else 0
                if route is None:  # API Gateway's answer to a route it does not have
                    self.close_connection = bool(length)
                    return self._error(403, "missing_authentication_token", f"no route for {self.command} {path}")
                if route.authorization != "NONE" and not front.authorized(self.headers.get("Authorization")):
                    self.close_connection = bool(length)  # the unread body must not be taken for a request
                    return self._error(401, "unauthorized", "send Authorization: Bearer <token> "
                                                            "(printed by `orderflow local`)")
                if length > MAX_BODY:
                    self.close_connection = True
                    return self._error(413, "payload_too_large", f"the body is over {MAX_BODY} bytes")
                body = self.rfile.read(length) if length else b""
                headers = dict(self.headers.items())
                event = proxy_event(self.command, self.path, headers, body, self.client_address[0], route.path)
                context = LocalLambdaContext(function_name="orderflow-api",
                                             aws_request_id=event["requestContext"]["requestId"])
                try:
                    result = front.handler(event, context)  # each thread as its own container (api_containers)
                except Exception:  # noqa: BLE001 - a bug in the API must still answer
                    log.exception("API handler crashed")
                    return self._error(500, "internal_error", "the API handler crashed; see the stack's log")
                out = result.get("body") or ""
                payload = base64.b64decode(out) if result.get("isBase64Encoded") else out.encode()
                headers_out = dict(result.get("headers") or {})
                for key, values in (result.get("multiValueHeaders") or {}).items():
                    headers_out[key] = ", ".join(values)
                self._reply(int(result.get("statusCode", 200)), headers_out, payload)

            # Every method goes to the API, which answers 404/405 for what it does not serve (an HTTP
            # server's own 501 would be a 5xx for the caller's mistake).
            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle  # noqa: N815

            def __getattr__(self, name: str):  # any other method (TRACE, QUERY, ...) goes there too
                if name.startswith("do_"):
                    return self._handle
                raise AttributeError(name)

        self.server = _Server((host, port), RequestHandler)
        self.thread = threading.Thread(target=self.server.serve_forever, name="orderflow-api", daemon=True)

    @property
    def port(self) -> int:
        return self.server.server_address[1]

    def authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[len("Bearer "):].strip().encode(), self.token.encode())

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
