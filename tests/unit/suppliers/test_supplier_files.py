"""The supplier files as plain functions: the order file we write, the tracking file we read."""

from __future__ import annotations

import csv
import io

import pytest
from pydantic import ValidationError

from orderflow.models import AllocatedLine, NewOrder, Order, Shipment
from orderflow.suppliers.config import (
    ORDER_FIELDS,
    Carrier,
    OrderColumn,
    OrderFileFormat,
    SftpSettings,
    SupplierConfig,
    SupplierCredentials,
    SupplierIn,
    TrackingFileFormat,
)
from orderflow.suppliers.files import (
    FileRejected,
    cancel_file,
    cancel_file_name,
    canonical_carrier,
    error_file,
    order_file,
    order_file_name,
    read_tracking_file,
    split_tracking_numbers,
)

FP = "SHA256:" + "A" * 43


def config(**extra) -> SupplierConfig:
    return SupplierConfig(warehouse_id="acme", sftp=SftpSettings(host="sftp.acme.example", username="u",
                                                                 host_key_fingerprint=FP), **extra)


@pytest.fixture
def order() -> Order:
    new = NewOrder.model_validate({
        "lines": [{"sku": "LAMP", "quantity": 2, "unit_price": "39.00"},
                  {"sku": "BULB", "quantity": 3, "unit_price": "4.00"},
                  {"sku": "MUG", "quantity": 1, "unit_price": "9.00"}],
        "shipping_address": {"name": "Ada Lovelace", "company": "Engines, Ltd", "line1": '12 "Analytical" St',
                             "city": "London", "postal_code": "N1 9GU", "country": "gb", "phone": "+44 20 1234"},
        "customer": {"email": "ada@example.com"}})
    o = Order.from_new(new, order_id="ord_0001")
    o.created_at = "2026-11-26T06:03:07.123Z"
    o.shipments = [Shipment(shipment_id="ord_0001-1", warehouse_id="acme", method="dropship", lines=[
        AllocatedLine(line_no=1, sku="LAMP", quantity=2, warehouse_id="acme"),
        AllocatedLine(line_no=2, sku="BULB", quantity=3, warehouse_id="acme")])]
    return o


def rows(data: bytes, delimiter: str = ",") -> list[list[str]]:
    return list(csv.reader(io.StringIO(data.decode(), newline=""), delimiter=delimiter))


def test_the_order_file_is_canonical_multiline_csv_one_row_per_line(order):
    cfg = config(supplier_skus={"LAMP": "ACME-L100"}, unit_costs={"LAMP": "18.4"})
    data = order_file(cfg, order, order.shipments[0])
    assert data.endswith(b"\r\n") and b"\r\n" in data  # RFC 4180 line ends
    table = rows(data)
    assert table[0] == list(ORDER_FIELDS)
    lines = [dict(zip(table[0], r, strict=True)) for r in table[1:]]
    assert [(r["line_number"], r["sku"], r["supplier_sku"], r["quantity"], r["unit_cost"]) for r in lines] == [
        ("1", "LAMP", "ACME-L100", "2", "18.40"), ("2", "BULB", "", "3", "")]
    first = lines[0]
    assert first["po_number"] == "ord_0001-1" and first["order_number"] == "ord_0001"
    assert first["ship_company"] == "Engines, Ltd"  # the comma is quoted, not a new column
    assert first["ship_address1"] == '12 "Analytical" St'
    assert (first["ship_country"], first["ship_email"], first["order_date"]) == ("GB", "ada@example.com", "2026-11-26")


def test_the_same_shipment_always_makes_the_same_file(order):
    cfg = config()
    assert order_file(cfg, order, order.shipments[0]) == order_file(cfg, order.model_copy(deep=True),
                                                                    order.shipments[0])
    assert order_file_name(cfg, order, order.shipments[0]) == "ORD_acme_ord_0001-1.csv"


def test_columns_delimiter_quoting_and_file_name_are_configurable(order):
    fmt = OrderFileFormat(delimiter=";", quote_all=True, file_name="PO-{supplier}-{date}-{shipment_id}.txt",
                          columns=[OrderColumn(header="PO", field="po_number"), OrderColumn(header="Item", field="sku"),
                                   OrderColumn(header="Qty", field="quantity"),
                                   OrderColumn(header="Source", value="orderflow")])
    cfg = config(code="ACME", order_file=fmt)
    data = order_file(cfg, order, order.shipments[0])
    assert data.splitlines()[0] == b'"PO";"Item";"Qty";"Source"'
    assert rows(data, ";")[1:] == [["ord_0001-1", "LAMP", "2", "orderflow"], ["ord_0001-1", "BULB", "3", "orderflow"]]
    assert order_file_name(cfg, order, order.shipments[0]) == "PO-ACME-20261126-ord_0001-1.txt"


def test_the_cancellation_file_names_the_shipment(order):
    cfg = config()
    data = cancel_file(cfg, order, order.shipments[0], reason="customer changed their mind",
                       cancelled_at="2026-11-26T07:00:00.000Z")
    assert rows(data) == [["po_number", "order_number", "action", "reason", "cancelled_at"],
                          ["ord_0001-1", "ord_0001", "CANCEL", "customer changed their mind",
                           "2026-11-26T07:00:00.000Z"]]
    assert cancel_file_name(cfg, order, order.shipments[0]) == "CANCEL_acme_ord_0001-1.csv"


@pytest.mark.parametrize("template, problem", [
    ("ORD_{supplier}.csv", "one file per shipment"),
    ("ORD_{nope}_{shipment_id}.csv", "unknown placeholder"),
    ("../ORD_{shipment_id}.csv", "letters, digits"),
    ("ORD_{shipment_id}.csv.tmp", ".tmp"),
    ("ORD {shipment_id}.csv", "letters, digits"),
    ("ORD_{shipment_id!r}.csv", "unknown placeholder"),
])
def test_file_name_templates_are_checked(template, problem):
    with pytest.raises(ValidationError, match=problem.replace(".", r"\.")):
        OrderFileFormat(file_name=template)


def test_tracking_file_with_several_numbers_per_line_partial_rows_and_bad_rows():
    data = (
        b"po_number,order_number,sku,quantity,carrier,service,tracking_number,ship_date\r\n"
        b"ord_0001-1,ord_0001,LAMP,2,United Parcel Service,Ground,1Z999AA10123456784|1Z999AA10123456785,2026-11-26\r\n"
        b"ord_0001-1,ord_0001,BULB,1,FedEx Ground,,7712 3456 7890;771234567891,2026-11-26\r\n"
        b",,LAMP,1,UPS,,1Z999AA10123456786,\r\n"
        b"ord_0002-1,,BULB,two,UPS,,1Z999AA10123456787,\r\n"
        b"ord_0002-1,,BULB,1,UPS,,not a number!,\r\n"
        b"\r\n"
        b"ord_0003-1,,,,,,9400111899223100012345,\r\n"
    )
    parsed = read_tracking_file(data, TrackingFileFormat())
    assert [(r.row_no, r.po_number, r.sku, r.quantity, r.carrier, r.tracking_numbers) for r in parsed.rows] == [
        (2, "ord_0001-1", "LAMP", 2, Carrier.UPS, ["1Z999AA10123456784", "1Z999AA10123456785"]),
        (3, "ord_0001-1", "BULB", 1, Carrier.FEDEX, ["771234567890", "771234567891"]),
        (8, "ord_0003-1", None, None, Carrier.OTHER, ["9400111899223100012345"]),
    ]
    assert [(b.row_no, b.reason) for b in parsed.bad] == [
        (4, "no po_number or order_number: cannot tell which shipment this row confirms"),
        (5, "quantity 'two' is not a whole number"),
        (6, "tracking number 'notanumber!' is not valid (3-64 letters, digits or '-')"),
    ]
    errors = rows(error_file(parsed.header, parsed.bad))
    assert errors[0][:3] == ["source_line", "error", "po_number"]
    assert [(r[0], r[2]) for r in errors[1:]] == [("4", ""), ("5", "ord_0002-1"), ("6", "ord_0002-1")]


def test_tracking_columns_and_separators_are_configurable():
    fmt = TrackingFileFormat(delimiter=";", tracking_separators="|", columns={
        "po_number": "PO", "sku": "Item", "quantity": "Qty", "carrier": "Carrier", "tracking_number": "Tracking"},
        carrier_aliases={"Royal Mail": "OTHER", "Speedy": "DHL"})
    data = "Extra;PO;Item;Qty;Carrier;Tracking\nx;ord_1-1;LAMP;1;Speedy;AB123|AB124\ny;ord_1-1;BULB;;USPS;9400100000\n"
    parsed = read_tracking_file(data.encode("utf-8-sig"), fmt)
    assert [(r.po_number, r.sku, r.quantity, r.carrier, r.tracking_numbers) for r in parsed.rows] == [
        ("ord_1-1", "LAMP", 1, Carrier.DHL, ["AB123", "AB124"]),
        ("ord_1-1", "BULB", None, Carrier.USPS, ["9400100000"])]


@pytest.mark.parametrize("data, problem", [
    (b"", "empty"),
    (b"\xff\xfe\x00bad", "not UTF-8"),
    (b"order,sku\nord_1,LAMP\n", "lacks column"),
])
def test_an_unreadable_tracking_file_is_rejected_whole(data, problem):
    with pytest.raises(FileRejected, match=problem):
        read_tracking_file(data, TrackingFileFormat())


@pytest.mark.parametrize("name, number, carrier", [
    ("UPS", "", Carrier.UPS), ("ups ground", "", Carrier.UPS), ("United Parcel Service", "", Carrier.UPS),
    ("USPS Priority Mail", "", Carrier.USPS), ("U.S. Postal Service", "", Carrier.USPS),
    ("FedEx Home Delivery", "", Carrier.FEDEX), ("Federal Express", "", Carrier.FEDEX),
    ("DHL eCommerce", "", Carrier.DHL), ("Royal Mail", "", Carrier.OTHER),
    ("", "1Z999AA10123456784", Carrier.UPS), ("", "123", Carrier.OTHER),
])
def test_carrier_names_map_to_the_canonical_set(name, number, carrier):
    assert canonical_carrier(name, number) == carrier


def test_several_tracking_numbers_split_on_either_separator():
    assert split_tracking_numbers(" 1Z1 | 1Z2;1Z3 ;;1Z1", "|;") == ["1Z1", "1Z2", "1Z3"]


def test_a_tracking_format_must_say_which_shipment_a_row_confirms():
    with pytest.raises(ValidationError, match="po_number or order_number"):
        TrackingFileFormat(columns={"tracking_number": "T"})
    with pytest.raises(ValidationError, match="tracking_number"):
        TrackingFileFormat(columns={"po_number": "PO"})


def test_host_keys_are_pinned_unless_a_loopback_sandbox_says_otherwise():
    with pytest.raises(ValidationError, match="host_key_fingerprint is required"):
        SftpSettings(host="sftp.acme.example", username="u")
    with pytest.raises(ValidationError, match="only for sandbox"):
        SftpSettings(host="sftp.acme.example", username="u", accept_unknown_host_key=True)
    assert SftpSettings(host="127.0.0.1", username="u", accept_unknown_host_key=True).host_key_fingerprint is None


def test_credentials_never_print_and_are_required_in_some_form():
    creds = SupplierCredentials(password="hunter2")
    assert "hunter2" not in repr(creds) and "hunter2" not in str(SupplierIn(
        sftp=SftpSettings(host="h", username="u", host_key_fingerprint=FP), credentials=creds).model_dump())
    assert creds.reveal() == {"password": "hunter2"}
    with pytest.raises(ValidationError, match="password or a private_key"):
        SupplierCredentials()


def test_folders_are_plain_and_distinct():
    from orderflow.suppliers.config import Folders

    assert Folders(inbound="orders/").inbound == "/orders"
    with pytest.raises(ValidationError):
        Folders(inbound="/in/../etc")
    with pytest.raises(ValidationError, match="four different"):
        Folders(outbound="/in")
