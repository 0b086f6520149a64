"""The small parts: the FBA account document, fulfillment order ids per generation, tracking from packages."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from orderflow.fba import mcf
from orderflow.fba.accounts import FbaAccount, FbaAccountIn
from orderflow.fba.forwarding import fulfillment_order_id, generation_of
from orderflow.fba.tracking import usable_packages


def test_an_account_names_a_channel_and_defaults_the_rest():
    account = FbaAccountIn(channel_id="amazon-us")
    assert (account.shipping_speed, account.fulfillment_policy, account.marketplace_id) == ("Standard", "FillOrKill",
                                                                                             None)
    assert account.comment


@pytest.mark.parametrize("bad", [
    {"shipping_speed": "Overnight"}, {"shipping_speed": "ScheduledDelivery"}, {"marketplace_id": "us"},
    {"comment": ""}, {"comment": "x" * 751}, {"endpoint": "http://sellingpartnerapi-na.amazon.com"},
    {"endpoint": "https://user:pw@example.com"}, {"credentials": {"refresh_token": "no"}}, {"channel_id": "a b"},
])
def test_an_account_refuses_what_amazon_or_we_would(bad):
    with pytest.raises(ValidationError):
        FbaAccountIn.model_validate({"channel_id": "amazon-us", **bad})


def test_endpoints_are_https_except_on_loopback():
    assert FbaAccountIn(channel_id="a", endpoint="https://sandbox.sellingpartnerapi-na.amazon.com/").endpoint == \
        "https://sandbox.sellingpartnerapi-na.amazon.com"
    assert FbaAccountIn(channel_id="a", endpoint="http://127.0.0.1:8123").endpoint == "http://127.0.0.1:8123"
    assert FbaAccount(warehouse_id="fba", channel_id="a").created_at


def test_each_generation_of_a_shipments_fulfillment_order_has_its_own_id():
    assert fulfillment_order_id("ord_x-1") == "ord_x-1"
    assert fulfillment_order_id("ord_x-1", 2) == "ord_x-1-a2"
    assert generation_of("ord_x-1", "ord_x-1") == 1
    assert generation_of("ord_x-1", "ord_x-1-a7") == 7
    assert generation_of("ord_x-1", "ord_x-12") == 1


def details(*shipments) -> mcf.FulfillmentOrderDetails:
    return mcf.FulfillmentOrderDetails.model_validate({
        "fulfillmentOrder": {"sellerFulfillmentOrderId": "ord_x-1", "fulfillmentOrderStatus": "Complete"},
        "fulfillmentOrderItems": [{"sellerSku": "A", "sellerFulfillmentOrderItemId": "line-1", "quantity": 3,
                                   "unfulfillableQuantity": 1, "cancelledQuantity": 0}],
        "fulfillmentShipments": list(shipments)})


def shipment(status, *packages):
    return {"amazonShipmentId": "D1", "fulfillmentCenterId": "RNO1", "fulfillmentShipmentStatus": status,
            "fulfillmentShipmentItem": [], "fulfillmentShipmentPackage": list(packages)}


def test_tracking_comes_from_the_packages_of_shipped_shipments_in_package_order():
    d = details(shipment("SHIPPED", {"packageNumber": 2, "carrierCode": "UPS", "trackingNumber": "1Z 999 AA1"},
                         {"packageNumber": 1, "carrierCode": "AMZN_US", "trackingNumber": "TBA000000000001"}),
                shipment("PENDING", {"packageNumber": 3, "carrierCode": "USPS", "trackingNumber": "9400111"}),
                shipment("SHIPPED", {"packageNumber": 4, "carrierCode": "USPS", "trackingNumber": "bad number!",
                                     "amazonFulfillmentTrackingNumber": "TBA000000000009"},
                         {"packageNumber": 5, "carrierCode": "USPS"}))
    assert usable_packages(d) == [("AMZN_US", "TBA000000000001"), ("UPS", "1Z999AA1"), ("USPS", "TBA000000000009")]
    assert not d.all_shipped()
    assert d.shortfall() == "1 x A unfulfillable"


def test_cancelled_shipments_do_not_hold_up_all_shipped():
    d = details(shipment("CANCELLED_BY_FULFILLER"), shipment("SHIPPED"))
    assert d.all_shipped()
    assert not details().all_shipped()
