"""A local stack and a headless Chromium for the console's browser tests.

Chromium is Debian's ``chromium`` package (``make test`` installs it when /usr/bin/chromium is missing);
Playwright drives it through ``executable_path``, so no browser is ever downloaded.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import httpx
import pytest

TOKEN = "browser-token"
SCREENS = Path(__file__).resolve().parents[2] / "docs" / "screens"
ADDRESS = {"name": "Grace Hopper", "line1": "1 Navy Way", "city": "Arlington", "region": "VA",
           "postal_code": "22202", "country": "US"}


def chromium_path() -> str | None:
    return os.environ.get("ORDERFLOW_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def default_ports():
    try:
        from orderflow.wiring import default_ports as make
    except ImportError:  # before the ports moved to orderflow.wiring
        from orderflow.ports import default_ports as make  # type: ignore[attr-defined,no-redef]
    return make()


@pytest.fixture(scope="session")
def stack(tmp_path_factory):
    from orderflow_local.seed import seed
    from orderflow_local.stack import LocalStack

    local = LocalStack(api_port=0, token=TOKEN, state_dir=tmp_path_factory.mktemp("state"))
    local.start()
    seed(default_ports())
    yield local
    local.stop()


@pytest.fixture(scope="session")
def ports(stack):
    return default_ports()


@pytest.fixture(scope="session")
def api(stack):
    with httpx.Client(base_url=stack.api_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30) as http:
        yield http


@pytest.fixture(scope="session")
def browser():
    path = chromium_path()
    if not path:
        pytest.fail("no chromium: `make test` installs Debian's chromium package (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=path, args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield browser
        browser.close()


@pytest.fixture
def page(browser, stack):
    context = browser.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(45_000)  # a loaded 2-core CI machine
    from playwright.sync_api import expect

    expect.set_options(timeout=45_000)
    yield page
    context.close()


def sign_in(page, stack) -> None:
    page.goto(f"{stack.api_url}/console/")
    page.get_by_label("Token").fill(TOKEN)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Orders").wait_for()


def shot(page, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"{name}.png"), full_page=False)


def uid() -> str:
    return uuid.uuid4().hex[:6].upper()


def create_order(api, sku: str, quantity: int = 1, **extra) -> str:
    body = {"lines": [{"sku": sku, "quantity": quantity, "unit_price": "12.50"}], "shipping_address": ADDRESS, **extra}
    response = api.post("/orders", json=body)
    assert response.status_code == 201, response.text
    return response.json()["order_id"]


def wait_status(api, order_id: str, *statuses: str, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        order = api.get(f"/orders/{order_id}").json()
        if order["status"] in statuses or time.monotonic() > deadline:
            assert order["status"] in statuses, order
            return order
        time.sleep(0.1)
