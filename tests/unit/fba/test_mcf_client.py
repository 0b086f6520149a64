"""The MCF client against the sandbox FBA server over real sockets: create, get, cancel; the duplicate id
that is a success; 429 and 5xx retried; Login with Amazon refreshed; what Amazon refuses."""

from __future__ import annotations

import pytest

from orderflow.channels.base import ChannelAuthError, ChannelUnavailable
from orderflow.fba import mcf
from orderflow.fba.client import McfRejected, is_transient
from orderflow.fba.forwarding import build_request
from tests.unit.fba.conftest import account, connect, fast_retry, order


def request(shipment_id: str | None = None, **overrides) -> mcf.CreateFulfillmentOrderRequest:
    o, shipment = order()
    built = build_request(shipment_id or shipment.shipment_id, o, shipment, account(), "ATVPDKIKX0DER")
    return built.model_copy(update=overrides)


def test_an_order_is_created_and_read_back_with_its_shipment_packages_and_tracking(amazon, client):
    created = client.create(request())
    assert created.created and created.seller_fulfillment_order_id == "ord_0123456789abcdef012345-1"
    details = client.get("ord_0123456789abcdef012345-1")
    assert details.status == "COMPLETE"
    assert [(i.sellerSku, i.quantity, i.sellerFulfillmentOrderItemId) for i in details.fulfillmentOrderItems] == [
        ("MUG-12OZ", 2, "line-1"), ("TSHIRT-BLK-M", 1, "line-2")]
    assert details.all_shipped()
    packages = details.packages()
    assert len(packages) == 1 and packages[0].trackingNumber and packages[0].carrierCode
    assert amazon.fulfillment_orders["ord_0123456789abcdef012345-1"].packages[0]["trackingNumber"] == \
        packages[0].trackingNumber


def test_the_order_moves_received_planning_processing_complete(amazon, client):
    amazon.step_seconds = 1000.0
    client.create(request())
    oid = "ord_0123456789abcdef012345-1"
    seen = [client.get(oid).status]
    for status in ("Planning", "Processing", "Complete"):
        amazon.set_status(oid, status)
        details = client.get(oid)
        seen.append(details.status)
        if status == "Processing":
            assert [s.status for s in details.shipments()] == ["PENDING"] and details.packages() == []
    assert seen == ["RECEIVED", "PLANNING", "PROCESSING", "COMPLETE"]


def test_the_same_seller_fulfillment_order_id_twice_is_a_success_not_a_second_order(amazon, client):
    assert client.create(request()).created is True
    again = client.create(request())
    assert again.created is False
    assert len(amazon.fulfillment_orders) == 1
    assert [r["status"] for r in amazon.calls("create")] == [200, 400]


def test_a_refusal_is_final_and_carries_amazons_words(amazon, client):
    amazon.skus = {"SOMETHING-ELSE"}
    with pytest.raises(McfRejected) as refused:
        client.create(request())
    assert "The SellerSKU for Item Id: line-1 is invalid" in refused.value.message
    assert not is_transient(refused.value)
    assert amazon.fulfillment_orders == {}


def test_unknown_orders_read_as_none_and_cancel_as_nothing_to_cancel(client):
    assert client.get("ord_nothing-1") is None
    assert client.cancel("ord_nothing-1") is False


def test_cancel_works_while_received_or_planning_and_again_after(amazon, client):
    amazon.step_seconds = 1000.0
    client.create(request())
    oid = "ord_0123456789abcdef012345-1"
    assert client.cancel(oid) is True
    assert client.get(oid).status == "CANCELLED"
    assert client.cancel(oid) is True  # cancelling twice is harmless
    assert [r["status"] for r in amazon.calls("cancel")] == [200, 200]


def test_an_order_amazon_gave_up_on_needs_no_cancel(amazon, client):
    amazon.unfulfillable_skus.add("MUG-12OZ")
    client.create(request())
    assert client.cancel("ord_0123456789abcdef012345-1") is True
    assert amazon.status_of("ord_0123456789abcdef012345-1") == "Unfulfillable"


def test_cancel_is_refused_once_amazon_is_picking(amazon, client):
    amazon.step_seconds = 1000.0
    client.create(request())
    oid = "ord_0123456789abcdef012345-1"
    amazon.set_status(oid, "Processing")
    with pytest.raises(McfRejected, match=r"PROCESSING"):
        client.cancel(oid)


def test_429_with_retry_after_and_500s_are_retried(amazon, client):
    amazon.inject(status=429, count=2, retry_after=0.01, path_prefix="/fba/")
    amazon.inject(status=500, count=1, path_prefix="/fba/")
    assert client.create(request()).created
    statuses = [r["status"] for r in amazon.api_requests("/fba/")]
    assert statuses[:3] == [429, 429, 500] and 200 in statuses[3:]
    assert len(amazon.fulfillment_orders) == 1


def test_amazon_down_beyond_the_retries_is_a_transient_failure(amazon):
    client = connect(amazon, retry=fast_retry(max_attempts=3))
    amazon.inject(status=503, count=10, path_prefix="/fba/")
    with pytest.raises(ChannelUnavailable) as down:
        client.get("ord_x-1")
    assert is_transient(down.value)
    client.close()


def test_an_expired_access_token_is_refreshed_once(amazon, client):
    client.create(request())
    before = amazon.token_requests
    amazon.expire_tokens()
    assert client.get("ord_0123456789abcdef012345-1") is not None
    assert amazon.token_requests == before + 1


def test_wrong_credentials_are_an_auth_error(amazon):
    from orderflow.channels.config import AmazonCredentials
    from orderflow.fba.client import McfClient

    config, _ = amazon.channel("amz-bad")
    client = McfClient(config, AmazonCredentials(client_id=amazon.client_id, client_secret=amazon.client_secret,
                                                 refresh_token="Atzr|revoked"), retry=fast_retry())
    with pytest.raises(ChannelAuthError):
        client.get("ord_x-1")
    client.close()


def test_statuses_in_amazons_upper_case_spelling_read_the_same(amazon, client):
    amazon.upper_case_statuses = True
    amazon.step_seconds = 1000.0
    client.create(request())
    oid = "ord_0123456789abcdef012345-1"
    amazon.set_status(oid, "CompletePartialled")
    raw = client.mcf.client.get(f"/fba/outbound/2020-07-01/fulfillmentOrders/{oid}").json()
    assert raw["payload"]["fulfillmentOrder"]["fulfillmentOrderStatus"] == "COMPLETE_PARTIALLED"
    assert client.get(oid).status == "COMPLETE_PARTIALLED"


@pytest.mark.parametrize("spelling, normal", [("CompletePartialled", "COMPLETE_PARTIALLED"),
                                              ("COMPLETE_PARTIALLED", "COMPLETE_PARTIALLED"),
                                              ("Unfulfillable", "UNFULFILLABLE"), ("received", "RECEIVED")])
def test_order_status_spellings(spelling, normal):
    assert mcf.order_status(spelling) == normal
