"""The Shippo client against a tiny local fake of Shippo's API shape, over a real socket."""

from __future__ import annotations

from decimal import Decimal

import pytest

from orderflow.carriers.base import (
    CarrierAuthFailed,
    CarrierRejected,
    CarrierUnavailable,
    LabelFormat,
    Parcel,
)
from orderflow.carriers.shippo import ShippoClient
from orderflow.errors import ValidationFailed
from tests.unit.carriers.conftest import label_request


def client(shippo, retry, key="shippo_test_0123456789") -> ShippoClient:
    return ShippoClient(key, shippo.url, retry=retry, timeout=5)


def test_two_calls_headers_and_body_mapping(shippo, retry):
    created = []
    label = client(shippo, retry).buy_label(label_request(), on_created=created.append)

    shipment_call, tx_call, file_call = shippo.calls
    for call in (shipment_call, tx_call):
        assert call["headers"]["Authorization"] == "ShippoToken shippo_test_0123456789"
        assert call["headers"]["SHIPPO-API-VERSION"] == "2018-02-08"
    assert "Authorization" not in file_call["headers"]  # the label file host never sees the token
    body = shipment_call["json"]
    assert (shipment_call["method"], shipment_call["path"]) == ("POST", "/shipments")
    assert body["async"] is False and body["metadata"] == "ord_test-1"
    assert body["address_to"] == {"name": "Grace Hopper", "street1": "1 Navy Way", "street2": "Apt 2",
                                  "city": "Arlington", "state": "VA", "zip": "22202", "country": "US"}
    assert body["address_from"]["company"] == "Acme Mugs" and body["address_from"]["phone"] == "555-0100"
    assert body["parcels"] == [{"length": "9", "width": "6", "height": "4", "distance_unit": "in",
                                "weight": "12", "mass_unit": "oz"}]
    assert (tx_call["method"], tx_call["path"]) == ("POST", "/transactions")
    cheapest = next(r for r in shippo.shipments[created[0]]["rates"] if r["amount"] == "5.20")
    assert tx_call["json"] == {"rate": cheapest["object_id"], "label_file_type": "PDF_4x6", "async": False,
                               "metadata": "ord_test-1"}

    assert (label.carrier, label.service, label.cost) == ("USPS", "usps_ground_advantage", Decimal("5.20"))
    assert label.label.startswith(b"%PDF") and label.format is LabelFormat.PDF
    assert label.tracking_number.startswith("92055901755477")
    assert label.provider_shipment_id == created[0]


def test_zpl_and_a_requested_service(shippo, retry):
    label = client(shippo, retry).buy_label(label_request(format=LabelFormat.ZPL, service="UPS:ups_ground"))
    assert shippo.calls[1]["json"]["label_file_type"] == "ZPLII"
    assert (label.carrier, label.service, label.cost) == ("UPS", "ups_ground", Decimal("9.10"))
    assert label.label.startswith(b"^XA")


def test_service_matches_the_service_level_name_too(shippo, retry):
    assert client(shippo, retry).buy_label(label_request(service="Priority Mail")).service == "usps_priority"


def test_dimensions_are_required_before_any_call(shippo, retry):
    with pytest.raises(ValidationFailed) as err:
        client(shippo, retry).buy_label(label_request(parcel=Parcel(weight_oz=8)))
    assert err.value.details["field"] == "parcel.length_in" and shippo.calls == []


def test_a_transaction_error_is_a_422_with_shippos_messages(shippo, retry):
    shippo.queue("transactions", 201, {"object_id": "tx1", "status": "ERROR", "messages": [
        {"source": "USPS", "code": "address_invalid", "text": "The recipient address is not deliverable."}]})
    with pytest.raises(CarrierRejected) as err:
        client(shippo, retry).buy_label(label_request())
    assert err.value.http_status == 422
    assert "USPS: The recipient address is not deliverable." in err.value.message


def test_a_queued_transaction_is_polled_until_it_succeeds(shippo, retry, sleeps):
    shippo.transaction_statuses = ["QUEUED", "QUEUED", "SUCCESS"]
    label = client(shippo, retry).buy_label(label_request())
    assert label.tracking_number
    assert [c["method"] for c in shippo.calls if c["path"].startswith("/transactions/")] == ["GET", "GET"]
    assert len(sleeps) == 2


def test_a_transaction_that_stays_queued_is_unavailable(shippo, retry):
    shippo.transaction_statuses = ["QUEUED"] * 20
    with pytest.raises(CarrierUnavailable):
        client(shippo, retry).buy_label(label_request())


def test_field_errors_are_in_the_message(shippo, retry):
    shippo.queue("shipments", 400, {"address_to": ["This field is required."], "parcels": ["Invalid parcel."]})
    with pytest.raises(CarrierRejected) as err:
        client(shippo, retry).buy_label(label_request())
    assert "address_to: This field is required." in err.value.message
    assert "parcels: Invalid parcel." in err.value.message
    assert err.value.details["carrier_status"] == 400


def test_a_bad_token_is_carrier_auth_failed(shippo, retry):
    with pytest.raises(CarrierAuthFailed) as err:
        client(shippo, retry, key="shippo_test_wrong").buy_label(label_request())
    assert "Invalid token." in err.value.message and "shippo_test_wrong" not in err.value.message


def test_5xx_and_429_are_retried(shippo, retry, sleeps):
    shippo.queue("shipments", 503, {"detail": "Service unavailable"})
    shippo.queue("transactions", 429, {"detail": "Too many requests"})
    assert client(shippo, retry).buy_label(label_request()).tracking_number
    assert [c["path"] for c in shippo.calls if c["method"] == "POST"] == [
        "/shipments", "/shipments", "/transactions", "/transactions"]
    assert len(sleeps) == 2


def test_5xx_through_every_retry_is_carrier_unavailable(shippo, retry):
    for _ in range(4):
        shippo.queue("shipments", 502, "<html>Bad gateway</html>")
    with pytest.raises(CarrierUnavailable) as err:
        client(shippo, retry).buy_label(label_request())
    assert err.value.http_status == 503 and "HTTP 502" in err.value.message


def test_resuming_finds_the_label_an_earlier_attempt_bought(shippo, retry):
    shippo_client = client(shippo, retry)
    created = []
    first = shippo_client.buy_label(label_request(), on_created=created.append)
    again = shippo_client.buy_label(label_request(resume_shipment_id=created[0]))
    assert again.tracking_number == first.tracking_number
    assert [c["path"] for c in shippo.calls if c["method"] == "POST"] == ["/shipments", "/transactions"]


def test_resuming_an_unbought_shipment_reuses_its_rates(shippo, retry):
    shipment = shippo._shipment({"metadata": "ord_test-1"})
    label = client(shippo, retry).buy_label(label_request(resume_shipment_id=shipment["object_id"]))
    assert label.provider_shipment_id == shipment["object_id"]
    assert [c["path"] for c in shippo.calls if c["method"] == "POST"] == ["/transactions"]
