"""A dropship supplier or 3PL as the seller configures it: where its SFTP server is, how its files look.

The configuration (:class:`SupplierConfig`) is a settings-table document keyed by the ``warehouse_id``
of the dropship/3PL warehouse it serves. Its credentials (:class:`SupplierCredentials`) are never
stored there: they go to AWS Secrets Manager, or to the local stack's credentials file
(:mod:`orderflow.suppliers.credentials`). Credential fields are ``SecretStr``: they print as
``**********`` in logs, reprs and errors.
"""

from __future__ import annotations

import string
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, ClassVar, Literal

from pydantic import ConfigDict, Field, SecretStr, StringConstraints, field_validator, model_validator

from orderflow import outbound
from orderflow.models import Document, Identifier, Model, Money, ShortText, Sku, utcnow

#: The canonical multiline order export (docs/suppliers.md; integrations research, section 5).
ORDER_FIELDS = ("po_number", "order_number", "order_date", "ship_method", "ship_name", "ship_company",
                "ship_address1", "ship_address2", "ship_city", "ship_state", "ship_postal_code", "ship_country",
                "ship_phone", "ship_email", "line_number", "sku", "supplier_sku", "quantity", "unit_cost",
                "gift_message")
#: The cancellation file: one row per cancelled shipment.
CANCEL_FIELDS = ("po_number", "order_number", "action", "reason", "cancelled_at")
#: What a tracking (ship confirmation) file may carry.
TRACKING_FIELDS = ("po_number", "order_number", "sku", "quantity", "carrier", "service", "tracking_number",
                   "ship_date", "tracking_url", "line_number")

OrderField = Literal[ORDER_FIELDS]  # type: ignore[valid-type]
CancelField = Literal[CANCEL_FIELDS]  # type: ignore[valid-type]
TrackingField = Literal[TRACKING_FIELDS]  # type: ignore[valid-type]

Delimiter = Literal[",", ";", "\t", "|"]
Header = Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[^\r\n]+$")]
FolderPath = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200,
                                              pattern=r"^/?[A-Za-z0-9._\-]+(/[A-Za-z0-9._\-]+)*/?$")]
Fingerprint = Annotated[str, StringConstraints(strip_whitespace=True, pattern=r"^SHA256:[A-Za-z0-9+/]{43}=?$")]
Secret = Annotated[SecretStr, Field(min_length=1, max_length=16_384)]
#: The names a file-name template may use (all are fixed for a shipment, so the name is deterministic).
NAME_FIELDS = frozenset({"supplier", "shipment_id", "order_id", "po_number", "date", "created"})
SAFE_NAME = frozenset(string.ascii_letters + string.digits + "._-")


class Carrier(StrEnum):
    """The canonical carriers tracking is recorded under."""

    UPS = "UPS"
    USPS = "USPS"
    FEDEX = "FEDEX"
    DHL = "DHL"
    OTHER = "OTHER"


class ArchiveMode(StrEnum):
    MOVE = "move"  # out/<name> -> archive/YYYY/MM/DD/<name>
    DELETE = "delete"
    LEAVE = "leave"  # the supplier forbids renames/deletes: the sha256 ledger alone prevents a second read


def check_template(template: str) -> str:
    """A file-name template: only known ``{names}``, and it must give a plain file name."""
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise ValueError(f"not a valid template: {err}") from err
    for literal, name, spec, conversion in parsed:
        if name is not None and (name not in NAME_FIELDS or spec or conversion):
            raise ValueError(f"unknown placeholder {{{name}}}; use {', '.join(sorted(NAME_FIELDS))}")
        if set(literal) - SAFE_NAME:
            raise ValueError("a file name may only use letters, digits, '.', '_' and '-' besides placeholders")
    if template.startswith(".") or template.endswith(".tmp"):
        raise ValueError("a file name must not start with '.' or end with '.tmp' (readers skip those)")
    if "{shipment_id}" not in template and "{po_number}" not in template:
        raise ValueError("the name must contain {shipment_id} (or {po_number}): one file per shipment")
    return template


FileNameTemplate = Annotated[str, StringConstraints(strip_whitespace=True, min_length=5, max_length=120)]


# ``defer_build=True`` (here and below): pydantic builds a model's validator when it is first used, not at
# import, so a function's cold start pays only for the models it validates (issue 13).
class OrderColumn(Model, defer_build=True):
    """One column of the order file: a field of ours under the supplier's header, or a constant."""

    header: Header
    field: OrderField | None = None
    value: Annotated[str, StringConstraints(max_length=200)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> OrderColumn:
        if (self.field is None) == (self.value is None):
            raise ValueError("give either `field` (one of ours) or `value` (a constant), not both")
        return self


class CancelColumn(Model, defer_build=True):
    header: Header
    field: CancelField | None = None
    value: Annotated[str, StringConstraints(max_length=200)] | None = None

    @model_validator(mode="after")
    def _one_source(self) -> CancelColumn:
        if (self.field is None) == (self.value is None):
            raise ValueError("give either `field` (one of ours) or `value` (a constant), not both")
        return self


def _canonical_order_columns() -> list[OrderColumn]:
    return [OrderColumn(header=name, field=name) for name in ORDER_FIELDS]


def _canonical_cancel_columns() -> list[CancelColumn]:
    return [CancelColumn(header=name, field=name) for name in CANCEL_FIELDS]


class OrderFileFormat(Model, defer_build=True):
    """The order file we write to the supplier's ``in`` folder: one per shipment, one row per line."""

    columns: Annotated[list[OrderColumn], Field(min_length=1, max_length=100)] = Field(
        default_factory=_canonical_order_columns, description="Default: the canonical multiline columns")
    header_row: bool = True
    delimiter: Delimiter = ","
    quote_all: bool = Field(False, description="Wrap every value in double quotes")
    neutralize_formulas: bool = Field(
        True, description="Put a single quote before shopper text (names, address lines, phone, e-mail, a "
                          "cancellation reason) that starts with = + - @, a tab or a carriage return, so a "
                          "spreadsheet shows it instead of running it as a formula (CSV injection). Turn off "
                          "only for a supplier whose importer cannot take the quote")
    file_name: FileNameTemplate = Field(
        "ORD_{supplier}_{shipment_id}.csv",
        description="Placeholders: {supplier} {shipment_id} {po_number} {order_id} {date} (YYYYMMDD of the "
                    "order) {created} (YYYYMMDDTHHMMSSZ of the order). Same shipment, same name.")
    ship_method: Annotated[str, StringConstraints(strip_whitespace=True, max_length=60)] = "Ground"
    #: Cancellations: a small file in the same ``in`` folder when a forwarded order is cancelled.
    send_cancellations: bool = True
    cancel_file_name: FileNameTemplate = "CANCEL_{supplier}_{shipment_id}.csv"
    cancel_columns: Annotated[list[CancelColumn], Field(min_length=1, max_length=20)] = Field(
        default_factory=_canonical_cancel_columns)

    @field_validator("file_name", "cancel_file_name")
    @classmethod
    def _template(cls, value: str) -> str:
        return check_template(value)

    @model_validator(mode="after")
    def _names_differ(self) -> OrderFileFormat:
        if self.file_name == self.cancel_file_name:
            raise ValueError("file_name and cancel_file_name must differ")
        headers = [c.header for c in self.columns]
        if len(set(headers)) != len(headers):
            raise ValueError("column headers must be unique")
        return self


def _canonical_tracking_columns() -> dict[str, str]:
    return {name: name for name in TRACKING_FIELDS}


class TrackingFileFormat(Model, defer_build=True):
    """The ship confirmations the supplier writes to its ``out`` folder (header row required)."""

    columns: dict[TrackingField, Header] = Field(
        default_factory=_canonical_tracking_columns,
        description="Our field -> the supplier's header. Needs tracking_number and po_number or order_number; "
                    "without sku/quantity a row confirms the whole shipment")
    delimiter: Delimiter = ","
    tracking_separators: Annotated[str, StringConstraints(min_length=1, max_length=4, pattern=r"^[|;,/ ]+$")] = Field(
        "|;", description="Characters that separate several tracking numbers in one cell")
    file_pattern: Annotated[str, StringConstraints(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._*?\-\[\]]+$")] = Field(
        "*.csv", description="Which files of the out folder are tracking files (glob, case-insensitive)")
    min_age_seconds: Annotated[int, Field(ge=0, le=86_400)] = Field(
        60, description="Files younger than this may still be being written: they wait for the next poll")
    max_bytes: Annotated[int, Field(ge=1_000, le=50_000_000)] = 10_000_000
    carrier_aliases: dict[Annotated[str, StringConstraints(min_length=1, max_length=60)], Carrier] = Field(
        default_factory=dict, description="Extra carrier names, e.g. {\"Royal Mail\": \"OTHER\"}")

    @model_validator(mode="after")
    def _keys(self) -> TrackingFileFormat:
        if "tracking_number" not in self.columns:
            raise ValueError("columns must map tracking_number")
        if "po_number" not in self.columns and "order_number" not in self.columns:
            raise ValueError("columns must map po_number or order_number (which shipment a row confirms)")
        if "quantity" in self.columns and "sku" not in self.columns:
            raise ValueError("a quantity column needs a sku column")
        headers = list(self.columns.values())
        if len(set(headers)) != len(headers):
            raise ValueError("each of our fields needs its own header")
        return self


class SftpSettings(Model, defer_build=True):
    #: Which server the credentials are sent to: changing one of these needs the credentials again.
    DESTINATION: ClassVar[tuple[str, ...]] = ("host", "port", "host_key_fingerprint", "accept_unknown_host_key")

    host: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=253,
                                           pattern=r"^[A-Za-z0-9.\-:]+$")]
    port: Annotated[int, Field(ge=1, le=65_535)] = 22
    username: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100,
                                               pattern=r"^[A-Za-z0-9._@\-]+$")]
    host_key_fingerprint: Fingerprint | None = Field(
        None, description="The server's host key, as `ssh-keyscan -p PORT HOST | ssh-keygen -lf -` prints it "
                          "(SHA256:...). Connections to any other key are refused")
    accept_unknown_host_key: bool = Field(
        False, description="Sandbox servers on 127.0.0.1 only: connect without a pinned fingerprint")
    timeout_seconds: Annotated[int, Field(ge=1, le=60)] = 15

    @model_validator(mode="after")
    def _host_key(self) -> SftpSettings:
        outbound.check_host(self.host)  # no private, link-local or (on AWS) loopback servers
        if self.accept_unknown_host_key and not outbound.is_loopback(self.host):
            raise ValueError("accept_unknown_host_key is only for sandbox servers on 127.0.0.1/localhost; "
                             "give host_key_fingerprint")
        if not self.host_key_fingerprint and not self.accept_unknown_host_key:
            raise ValueError("host_key_fingerprint is required (SHA256:..., see "
                             "`ssh-keyscan -p PORT HOST | ssh-keygen -lf -`)")
        return self

    def destination(self) -> tuple:
        return tuple(getattr(self, name) for name in self.DESTINATION)


class Folders(Model, defer_build=True):
    inbound: FolderPath = Field("/in", description="Where order (and cancellation) files go")
    outbound: FolderPath = Field("/out", description="Where the supplier leaves tracking files")
    archive: FolderPath = Field("/archive", description="Processed tracking files (archive_mode move)")
    error: FolderPath = Field("/error", description="Rejected files and the bad rows of accepted ones")

    @field_validator("inbound", "outbound", "archive", "error")
    @classmethod
    def _no_dots(cls, value: str) -> str:
        if any(part in ("..", ".") for part in value.split("/")):
            raise ValueError("must not contain . or .. segments")
        return "/" + value.strip("/")

    @model_validator(mode="after")
    def _distinct(self) -> Folders:
        if len({self.inbound, self.outbound, self.archive, self.error}) != 4:
            raise ValueError("in, out, archive and error must be four different folders")
        return self


class SupplierSettings(Model, defer_build=True):
    """What a seller sends (``PUT /suppliers/{warehouse_id}``) besides the credentials."""

    name: ShortText | None = None
    code: Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=40,
                                           pattern=r"^[A-Za-z0-9_\-]+$")] | None = Field(
        None, description="The {supplier} of file names (default: the warehouse id)")
    enabled: bool = Field(True, description="Disabled: nothing is forwarded (orders wait) and nothing polled")
    sftp: SftpSettings
    folders: Folders = Field(default_factory=Folders)
    order_file: OrderFileFormat = Field(default_factory=OrderFileFormat)
    tracking_file: TrackingFileFormat = Field(default_factory=TrackingFileFormat)
    archive_mode: ArchiveMode = ArchiveMode.MOVE
    supplier_skus: dict[Sku, Annotated[str, StringConstraints(min_length=1, max_length=64)]] = Field(
        default_factory=dict, description="Our SKU -> the supplier's (supplier_sku column; read back too)")
    unit_costs: dict[Sku, Money] = Field(default_factory=dict, description="Our SKU -> what the supplier charges")


class SupplierConfig(SupplierSettings, Document):
    """The stored configuration (``entity = "supplier"``, ``id = warehouse_id``). Never credentials."""

    warehouse_id: Identifier
    #: Where the credentials are kept (a secret name or the local file), never the credentials themselves.
    credentials_ref: str | None = None
    created_at: str = Field(default_factory=utcnow)
    updated_at: str = Field(default_factory=utcnow)

    @property
    def supplier_code(self) -> str:
        return self.code or self.warehouse_id

    def public(self) -> dict:
        return self.model_dump(mode="json")


class SupplierCredentials(Model, defer_build=True):
    #: A credential that fails validation is never repeated in the error's text.
    model_config = ConfigDict(hide_input_in_errors=True)

    password: Secret | None = None
    private_key: Secret | None = Field(None, description="An OpenSSH or PEM private key (Ed25519, ECDSA or RSA)")
    private_key_passphrase: Secret | None = None

    @model_validator(mode="after")
    def _something(self) -> SupplierCredentials:
        if self.password is None and self.private_key is None:
            raise ValueError("give a password or a private_key")
        return self

    def reveal(self) -> dict[str, str]:
        """The plain values, for the secret store only."""
        return {name: value.get_secret_value() for name, value in self if value is not None}

    def kinds(self) -> list[str]:
        return [name for name, value in self if value is not None and name != "private_key_passphrase"]


class SupplierIn(SupplierSettings):
    """``PUT /suppliers/{warehouse_id}``: the settings, and credentials (required the first time)."""

    model_config = ConfigDict(hide_input_in_errors=True)

    credentials: SupplierCredentials | None = Field(
        None, description="Kept in Secrets Manager (never in the table, never echoed). Omit to keep the stored ones")


def order_times(created_at: str) -> dict[str, str]:
    """``{date}`` and ``{created}`` of an order (from its creation time, so they never change)."""
    moment = datetime.fromisoformat(created_at.replace("Z", "+00:00")).astimezone(UTC)
    return {"date": moment.strftime("%Y%m%d"), "created": moment.strftime("%Y%m%dT%H%M%SZ")}
