"""The supplier files themselves, as plain functions (no I/O): the order file we write for a shipment,
the cancellation file, and the tracking file we read back (with its bad rows and their reasons).

- Order file: multiline CSV (one row per line of the shipment), header row, UTF-8, RFC 4180 quoting,
  CRLF line ends; columns and file name per supplier. The content and the name depend only on the
  order, the shipment and the configuration, so the same shipment always produces the same file.
- Formula injection: the cells that carry the shopper's text (names, address lines, phone, e-mail, a
  gift message, a cancellation reason) are neutralized when they start like a spreadsheet formula
  (``=``, ``+``, ``-``, ``@``, tab, carriage return): a single quote ``'`` is put in front (OWASP,
  "CSV Injection"), so Excel or LibreOffice shows the text instead of running it. Our own cells
  (ids, dates, SKUs, quantities, costs, the seller's constants) are never touched. A supplier whose
  importer cannot take the quote turns it off: ``order_file.neutralize_formulas: false``.
- Tracking file: a header row names the columns (mapped per supplier); a cell may hold several
  tracking numbers joined with ``|`` or ``;``; carrier names are mapped to :class:`Carrier`; a row
  that cannot be used is returned with the reason, the others are applied.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from orderflow.models import Order, Shipment
from orderflow.suppliers.config import (
    Carrier,
    OrderFileFormat,
    SupplierConfig,
    TrackingFileFormat,
    order_times,
)

TRACKING_NUMBER = re.compile(r"^[A-Za-z0-9\-]{3,64}$")
PO_NUMBER = re.compile(r"^[A-Za-z0-9_\-.]{1,100}$")


class FileRejected(Exception):
    """The whole file cannot be read (encoding, missing columns): it goes to ``error/`` with the reason."""


# -- names ---------------------------------------------------------------------------------------


def _name(template: str, config: SupplierConfig, order: Order, shipment: Shipment) -> str:
    return template.format(supplier=config.supplier_code, shipment_id=shipment.shipment_id,
                           po_number=shipment.shipment_id, order_id=order.order_id,
                           **order_times(order.created_at))


def order_file_name(config: SupplierConfig, order: Order, shipment: Shipment) -> str:
    return _name(config.order_file.file_name, config, order, shipment)


def cancel_file_name(config: SupplierConfig, order: Order, shipment: Shipment) -> str:
    return _name(config.order_file.cancel_file_name, config, order, shipment)


# -- writing -------------------------------------------------------------------------------------

#: The first characters that make a spreadsheet read a cell as a formula (OWASP, "CSV Injection").
FORMULA_TRIGGERS = ("=", "+", "-", "@", "\t", "\r")
#: The order-file fields that carry text from the order (the shopper, or a sales channel), not ours.
SHOPPER_ORDER_FIELDS = frozenset({"ship_name", "ship_company", "ship_address1", "ship_address2", "ship_city",
                                  "ship_state", "ship_postal_code", "ship_phone", "ship_email", "gift_message"})
#: The cancellation-file fields of the same kind (the reason may come from the sales channel).
SHOPPER_CANCEL_FIELDS = frozenset({"reason"})


def neutralize(value: str) -> str:
    """``=HYPERLINK(...)`` -> ``'=HYPERLINK(...)``: a cell that starts like a formula is shown as text."""
    return "'" + value if value.startswith(FORMULA_TRIGGERS) else value


def _cell(fmt: OrderFileFormat, field: str | None, constant: str | None, values: dict[str, str],
          shopper_fields: frozenset[str]) -> str:
    if not field:
        return constant or ""
    value = values[field]
    return neutralize(value) if fmt.neutralize_formulas and field in shopper_fields else value


def _csv(fmt: OrderFileFormat, headers: list[str], rows: Iterable[list[str]]) -> bytes:
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=fmt.delimiter, lineterminator="\r\n",
                        quoting=csv.QUOTE_ALL if fmt.quote_all else csv.QUOTE_MINIMAL)
    if fmt.header_row:
        writer.writerow(headers)
    for row in rows:
        writer.writerow(row)
    return out.getvalue().encode("utf-8")


def order_rows(config: SupplierConfig, order: Order, shipment: Shipment) -> list[dict[str, str]]:
    """The canonical fields of each row (one per line of the shipment)."""
    address = order.shipping_address
    common = {
        "po_number": shipment.shipment_id,
        "order_number": order.order_id,
        "order_date": order.created_at[:10],
        "ship_method": config.order_file.ship_method,
        "ship_name": address.name,
        "ship_company": address.company or "",
        "ship_address1": address.line1,
        "ship_address2": address.line2 or "",
        "ship_city": address.city,
        "ship_state": address.region or "",
        "ship_postal_code": address.postal_code,
        "ship_country": address.country,
        "ship_phone": address.phone or "",
        "ship_email": (order.customer.email if order.customer and order.customer.email else ""),
        "gift_message": "",
    }
    rows = []
    for line in sorted(shipment.lines, key=lambda ln: ln.line_no):
        cost = config.unit_costs.get(line.sku)
        rows.append({**common, "line_number": str(line.line_no), "sku": line.sku,
                     "supplier_sku": config.supplier_skus.get(line.sku, ""), "quantity": str(line.quantity),
                     "unit_cost": f"{cost:.2f}" if cost is not None else ""})
    return rows


def order_file(config: SupplierConfig, order: Order, shipment: Shipment) -> bytes:
    fmt = config.order_file
    rows = order_rows(config, order, shipment)
    return _csv(fmt, [c.header for c in fmt.columns],
                ([_cell(fmt, c.field, c.value, row, SHOPPER_ORDER_FIELDS) for c in fmt.columns] for row in rows))


def cancel_file(config: SupplierConfig, order: Order, shipment: Shipment, *, reason: str, cancelled_at: str) -> bytes:
    fmt = config.order_file
    values = {"po_number": shipment.shipment_id, "order_number": order.order_id, "action": "CANCEL",
              "reason": reason, "cancelled_at": cancelled_at}
    return _csv(fmt, [c.header for c in fmt.cancel_columns],
                [[_cell(fmt, c.field, c.value, values, SHOPPER_CANCEL_FIELDS) for c in fmt.cancel_columns]])


# -- reading tracking files ------------------------------------------------------------------------

_CARRIER_NAMES: dict[str, Carrier] = {
    "ups": Carrier.UPS, "unitedparcelservice": Carrier.UPS, "upsground": Carrier.UPS, "upsmi": Carrier.UPS,
    "upssurepost": Carrier.UPS, "upsnextdayair": Carrier.UPS, "ups2ndday": Carrier.UPS,
    "usps": Carrier.USPS, "uspostalservice": Carrier.USPS, "unitedstatespostalservice": Carrier.USPS,
    "postalservice": Carrier.USPS, "stamps": Carrier.USPS, "stampscom": Carrier.USPS,
    "uspspriority": Carrier.USPS, "uspsfirstclass": Carrier.USPS, "prioritymail": Carrier.USPS,
    "fedex": Carrier.FEDEX, "federalexpress": Carrier.FEDEX, "fdx": Carrier.FEDEX, "fedexground": Carrier.FEDEX,
    "fedexhomedelivery": Carrier.FEDEX, "fedexexpress": Carrier.FEDEX, "fedexsmartpost": Carrier.FEDEX,
    "dhl": Carrier.DHL, "dhlexpress": Carrier.DHL, "dhlecommerce": Carrier.DHL, "dhlparcel": Carrier.DHL,
}
_PREFIXES = (("fedex", Carrier.FEDEX), ("usps", Carrier.USPS), ("ups", Carrier.UPS), ("dhl", Carrier.DHL))


def _squash(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def canonical_carrier(name: str, tracking_number: str = "", aliases: dict[str, Carrier] | None = None) -> Carrier:
    """``"United Parcel Service"`` -> UPS, ``"FedEx Ground"`` -> FEDEX, ``""`` with a ``1Z…`` number -> UPS."""
    key = _squash(name)
    for alias, carrier in (aliases or {}).items():
        if _squash(alias) == key:
            return carrier
    if key in _CARRIER_NAMES:
        return _CARRIER_NAMES[key]
    for prefix, carrier in _PREFIXES:
        if key.startswith(prefix):
            return carrier
    if not key and tracking_number.upper().startswith("1Z") and len(tracking_number) == 18:
        return Carrier.UPS
    return Carrier.OTHER


@dataclass
class TrackingRow:
    """One usable row: which shipment (po_number) or order it confirms, and how it shipped."""

    row_no: int  # line of the file (the header is line 1)
    raw: list[str]
    po_number: str | None
    order_number: str | None
    sku: str | None
    quantity: int | None
    carrier: Carrier
    carrier_name: str
    tracking_numbers: list[str]
    line_number: int | None = None


@dataclass
class BadRow:
    row_no: int
    raw: list[str]
    reason: str


@dataclass
class TrackingFile:
    header: list[str]
    rows: list[TrackingRow] = field(default_factory=list)
    bad: list[BadRow] = field(default_factory=list)


def split_tracking_numbers(cell: str, separators: str) -> list[str]:
    numbers = [cell]
    for sep in separators:
        numbers = [part for n in numbers for part in n.split(sep)]
    out = []
    for number in numbers:
        number = number.strip() if " " in separators else re.sub(r"\s+", "", number)
        if number and number not in out:
            out.append(number)
    return out


def read_tracking_file(data: bytes, fmt: TrackingFileFormat) -> TrackingFile:
    """Parse a tracking file. Raises :class:`FileRejected` if it cannot be read at all."""
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise FileRejected(f"not UTF-8 text (byte {err.start})") from err
    reader = csv.reader(io.StringIO(text, newline=""), delimiter=fmt.delimiter)
    try:
        header = next(reader)
    except StopIteration as err:
        raise FileRejected("the file is empty") from err
    except csv.Error as err:
        raise FileRejected(f"not a CSV file: {err}") from err
    names = [h.strip().lower() for h in header]
    index: dict[str, int] = {}
    missing = []
    for ours, theirs in fmt.columns.items():
        if theirs.strip().lower() in names:
            index[ours] = names.index(theirs.strip().lower())
        elif ours in ("tracking_number", "po_number", "order_number"):
            missing.append(theirs)
    if "tracking_number" not in index or not ({"po_number", "order_number"} & index.keys()):
        raise FileRejected(f"the header row lacks column(s) {', '.join(missing)} "
                           f"(found: {', '.join(h for h in header if h) or 'nothing'})")
    result = TrackingFile(header=header)
    row_no = 1
    while True:
        try:
            raw = next(reader)
        except StopIteration:
            break
        except csv.Error as err:
            row_no += 1
            result.bad.append(BadRow(row_no, [], f"unreadable CSV row: {err}"))
            continue
        row_no = reader.line_num
        if not any(cell.strip() for cell in raw):
            continue
        try:
            result.rows.append(_row(row_no, raw, index, fmt))
        except ValueError as err:
            result.bad.append(BadRow(row_no, raw, str(err)))
    return result


def _row(row_no: int, raw: list[str], index: dict[str, int], fmt: TrackingFileFormat) -> TrackingRow:
    def cell(name: str) -> str:
        i = index.get(name)
        return raw[i].strip() if i is not None and i < len(raw) else ""

    po, order_number = cell("po_number"), cell("order_number")
    if not po and not order_number:
        raise ValueError("no po_number or order_number: cannot tell which shipment this row confirms")
    for label, value in (("po_number", po), ("order_number", order_number)):
        if value and not PO_NUMBER.match(value):
            raise ValueError(f"{label} {value[:40]!r} is not one of our order or shipment ids")
    numbers = split_tracking_numbers(cell("tracking_number"), fmt.tracking_separators)
    if not numbers:
        raise ValueError("tracking_number is empty")
    for number in numbers:
        if not TRACKING_NUMBER.match(number):
            raise ValueError(f"tracking number {number[:70]!r} is not valid (3-64 letters, digits or '-')")
    quantity: int | None = None
    if cell("quantity"):
        try:
            quantity = int(cell("quantity"))
        except ValueError:
            raise ValueError(f"quantity {cell('quantity')[:20]!r} is not a whole number") from None
        if quantity <= 0:
            raise ValueError(f"quantity must be positive, not {quantity}")
    line_number = None
    if cell("line_number"):
        try:
            line_number = int(cell("line_number"))
        except ValueError:
            raise ValueError(f"line_number {cell('line_number')[:20]!r} is not a whole number") from None
    if quantity is not None and not cell("sku"):
        raise ValueError("a quantity needs the sku it counts")
    carrier_name = cell("carrier")
    return TrackingRow(row_no=row_no, raw=raw, po_number=po or None, order_number=order_number or None,
                       sku=cell("sku") or None, quantity=quantity,
                       carrier=canonical_carrier(carrier_name, numbers[0], fmt.carrier_aliases),
                       carrier_name=carrier_name, tracking_numbers=numbers, line_number=line_number)


def error_file(header: list[str], bad: list[BadRow], delimiter: str = ",") -> bytes:
    """The bad rows of a tracking file as they were, with the line they came from and the reason."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, delimiter=delimiter, lineterminator="\r\n")
    writer.writerow(["source_line", "error", *header])
    for row in sorted(bad, key=lambda b: b.row_no):
        writer.writerow([row.row_no, row.reason, *row.raw])
    return out.getvalue().encode("utf-8")
