"""The EasyPost client against the sandbox carrier (EasyPost's API shape) over a real socket."""

from __future__ import annotations

import socket
from decimal import Decimal

import httpx
import pytest

from orderflow.carriers.base import (
    LABEL_HEIGHT_PT,
    LABEL_WIDTH_PT,
    CarrierAuthFailed,
    CarrierRejected,
    CarrierUnavailable,
    LabelFormat,
    Parcel,
)
from orderflow.carriers.easypost import EasyPostClient
from orderflow.carriers.http import RetryPolicy
from orderflow_local.sandbox.carrier import pdf_page_size, ups_check_digit, usps_check_digit
from tests.unit.carriers.conftest import label_request


def client(sandbox, retry, key="EZTK_test_key", **kw) -> EasyPostClient:
    return EasyPostClient(key, sandbox.url, retry=retry, timeout=5, **kw)


def test_buys_the_cheapest_rate_and_downloads_a_4x6_pdf(sandbox, retry):
    created = []
    label = client(sandbox, retry).buy_label(label_request(), on_created=created.append)

    assert (label.carrier, label.service) == ("USPS", "GroundAdvantage")  # the cheapest of the offered rates
    assert label.format is LabelFormat.PDF and label.label.startswith(b"%PDF-")
    assert pdf_page_size(label.label) == (LABEL_WIDTH_PT, LABEL_HEIGHT_PT)
    assert isinstance(label.cost, Decimal) and label.cost > 0 and label.currency == "USD"
    assert label.provider_shipment_id.startswith("shp_") and created == [label.provider_shipment_id]
    number = label.tracking_number
    assert len(number) == 22 and number.startswith("9400")
    assert int(number[-1]) == usps_check_digit(number[:-1])
    [sale] = sandbox.sales
    assert sale["tracking_code"] == number and sale["reference"] == "ord_test-1"
    assert Decimal(sale["rate"]) == label.cost


def test_request_mapping_reaches_the_carrier_in_its_shape(sandbox, retry):
    label = client(sandbox, retry).buy_label(label_request())
    shipment = sandbox.get_shipment(label.provider_shipment_id)
    assert shipment["to_address"]["street1"] == "1 Navy Way" and shipment["to_address"]["street2"] == "Apt 2"
    assert shipment["to_address"]["state"] == "VA" and shipment["to_address"]["zip"] == "22202"
    assert shipment["from_address"]["company"] == "Acme Mugs" and shipment["from_address"]["phone"] == "555-0100"
    assert shipment["parcel"]["weight"] == 12.0 and shipment["parcel"]["length"] == 9.0
    assert shipment["options"]["label_format"] == "PDF" and shipment["reference"] == "ord_test-1"
    calls = sandbox.requests
    assert [(c["method"], c["path"].split("/")[-1]) for c in calls][:2] == [("POST", "shipments"), ("POST", "buy")]
    api_calls = [c for c in calls if c["path"].startswith("/v2/")]
    label_calls = [c for c in calls if c["path"].startswith("/labels/")]
    assert all(c["authorized"] for c in api_calls)
    assert label_calls and not any(c["authorized"] for c in label_calls)  # the key never goes to the label host


@pytest.mark.parametrize(("wanted", "carrier", "service"), [
    ("UPS:Ground", "UPS", "Ground"), ("priority", "USPS", "Priority"), ("usps:express", "USPS", "Express")])
def test_a_requested_service_is_bought(sandbox, retry, wanted, carrier, service):
    label = client(sandbox, retry).buy_label(label_request(service=wanted))
    assert (label.carrier, label.service) == (carrier, service)
    if carrier == "UPS":
        assert label.tracking_number.startswith("1Z") and len(label.tracking_number) == 18
        assert int(label.tracking_number[-1]) == ups_check_digit(label.tracking_number[2:-1])


def test_an_unknown_service_is_a_422_naming_what_is_offered(sandbox, retry):
    with pytest.raises(CarrierRejected) as err:
        client(sandbox, retry).buy_label(label_request(service="FedEx:Overnight"))
    assert err.value.http_status == 422 and err.value.details["field"] == "service"
    assert "USPS:Priority" in " ".join(err.value.details["offered"])
    assert sandbox.sales == []


def test_zpl_labels(sandbox, retry):
    label = client(sandbox, retry).buy_label(label_request(format=LabelFormat.ZPL))
    text = label.label.decode()
    assert label.format is LabelFormat.ZPL
    assert text.startswith("^XA") and text.rstrip().endswith("^XZ")
    assert f"^BCN,200,N,N,N,A^FD{label.tracking_number}^FS" in text
    assert "^PW812" in text and "^LL1218" in text  # 4x6 in at 203 dpi
    assert sandbox.sales[0]["label_format"] == "zpl"


def test_a_label_bought_in_another_format_is_converted(sandbox, retry):
    ep = client(sandbox, retry)
    pdf = ep.buy_label(label_request())
    zpl = ep.buy_label(label_request(format=LabelFormat.ZPL, resume_shipment_id=pdf.provider_shipment_id))
    assert zpl.tracking_number == pdf.tracking_number and zpl.label.startswith(b"^XA")
    assert len(sandbox.sales) == 1
    assert any(c["path"].endswith("/label") for c in sandbox.requests)


def test_a_wrong_key_is_carrier_auth_failed(sandbox, retry):
    with pytest.raises(CarrierAuthFailed) as err:
        client(sandbox, retry, key="wrong").buy_label(label_request())
    assert err.value.http_status == 422 and err.value.code == "carrier_auth_failed"
    assert "wrong" not in err.value.message


def test_5xx_is_retried_with_backoff_then_succeeds(sandbox, retry, sleeps):
    sandbox.fail(500, count=2, on="buy")
    label = client(sandbox, retry).buy_label(label_request())
    assert label.tracking_number and len(sandbox.sales) == 1
    assert [c["status"] for c in sandbox.requests if c["path"].endswith("/buy")] == [500, 500, 200]
    assert len(sleeps) == 2 and all(0 <= s <= 0.05 for s in sleeps)


def test_5xx_through_every_retry_is_carrier_unavailable_503(sandbox, retry, sleeps):
    sandbox.fail(503, count=None, on="create")
    with pytest.raises(CarrierUnavailable) as err:
        client(sandbox, retry).buy_label(label_request())
    assert err.value.http_status == 503 and err.value.details["attempts"] == 4
    assert len(sleeps) == 3 and sandbox.sales == []


def test_429_honours_retry_after(sandbox, sleeps):
    sandbox.fail(429, count=1, on="create", retry_after=2)
    retry = RetryPolicy(max_attempts=3, base_delay=0.01, max_delay=0.05, max_retry_after=5, sleep=sleeps)
    assert client(sandbox, retry).buy_label(label_request()).tracking_number
    assert sleeps == [2.0]


def test_a_retry_after_longer_than_we_can_wait_ends_the_retries(sandbox, retry, sleeps):
    sandbox.fail(429, count=1, on="create", retry_after=600)
    with pytest.raises(CarrierUnavailable):
        client(sandbox, retry).buy_label(label_request())
    assert sleeps == []


def test_4xx_is_a_422_with_the_carriers_message_and_is_not_retried(sandbox, retry, sleeps):
    sandbox.fail(422, count=1, on="create", message="Address not deliverable")
    with pytest.raises(CarrierRejected) as err:
        client(sandbox, retry).buy_label(label_request())
    assert err.value.http_status == 422 and "Address not deliverable" in err.value.message
    assert err.value.details["carrier_status"] == 422 and err.value.details["carrier_code"] == "SANDBOX.REFUSED"
    assert sleeps == []


def test_the_carriers_field_errors_are_in_the_message(sandbox):
    resp = httpx.post(f"{sandbox.url}/v2/shipments", auth=("EZTK_test_key", ""),
                      json={"shipment": {"to_address": {"street1": ""}, "from_address": {}, "parcel": {"weight": 0}}})
    assert resp.status_code == 422
    from orderflow.carriers.base import carrier_message

    text = carrier_message(resp.json())
    assert "to_address.street1: cannot be blank" in text and "parcel.weight: must be greater than 0" in text


def test_a_buy_whose_answer_was_lost_is_found_not_bought_again(sandbox, sleeps):
    sandbox.fail(500, count=1, on="buy_lost")  # bought, but the answer is a 500
    retry = RetryPolicy(max_attempts=2, base_delay=0.01, sleep=sleeps)
    label = client(sandbox, retry).buy_label(label_request())
    [sale] = sandbox.sales
    assert label.tracking_number == sale["tracking_code"]
    # the retry was refused ("already has postage") and the shipment itself showed the purchase
    assert [c["status"] for c in sandbox.requests if c["path"].endswith("/buy")] == [500, 422]


def test_resuming_an_unbought_shipment_buys_it_without_creating_another(sandbox, retry):
    ep = client(sandbox, retry)
    shipment = ep.create_shipment(label_request())
    label = ep.buy_label(label_request(resume_shipment_id=shipment["id"]))
    assert label.provider_shipment_id == shipment["id"]
    assert [c["path"] for c in sandbox.requests if c["method"] == "POST"] == [
        "/v2/shipments", f"/v2/shipments/{shipment['id']}/buy"]


def test_resuming_a_bought_shipment_returns_its_label(sandbox, retry):
    ep = client(sandbox, retry)
    first = ep.buy_label(label_request())
    again = ep.buy_label(label_request(resume_shipment_id=first.provider_shipment_id))
    assert again.tracking_number == first.tracking_number and len(sandbox.sales) == 1


def test_resuming_a_shipment_the_carrier_does_not_know_creates_a_new_one(sandbox, retry):
    label = client(sandbox, retry).buy_label(label_request(resume_shipment_id="shp_" + "0" * 32))
    assert label.tracking_number and len(sandbox.sales) == 1


def test_tracking_numbers_are_unique(sandbox, retry):
    ep = client(sandbox, retry)
    numbers = {ep.buy_label(label_request(parcel=Parcel(weight_oz=4), format=LabelFormat.ZPL)).tracking_number
               for _ in range(15)}
    assert len(numbers) == 15


def test_a_carrier_that_never_answers_is_unavailable(retry):
    with socket.socket() as silent:  # accepts connections (backlog) but never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        retry.attempts = 2
        ep = EasyPostClient("k", f"http://127.0.0.1:{silent.getsockname()[1]}", timeout=0.2, retry=retry)
        with pytest.raises(CarrierUnavailable) as err:
            ep.buy_label(label_request())
    assert "did not answer in time" in err.value.message


def test_nothing_listening_is_unavailable(retry):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(CarrierUnavailable) as err:
        EasyPostClient("k", f"http://127.0.0.1:{port}", timeout=1, retry=retry).buy_label(label_request())
    assert "cannot reach EasyPost" in err.value.message
