"""The console's AWS sign-in in a real (headless) Chromium: config.json names a Cognito user pool, so the console
signs in through the hosted UI (authorization code + PKCE), sends ``Authorization: <ID token>`` to the
``/console-api`` base, refreshes its tokens on a 401 and signs in again when the refresh is refused.

Three small local servers stand in for AWS, each on its own origin as on AWS: the console's files (CloudFront,
with the distribution's Content-Security-Policy), Cognito's hosted UI and token endpoint (the documented
``/oauth2/authorize`` redirect and ``/oauth2/token`` answers), and API Gateway's console routes, which accept only
the ID token the fake Cognito issued last."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
from playwright.sync_api import expect

from infra.constructs.console import CSP  # the distribution's policy; here with the fakes' origins

CONSOLE = Path(__file__).resolve().parents[2] / "console"
CLIENT_ID = "console-client-id"
USER_POOL_ID = "us-east-1_TestPool"
ORDER = {"order_id": "ord_cognito_1", "status": "paid", "channel": "shopify", "external_id": "#1001",
         "shipping_address": {"name": "Grace Hopper", "city": "Arlington"}, "total": "25.00", "currency": "USD",
         "created_at": "2026-11-01T10:00:00+00:00", "lines": [], "shipments": []}


@dataclass
class FakeAws:
    """What the fakes saw and decide; the test reads and sets it."""

    console: str = ""
    auth: str = ""
    api: str = ""
    challenges: dict[str, dict[str, str]] = field(default_factory=dict)  # code -> the authorize request
    token_requests: list[dict[str, str]] = field(default_factory=list)
    api_calls: list[tuple[str, str, str | None]] = field(default_factory=list)  # (method, path, Authorization)
    issued: int = 0
    valid_id_token: str | None = None
    valid_refresh_token: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    def issue(self, with_refresh: bool) -> dict[str, Any]:
        """Cognito's token endpoint answer (authorization_code: with a refresh token; refresh_token: without)."""
        self.issued += 1
        n = self.issued
        self.valid_id_token = f"id-token-{n}"
        answer: dict[str, Any] = {"id_token": self.valid_id_token, "access_token": f"access-token-{n}",
                                  "token_type": "Bearer", "expires_in": 3600}
        if with_refresh:
            self.valid_refresh_token = f"refresh-token-{n}"
            answer["refresh_token"] = self.valid_refresh_token
        return answer


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


class Quiet(BaseHTTPRequestHandler):
    fake: FakeAws

    def log_message(self, *args: Any) -> None:
        pass

    def reply(self, status: int, body: bytes | str = b"", headers: dict[str, str] | None = None) -> None:
        data = body.encode() if isinstance(body, str) else body
        self.send_response(status)
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def form(self) -> dict[str, str]:
        length = int(self.headers.get("Content-Length") or 0)
        return {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode()).items()}


class ConsoleFiles(Quiet):
    """CloudFront + S3: the console's files, config.json as the BucketDeployment writes it, the CSP."""

    def do_GET(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        headers = {"Content-Security-Policy": CSP.format(api=self.fake.api, auth=self.fake.auth),
                   "X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
        if path == "/config.json":
            config = {"auth": "cognito", "api": f"{self.fake.api}/dev/console-api", "region": "us-east-1",
                      "userPoolId": USER_POOL_ID, "clientId": CLIENT_ID, "cognitoDomain": self.fake.auth}
            return self.reply(200, json.dumps(config), {**headers, "Content-Type": "application/json"})
        name = "index.html" if path == "/" else path.lstrip("/")
        types = {".html": "text/html", ".js": "text/javascript", ".css": "text/css"}
        file = CONSOLE / name
        if "/" in name or not file.is_file() or file.suffix not in types:
            return self.reply(404, "not found", {"Content-Type": "text/plain"})
        return self.reply(200, file.read_bytes(), {**headers, "Content-Type": types[file.suffix]})


class HostedUi(Quiet):
    """Cognito's hosted UI and OAuth 2.0 endpoints, as documented: /oauth2/authorize shows the sign-in page and
    redirects to redirect_uri with ?code=&state=; /oauth2/token trades the code (with the PKCE verifier) or a
    refresh token for tokens, answering the browser with CORS headers."""

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(url.query).items()}
        if url.path == "/oauth2/authorize":
            problems = [k for k, want in (("response_type", "code"), ("client_id", CLIENT_ID),
                                          ("code_challenge_method", "S256"), ("redirect_uri", f"{self.fake.console}/"))
                        if query.get(k) != want]
            if problems or not query.get("code_challenge") or not query.get("state"):
                return self.reply(400, f"invalid_request: {problems}", {"Content-Type": "text/plain"})
            hidden = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in query.items())
            page = (f'<!doctype html><title>Sign in</title><form method="post" action="/login">{hidden}'
                    '<label for="u">Username</label><input id="u" name="username">'
                    '<label for="p">Password</label><input id="p" name="password" type="password">'
                    '<button type="submit">Sign in</button></form>')
            return self.reply(200, page, {"Content-Type": "text/html"})
        if url.path == "/logout":
            return self.reply(302, "", {"Location": query.get("logout_uri", "/")})
        return self.reply(404, "not found", {"Content-Type": "text/plain"})

    def do_POST(self) -> None:  # noqa: N802
        path = urlsplit(self.path).path
        fields = self.form()
        if path == "/login":
            if (fields.get("username"), fields.get("password")) != ("ada@example.com", "Correct-Horse-9!"):
                return self.reply(401, "wrong password", {"Content-Type": "text/plain"})
            code = f"code-{len(self.fake.challenges) + 1}"
            self.fake.challenges[code] = fields
            location = f"{fields['redirect_uri']}?{urlencode({'code': code, 'state': fields['state']})}"
            return self.reply(302, "", {"Location": location})
        if path != "/oauth2/token":
            return self.reply(404, "not found", {"Content-Type": "text/plain"})
        cors = {"Access-Control-Allow-Origin": self.fake.console, "Content-Type": "application/json"}
        with self.fake.lock:
            self.fake.token_requests.append(fields)
            if fields.get("client_id") != CLIENT_ID:
                return self.reply(400, json.dumps({"error": "invalid_client"}), cors)
            if fields.get("grant_type") == "authorization_code":
                asked = self.fake.challenges.pop(fields.get("code", ""), None)  # a code is good once
                if (asked is None or fields.get("redirect_uri") != asked["redirect_uri"]
                        or s256(fields.get("code_verifier", "")) != asked["code_challenge"]):
                    return self.reply(400, json.dumps({"error": "invalid_grant"}), cors)
                return self.reply(200, json.dumps(self.fake.issue(with_refresh=True)), cors)
            if fields.get("grant_type") == "refresh_token":
                if not fields.get("refresh_token") or fields["refresh_token"] != self.fake.valid_refresh_token:
                    return self.reply(400, json.dumps({"error": "invalid_grant"}), cors)
                return self.reply(200, json.dumps(self.fake.issue(with_refresh=False)), cors)
            return self.reply(400, json.dumps({"error": "unsupported_grant_type"}), cors)


class ConsoleApi(Quiet):
    """API Gateway's /console-api routes with the Cognito authorizer: the current ID token or 401 (with the CORS
    header the stack's gateway responses add); preflights answered for the console's origin only."""

    def cors(self) -> dict[str, str]:
        return {"Access-Control-Allow-Origin": self.fake.console, "Vary": "Origin"}

    def do_OPTIONS(self) -> None:  # noqa: N802
        if self.headers.get("Origin") != self.fake.console:
            return self.reply(403)
        self.reply(204, b"", {**self.cors(), "Access-Control-Allow-Headers": "Authorization,Content-Type,Idempotency-Key",
                               "Access-Control-Allow-Methods": "GET,POST,PUT,PATCH,DELETE,OPTIONS"})

    def do_GET(self) -> None:  # noqa: N802
        url = urlsplit(self.path)
        authorization = self.headers.get("Authorization")
        with self.fake.lock:
            self.fake.api_calls.append(("GET", self.path, authorization))
            valid = authorization is not None and authorization == self.fake.valid_id_token
        headers = {**self.cors(), "Content-Type": "application/json"}
        if not valid:
            return self.reply(401, json.dumps({"message": "Unauthorized"}), headers)
        if url.path == "/dev/console-api/orders/counts":
            return self.reply(200, json.dumps({"counts": {"paid": 1}, "total": 1}), headers)
        if url.path == "/dev/console-api/orders":
            return self.reply(200, json.dumps({"orders": [ORDER], "next": None, "scanned": 1}), headers)
        return self.reply(404, json.dumps({"error": {"code": "no_such_route", "message": url.path}}), headers)


def serve(handler: type[Quiet], fake: FakeAws) -> ThreadingHTTPServer:
    server = ThreadingHTTPServer(("127.0.0.1", 0), type(handler.__name__, (handler,), {"fake": fake}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def fake_aws() -> Iterator[FakeAws]:
    fake = FakeAws()
    servers = [serve(ConsoleFiles, fake), serve(HostedUi, fake), serve(ConsoleApi, fake)]
    # three origins, as on AWS: CloudFront, the hosted UI's domain, API Gateway
    fake.console, fake.auth, fake.api = (f"http://127.0.0.1:{s.server_address[1]}" for s in servers)
    yield fake
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture
def cognito_page(browser):
    context = browser.new_context(viewport={"width": 1280, "height": 860})
    page = context.new_page()
    page.set_default_timeout(45_000)  # a loaded 2-core CI machine
    expect.set_options(timeout=45_000)
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None)
    page.csp_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()


def sign_in_on_the_hosted_ui(page, fake: FakeAws) -> None:
    page.goto(f"{fake.console}/")
    page.get_by_role("link", name="Sign in with your orderflow account").click()
    page.wait_for_url(re.compile(re.escape(fake.auth) + "/oauth2/authorize"))
    page.get_by_label("Username").fill("ada@example.com")
    page.get_by_label("Password").fill("Correct-Horse-9!")
    page.get_by_role("button", name="Sign in").click()


def test_signs_in_through_the_hosted_ui_with_pkce_and_lists_orders_with_the_id_token(cognito_page, fake_aws):
    page, fake = cognito_page, fake_aws
    sign_in_on_the_hosted_ui(page, fake)
    expect(page.get_by_role("heading", name="Orders")).to_be_visible()
    expect(page.get_by_role("link", name="ord_cognito_1")).to_be_visible()
    # the code was traded once, with the PKCE verifier, for this client and redirect URI
    [trade] = fake.token_requests
    assert trade["grant_type"] == "authorization_code" and trade["client_id"] == CLIENT_ID
    assert trade["redirect_uri"] == f"{fake.console}/" and trade["code_verifier"]
    assert "client_secret" not in trade
    # the code and state left the address bar
    assert "code=" not in page.url and "state=" not in page.url
    # every API call went to the console-api base with the raw ID token (Cognito's authorizer takes it as is)
    calls = [(path, auth) for _, path, auth in fake.api_calls]
    assert ("/dev/console-api/orders/counts", "id-token-1") in calls
    assert any(path.startswith("/dev/console-api/orders?") and "status=paid" in path and auth == "id-token-1"
               for path, auth in calls)
    assert all(path.startswith("/dev/console-api/") for path, _ in calls)
    assert not page.csp_errors  # the distribution's CSP lets it reach the API and the hosted UI

    # Sign out: the tokens are forgotten and Cognito's /logout sends the browser back to the console.
    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("link", name="Sign in with your orderflow account")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('orderflow.token')") is None


def test_refreshes_an_expired_token_then_signs_in_again_when_the_refresh_is_refused(cognito_page, fake_aws):
    page, fake = cognito_page, fake_aws
    sign_in_on_the_hosted_ui(page, fake)
    expect(page.get_by_role("link", name="ord_cognito_1")).to_be_visible()

    # The ID token expires: the API answers 401, the console refreshes once and retries with the new token.
    with fake.lock:
        fake.valid_id_token = "expired"
    page.get_by_role("link", name=re.compile("^All")).click()
    expect(page.get_by_role("link", name="ord_cognito_1")).to_be_visible()
    refreshes = [r for r in fake.token_requests if r["grant_type"] == "refresh_token"]
    assert len(refreshes) == 1  # the two calls that met the 401 shared one refresh
    assert refreshes[0]["refresh_token"] == "refresh-token-1" and refreshes[0]["client_id"] == CLIENT_ID
    assert fake.api_calls[-1][2] == "id-token-2"

    # The refresh token is revoked too: the console forgets the tokens and offers the hosted UI again.
    with fake.lock:
        fake.valid_id_token, fake.valid_refresh_token = "expired", "revoked"
    page.get_by_role("link", name=re.compile("^Paid")).click()
    expect(page.get_by_role("link", name="Sign in with your orderflow account")).to_be_visible()
    assert page.evaluate("sessionStorage.getItem('orderflow.token')") is None
    assert page.evaluate("sessionStorage.getItem('orderflow.refresh')") is None

    # ... and signing in again works.
    page.get_by_role("link", name="Sign in with your orderflow account").click()
    page.get_by_label("Username").fill("ada@example.com")
    page.get_by_label("Password").fill("Correct-Horse-9!")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("link", name="ord_cognito_1")).to_be_visible()


def test_a_callback_that_did_not_start_here_is_refused(cognito_page, fake_aws):
    page, fake = cognito_page, fake_aws
    page.goto(f"{fake.console}/?code=code-forged&state=forged")
    expect(page.get_by_role("alert")).to_contain_text("did not start here")
    assert not fake.token_requests  # the forged code was never sent anywhere
    expect(page.get_by_role("link", name="Sign in with your orderflow account")).to_be_visible()
