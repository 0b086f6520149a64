"""Parcels, carrier accounts and keys, label storage, error messages, and the sandbox's label files."""

from __future__ import annotations

import stat

import pypdfium2
import pytest
import zxingcpp
from pydantic import SecretStr, ValidationError

from orderflow.carriers.accounts import (
    CarrierAccount,
    CarrierAccountIn,
    CarrierAccounts,
    EnvFirst,
    FileKeys,
    env_key_name,
)
from orderflow.carriers.base import LabelFormat, Parcel, carrier_message
from orderflow.carriers.hub import build_provider
from orderflow.carriers.labels import LabelIn
from orderflow.carriers.storage import LocalLabelStore, label_key
from orderflow.errors import NotFound, ValidationFailed
from orderflow_local.sandbox.carrier import (
    make_tracking_number,
    pdf_page_size,
    render_pdf,
    render_zpl,
    ups_check_digit,
    usps_check_digit,
)

# -- parcels and label requests -------------------------------------------------------------------

def test_a_parcel_needs_a_positive_weight_and_all_or_no_dimensions():
    assert Parcel(weight_oz="12.5").weight_oz == 12.5
    assert Parcel(weight_oz=8, length_in=10, width_in=6, height_in=4).has_dimensions
    for bad in ({"weight_oz": 0}, {"weight_oz": -1}, {"weight_oz": 2401}, {},
                {"weight_oz": 5, "length_in": 10}, {"weight_oz": 5, "length_in": 0, "width_in": 1, "height_in": 1}):
        with pytest.raises(ValidationError):
            Parcel(**bad)


def test_label_in_defaults_and_refusals():
    body = LabelIn.model_validate({"parcel": {"weight_oz": 10}})
    assert body.format is LabelFormat.PDF and body.shipment_id is None and body.carrier_id is None
    with pytest.raises(ValidationError):
        LabelIn.model_validate({"parcel": {"weight_oz": 10}, "format": "png"})
    with pytest.raises(ValidationError):
        LabelIn.model_validate({"parcel": {"weight_oz": 10}, "surprise": 1})


def test_label_format_checks_the_file():
    assert LabelFormat.PDF.looks_like(b"%PDF-1.4 ...") and not LabelFormat.PDF.looks_like(b"<html>")
    assert LabelFormat.ZPL.looks_like(b"\n^XA^FO50,50^FS^XZ") and not LabelFormat.ZPL.looks_like(b"%PDF")
    assert (LabelFormat.PDF.content_type, LabelFormat.ZPL.content_type) == ("application/pdf", "application/zpl")


@pytest.mark.parametrize(("body", "expected"), [
    ({"error": {"code": "ADDRESS.VERIFY.FAILURE", "message": "Address not found",
                "errors": [{"field": "street1", "message": "House number is missing"}]}},
     "Address not found; street1: House number is missing"),
    ({"detail": "Invalid token."}, "Invalid token."),
    ({"messages": [{"source": "UPS", "text": "UPS API did not respond."}]}, "UPS: UPS API did not respond."),
    ({"address_to": ["This field is required."]}, "address_to: This field is required."),
    ("<html>bad gateway</html>", "<html>bad gateway</html>"),
    ({}, "no reason given"),
])
def test_carrier_messages_of_every_shape(body, expected):
    assert carrier_message(body) == expected


# -- accounts and keys -------------------------------------------------------------------------------

class MemoryDocs:
    def __init__(self):
        self.docs = {}

    def get_doc(self, entity, doc_id, model):
        return self.docs.get((entity, doc_id))

    def put_doc(self, entity, doc_id, doc, *, new=False):
        doc._version += 1
        self.docs[(entity, doc_id)] = doc

    def list_docs(self, entity, model):
        return [d for (e, _), d in self.docs.items() if e == entity]


def test_account_input_fills_the_public_base_url_and_refuses_plain_http_off_loopback():
    assert CarrierAccountIn(type="easypost").base_url == "https://api.easypost.com"
    assert CarrierAccountIn(type="shippo").base_url == "https://api.goshippo.com"
    assert CarrierAccountIn(type="sandbox").base_url is None
    assert CarrierAccountIn(type="easypost", base_url="http://127.0.0.1:9/").base_url == "http://127.0.0.1:9"
    for url in ("http://api.easypost.com", "https://user:pw@api.easypost.com", "ftp://x.example",
                "https://api.easypost.com?key=1"):
        with pytest.raises(ValidationError):
            CarrierAccountIn(type="easypost", base_url=url)
    with pytest.raises(ValidationError):
        CarrierAccountIn(type="fedex")
    assert "secret-key" not in repr(CarrierAccountIn(type="easypost", api_key="secret-key"))


def test_choosing_an_account():
    accounts = CarrierAccounts(MemoryDocs())
    with pytest.raises(ValidationFailed) as err:
        accounts.choose(None)
    assert err.value.details["field"] == "carrier_id"
    accounts.put(CarrierAccount(carrier_id="a", type="sandbox", base_url="http://127.0.0.1:1"))
    assert accounts.choose(None).carrier_id == "a"  # the only one
    accounts.put(CarrierAccount(carrier_id="b", type="easypost", base_url="https://api.easypost.com"))
    with pytest.raises(ValidationFailed):
        accounts.choose(None)  # two, none the default
    accounts.put(CarrierAccount(carrier_id="b", type="easypost", base_url="https://api.easypost.com",
                                is_default=True))
    assert accounts.choose(None).carrier_id == "b"
    accounts.put(CarrierAccount(carrier_id="a", type="sandbox", base_url="http://127.0.0.1:1", is_default=True))
    assert [x.carrier_id for x in accounts.list() if x.is_default] == ["a"]  # one default at a time
    with pytest.raises(NotFound):
        accounts.choose("nope")


def test_file_keys_are_private_and_env_wins(tmp_path, monkeypatch):
    keys = EnvFirst(FileKeys(tmp_path / "state" / "carrier-credentials.json"))
    assert keys.get("ep") is None
    ref = keys.put("ep", SecretStr("EZTK_file"))
    assert ref == "file:carrier-credentials.json#ep" and keys.get("ep").get_secret_value() == "EZTK_file"
    mode = stat.S_IMODE((tmp_path / "state" / "carrier-credentials.json").stat().st_mode)
    assert mode == 0o600
    monkeypatch.setenv(env_key_name("ep-main"), "EZTK_env")
    assert env_key_name("ep-main") == "ORDERFLOW_CARRIER_KEY_EP_MAIN"
    assert keys.get("ep-main").get_secret_value() == "EZTK_env" and keys.ref("ep-main").startswith("env:")


def test_a_real_carrier_account_needs_a_key_the_sandbox_does_not():
    ep = CarrierAccount(carrier_id="ep", type="easypost", base_url="https://api.easypost.com")
    with pytest.raises(ValidationFailed) as err:
        build_provider(ep, None)
    assert "PUT /carriers/ep" in err.value.message
    assert build_provider(CarrierAccount(carrier_id="s", type="sandbox", base_url="http://127.0.0.1:1"), None)
    assert type(build_provider(CarrierAccount(carrier_id="sh", type="shippo", base_url="https://api.goshippo.com"),
                               "shippo_test_x")).__name__ == "ShippoClient"


# -- storage ------------------------------------------------------------------------------------------

def test_local_label_store(tmp_path):
    store = LocalLabelStore(tmp_path)
    key = store.put("ord_1", "ord_1-1", LabelFormat.PDF, b"%PDF-1.4 x")
    assert key == "labels/ord_1/ord_1-1.pdf" and store.get(key) == b"%PDF-1.4 x"
    assert (tmp_path / key).read_bytes() == b"%PDF-1.4 x"
    with pytest.raises(NotFound):
        store.get("labels/ord_1/ord_1-2.pdf")
    with pytest.raises(ValueError):
        store.get("../../etc/passwd")
    with pytest.raises(ValueError):
        label_key("ord_1", "../x", LabelFormat.ZPL)


# -- the sandbox's tracking numbers and label files ------------------------------------------------

def test_tracking_numbers_carry_their_check_digits():
    usps = make_tracking_number("USPS", 7)
    ups = make_tracking_number("UPS", 7)
    assert len(usps) == 22 and usps.isdigit() and int(usps[-1]) == usps_check_digit(usps[:-1])
    assert len(ups) == 18 and ups.startswith("1Z") and int(ups[-1]) == ups_check_digit(ups[2:-1])
    # from the right, weights 3, 1, 3, ...: 1*3 + 4*1 + 9*3 = 34 -> (10 - 4) % 10
    assert usps_check_digit("940010000000000000000") == 6


SALE = {"tracking_code": "9400120000010361652316", "carrier": "USPS", "service": "Priority", "rate": "7.90",
        "currency": "USD"}
SHIPMENT = {"from_address": {"name": "Ship Dept", "street1": "5 Dock Rd", "city": "Newark", "state": "NJ",
                             "zip": "07102", "country": "US"},
            "to_address": {"name": "Grace Hopper", "street1": "1 Navy Way", "city": "Arlington", "state": "VA",
                           "zip": "22202", "country": "US"},
            "parcel": {"weight": 12.0}, "reference": "ord_x-1"}


def test_the_pdf_label_is_4x6_inches_with_the_tracking_number():
    pdf = render_pdf(SALE, SHIPMENT)
    assert pdf.startswith(b"%PDF-") and pdf_page_size(pdf) == (288.0, 432.0)


def test_the_zpl_label():
    zpl = render_zpl(SALE, {**SHIPMENT, "to_address": {**SHIPMENT["to_address"], "name": "Evil ^XZ ~JR"}}).decode()
    assert zpl.startswith("^XA\n") and zpl.rstrip().endswith("^XZ") and zpl.count("^XZ") == 1
    assert "^BCN,200,N,N,N,A^FD9400120000010361652316^FS" in zpl
    assert "Evil" in zpl and "~JR" not in zpl  # field data cannot inject commands


def decode_barcodes(pdf: bytes) -> list[str]:
    """Render the first page at 300 dpi (PDFium) and read its Code 128 barcodes (zxing-cpp), as a
    carrier's scanner would."""
    document = pypdfium2.PdfDocument(pdf)
    try:
        image = document[0].render(scale=300 / 72).to_pil()
    finally:
        document.close()
    return [barcode.text for barcode in zxingcpp.read_barcodes(image, formats=zxingcpp.BarcodeFormat.Code128)]


@pytest.mark.parametrize("tracking", ["9400120000010361652316", "1ZSBX0010300024389"])
def test_the_barcode_scans_back_to_the_tracking_number(tracking):
    assert decode_barcodes(render_pdf({**SALE, "tracking_code": tracking}, SHIPMENT)) == [tracking]


# -- the HTTP layer's retries (orderflow.outbound_retry with the carriers' defaults) ----------------


def _carrier_http(answers, **retry):
    import httpx

    from orderflow.carriers.http import CarrierHttp, RetryPolicy

    sleeps: list[float] = []
    pending = list(answers)

    def handle(request):
        status, wait = pending.pop(0)
        if isinstance(status, Exception):
            raise status
        return httpx.Response(status, json={"error": {"message": "busy"}},
                              headers={"Retry-After": wait} if wait else {})

    policy = RetryPolicy(**{"base_delay": 0.01, "max_delay": 0.05, "sleep": sleeps.append, **retry})
    return CarrierHttp("EasyPost", "https://api.easypost.com", retry=policy,
                       transport=httpx.MockTransport(handle)), sleeps


def test_a_carrier_call_stops_when_its_waits_would_pass_the_budget():
    from orderflow.carriers.base import CarrierUnavailable

    http, sleeps = _carrier_http([(503, "3"), (503, "3"), (200, None)], budget=5.0)
    with pytest.raises(CarrierUnavailable) as err:
        http.request("GET", "/v2/shipments")
    assert sleeps == [3.0] and err.value.details["attempts"] == 2 and err.value.http_status == 503


def test_a_carrier_call_that_may_not_repeat_is_not_retried_after_a_5xx_or_a_read_timeout():
    import httpx

    from orderflow.carriers.base import CarrierUnavailable

    http, sleeps = _carrier_http([(503, None)])
    with pytest.raises(CarrierUnavailable):
        http.request("POST", "/v2/shipments/x/buy", retry_server_errors=False)
    http, sleeps = _carrier_http([(httpx.ReadTimeout("slow"), None)])
    with pytest.raises(CarrierUnavailable):
        http.request("POST", "/v2/shipments/x/buy", retry_server_errors=False)
    http, sleeps = _carrier_http([(httpx.ConnectError("refused"), None), (429, "0"), (200, None)])
    assert http.request("POST", "/v2/shipments/x/buy", retry_server_errors=False) == {"error": {"message": "busy"}}
    assert len(sleeps) == 1  # the refused connection's backoff; Retry-After: 0 is no wait
