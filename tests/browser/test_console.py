"""The operator console in a real (headless) Chromium against a local stack: what a seller does in it.

Each test leaves a screenshot of its screen in docs/screens/ (the README shows them)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from orderflow.models import Order
from tests.browser.conftest import ADDRESS, TOKEN, create_order, shot, sign_in, uid, wait_status


def test_sign_in_refuses_a_wrong_token_then_lands_on_the_paid_orders(page, stack):
    page.goto(f"{stack.api_url}/console/")
    shot(page, "sign-in")
    page.get_by_label("Token").fill("not-the-token")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("alert")).to_contain_text("refused")
    page.get_by_label("Token").fill(TOKEN)
    page.keyboard.press("Enter")  # the form works from the keyboard
    expect(page.get_by_role("heading", name="Orders")).to_be_visible()
    expect(page.get_by_role("link", name=re.compile("Paid"))).to_have_attribute("aria-current", "page")


def test_find_a_paid_order_buy_a_label_and_see_the_pdf(page, stack, api):
    order_id = create_order(api, "MUG-12OZ", customer={"name": f"Label Buyer {uid()}"})
    wait_status(api, order_id, "paid")
    sign_in(page, stack)
    page.get_by_label(re.compile("^Search")).fill(order_id)
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name=order_id).click()
    expect(page.locator("h1")).to_contain_text("Paid")
    shot(page, "order-paid")
    page.get_by_label("Weight (oz)").fill("12")
    page.get_by_role("button", name="Buy label").click()
    download_button = page.get_by_role("button", name="Download")
    expect(download_button).to_be_visible()
    with page.expect_download() as info:
        download_button.click()
    path = info.value.path()
    assert open(path, "rb").read(5) == b"%PDF-"
    assert info.value.suggested_filename.endswith(".pdf")
    wait_status(api, order_id, "completed")  # a label bought here completes the order
    page.reload()
    expect(page.locator("h1")).to_contain_text("Completed")
    expect(page.get_by_role("heading", name="Workflow trace")).to_be_visible()
    expect(page.locator("#trace table").first).to_contain_text("Prepare")
    shot(page, "order-label")


def test_enter_tracking_and_see_the_order_complete(page, stack, api):
    order_id = create_order(api, "TSHIRT-BLK-M")
    wait_status(api, order_id, "paid")
    sign_in(page, stack)
    page.goto(f"{stack.api_url}/console/#/orders/{order_id}")
    page.get_by_label("Carrier", exact=True).fill("UPS")
    page.get_by_label("Tracking number").fill("1Z999AA10123456784")
    page.get_by_role("button", name="Save tracking").click()
    expect(page.locator("h1")).to_contain_text("Completed", timeout=30_000)
    expect(page.locator("table").nth(1)).to_contain_text("1Z999AA10123456784")


def test_an_order_with_a_mistake_names_the_field(page, stack, api):
    sign_in(page, stack)
    page.get_by_role("link", name="New order").click()
    page.get_by_label("SKU").fill("MUG-12OZ")
    page.get_by_label("Quantity").fill("0")  # the mistake
    page.get_by_label("Unit price").fill("9.99")
    for label, value in (("Name", ADDRESS["name"]), ("Address", ADDRESS["line1"]), ("City", ADDRESS["city"]),
                         ("Postal code", ADDRESS["postal_code"]), ("Country (2 letters)", "US")):
        page.get_by_label(label, exact=True).first.fill(value)
    page.get_by_role("button", name="Create order").click()
    expect(page.get_by_role("alert")).to_contain_text("not created")
    quantity = page.get_by_label("Quantity")
    expect(quantity).to_have_attribute("aria-invalid", "true")
    expect(page.locator(".field-error")).to_contain_text("lines.0.quantity")
    shot(page, "new-order-error")
    quantity.fill("2")
    page.get_by_role("button", name="Create order").click()
    expect(page.get_by_role("heading", name=re.compile("Order ord_"))).to_be_visible()


def test_redrive_orders_that_need_attention(page, stack, api, ports):
    # An order whose SKU no warehouse stocks (as an import would store it) needs attention.
    from orderflow.models import NewOrder

    ghost = f"GHOST-{uid()}"
    ids = []
    for _ in range(2):
        new = NewOrder.model_validate({"lines": [{"sku": ghost, "quantity": 1, "unit_price": "5.00"}],
                                       "shipping_address": ADDRESS})
        order, _ = ports.orders.create(Order.from_new(new))
        ports.workflow.start(order.order_id)
        ids.append(order.order_id)
    for order_id in ids:
        wait_status(api, order_id, "needs_attention")
    api.put(f"/inventory/{ghost}/east", json={"on_hand": 10}).raise_for_status()  # the fix
    sign_in(page, stack)
    page.get_by_role("link", name=re.compile("Needs attention")).click()
    page.get_by_label("Search").fill(ghost)
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("link", name=ids[0])).to_be_visible()
    # The search left the tab: go back to it with the query kept out, select both and redrive them.
    page.goto(f"{stack.api_url}/console/#/orders?status=needs_attention")
    for order_id in ids:
        page.get_by_label(f"Select {order_id}").check()
    shot(page, "orders-needs-attention")
    page.get_by_role("button", name="Redrive the selected orders").click()
    expect(page.get_by_text(re.compile(r"Redriving 2 of 2"))).to_be_visible()
    for order_id in ids:
        wait_status(api, order_id, "paid")


def test_receive_a_purchase_order_and_watch_a_backorder_become_paid(page, stack, api):
    sku = f"BACK-{uid()}"
    api.put(f"/inventory/{sku}/east", json={"on_hand": 0}).raise_for_status()
    order_id = create_order(api, sku, quantity=3)
    wait_status(api, order_id, "awaiting_stock")
    po = api.post("/purchase-orders", json={"supplier": "acme", "warehouse_id": "east",
                                            "lines": [{"sku": sku, "quantity": 5}]})
    assert po.status_code == 201, po.text
    po_id = po.json()["po_id"]
    sign_in(page, stack)
    page.get_by_role("link", name="Stock", exact=True).click()
    expect(page.get_by_role("heading", name=re.compile("Backordered"))).to_be_visible()
    expect(page.get_by_role("link", name=order_id)).to_be_visible()
    row = page.get_by_role("row").filter(has_text=po_id)
    shot(page, "stock")
    row.get_by_role("button", name="Receive all").click()
    expect(page.get_by_role("status").filter(has_text="released")).to_contain_text(order_id)
    wait_status(api, order_id, "paid")
    page.goto(f"{stack.api_url}/console/#/orders/{order_id}")
    expect(page.locator("h1")).to_contain_text("Paid")
    shot(page, "order-allocation")


def test_setup_shows_configuration_without_secrets_at_tablet_width(page, stack):
    page.set_viewport_size({"width": 800, "height": 1000})
    sign_in(page, stack)
    page.get_by_role("link", name="Setup").click()
    expect(page.get_by_role("heading", name="Warehouses")).to_be_visible()
    expect(page.locator("main")).to_contain_text("east")
    assert "secret" not in page.content().lower().replace("secrets are never shown", "")
    shot(page, "setup")
    page.get_by_role("link", name="Orders", exact=True).click()
    expect(page.get_by_role("heading", name="Orders")).to_be_visible()
    shot(page, "orders-tablet")
