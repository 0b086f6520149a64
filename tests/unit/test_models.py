import json
from decimal import Decimal

import pytest
from pydantic import ValidationError

from orderflow.models import NewOrder, Order, OrderStatus, StockLevel


def new_order(address, **overrides) -> NewOrder:
    data = {"lines": [{"sku": "SKU-1", "quantity": 3, "unit_price": "19.99"},
                      {"sku": "SKU-2", "quantity": 1, "unit_price": "0.10"}],
            "shipping_address": address}
    data.update(overrides)
    return NewOrder.model_validate(data)


def test_money_is_decimal_and_totals_exactly(address):
    order = Order.from_new(new_order(address))
    assert isinstance(order.lines[0].unit_price, Decimal)
    assert order.total == Decimal("60.07")
    assert order.public()["total"] == "60.07"
    assert order.public()["lines"][0]["unit_price"] == "19.99"


def test_new_order_numbers_lines_and_records_creation(address):
    order = Order.from_new(new_order(address))
    assert [line.line_no for line in order.lines] == [1, 2]
    assert order.status == OrderStatus.NEW
    assert [e.type for e in order.unsaved_events()] == ["created"]
    assert order.order_id.startswith("ord_") and len(order.order_id) <= 80


def test_country_is_normalized_to_upper_case(address):
    assert new_order(address).shipping_address.country == "GB"


@pytest.mark.parametrize("bad, field", [
    ({"lines": []}, "lines"),
    ({"lines": [{"sku": "A", "quantity": 0, "unit_price": "1"}]}, "quantity"),
    ({"lines": [{"sku": "A", "quantity": "2", "unit_price": "1"}]}, "quantity"),
    ({"lines": [{"sku": "A", "quantity": 1.5, "unit_price": "1"}]}, "quantity"),
    ({"lines": [{"sku": "A", "quantity": 1, "unit_price": "-1"}]}, "unit_price"),
    ({"lines": [{"sku": "A", "quantity": 1, "unit_price": "abc"}]}, "unit_price"),
    ({"lines": [{"sku": "bad sku!", "quantity": 1, "unit_price": "1"}]}, "sku"),
    ({"channel": "shopify"}, "channel and external_id go together"),
    ({"currency": "EURO"}, "currency"),
])
def test_bad_orders_are_refused_naming_the_field(address, bad, field):
    with pytest.raises(ValidationError) as err:
        new_order(address, **bad)
    assert field in str(err.value)


def test_bad_country_is_refused(address):
    with pytest.raises(ValidationError, match="country"):
        new_order({**address, "country": "GBR"})


def test_order_round_trips_through_its_stored_form(address):
    order = Order.from_new(new_order(address, channel="shopify", external_id="1001"))
    stored = order.model_dump(mode="json", exclude={"total"})
    again = Order.model_validate(stored)
    assert again.model_dump() == order.model_dump()
    assert again.unsaved_events() == []  # what was read back is not new


def test_public_view_hides_task_tokens_and_version(address):
    from orderflow.models import AllocatedLine, FulfillmentMethod, Shipment

    order = Order.from_new(new_order(address))
    order.shipments = [Shipment(shipment_id="s1", warehouse_id="w", method=FulfillmentMethod.SELF_SHIP,
                                lines=[AllocatedLine(line_no=1, sku="SKU-1", quantity=3, warehouse_id="w")])]
    order.fulfilment_token = order.stock_wait_token = "secret-token"
    public = order.public()
    assert "secret-token" not in json.dumps(public)
    assert "version" not in public


def test_stock_level_available_is_derived():
    level = StockLevel(sku="A", warehouse_id="w", on_hand=10, committed=4)
    assert level.available == 6
    assert level.model_dump()["available"] == 6


def test_an_order_stored_with_a_task_token_per_shipment_still_reads(address):
    """Before the workflow had one wait per order, each shipment kept its own task token."""
    from orderflow.models import AllocatedLine, FulfillmentMethod, Shipment

    order = Order.from_new(new_order(address))
    order.shipments = [Shipment(shipment_id="s1", warehouse_id="w", method=FulfillmentMethod.SELF_SHIP,
                                lines=[AllocatedLine(line_no=1, sku="SKU-1", quantity=3, warehouse_id="w")])]
    stored = order.model_dump(mode="json", exclude={"total"})
    stored["shipments"][0]["task_token"] = "an-old-token"
    again = Order.model_validate(stored)
    assert again.shipments[0].shipment_id == "s1" and "an-old-token" not in again.model_dump_json()
