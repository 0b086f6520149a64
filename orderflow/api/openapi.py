"""What ``GET /openapi.json`` says beyond what the route signatures give Powertools.

The document is a contract the fuzz test (tests/e2e/test_fuzz_api.py, Schemathesis with every check)
holds the API to, so it lists:

- security: the bearer token everywhere but ``GET /health`` (public) and ``POST /webhooks/{channel_id}``
  (the channel's own HMAC signature header instead of the token);
- every status each operation can answer, errors with their one body shape
  (``{"error": {"code", "message", "details"}}``): 201/202/204 where that is the success, 400 (body not
  JSON), 401, 404 (an id in the path or the body names nothing), 409 (the resource's state does not allow
  it, or a concurrent change won), 422 (validation), 503 (a dependency is briefly unavailable: retry);
  the operations that call a channel, carrier, supplier or FBA (``UPSTREAM``) also 429 (the channel asks
  us to wait) and 502 (it answered with an error or could not be reached);
- rules the models check in code that JSON Schema can say too (two fields that go together, strings
  that must hold more than spaces, decimal strings), so that generated requests that the document calls
  valid are ones the API accepts.
"""

from __future__ import annotations

import copy
import json
from typing import Any

BEARER = "bearerAuth"
SHOPIFY_SIGNATURE = "shopifyWebhookSignature"
WOOCOMMERCE_SIGNATURE = "wooCommerceWebhookSignature"

SECURITY_SCHEMES: dict[str, dict[str, Any]] = {
    BEARER: {"type": "http", "scheme": "bearer",
             "description": "The local stack's token (`orderflow local` prints it); SigV4 (AWS_IAM) on AWS"},
    SHOPIFY_SIGNATURE: {"type": "apiKey", "in": "header", "name": "X-Shopify-Hmac-Sha256",
                        "description": "base64(HMAC-SHA256(webhook_secret, body)) of a Shopify channel"},
    WOOCOMMERCE_SIGNATURE: {"type": "apiKey", "in": "header", "name": "X-WC-Webhook-Signature",
                            "description": "base64(HMAC-SHA256(webhook_secret, body)) of a WooCommerce channel"},
}

#: Operations that need no bearer token, and what they need instead.
PUBLIC: dict[tuple[str, str], list[dict[str, list[str]]]] = {
    ("get", "/health"): [],
    ("post", "/webhooks/{channel_id}"): [{SHOPIFY_SIGNATURE: []}, {WOOCOMMERCE_SIGNATURE: []}],
}

#: Success statuses other than a plain 200.
SUCCESS: dict[tuple[str, str], dict[int, str]] = {
    ("post", "/warehouses"): {201: "Created"},
    ("post", "/orders"): {201: "Created", 200: "The order this channel order or Idempotency-Key already made"},
    ("post", "/orders/{order_id}/tracking"): {202: "Accepted: the workflow completes the shipment"},
    ("post", "/orders/{order_id}/redrive"): {202: "Accepted: the workflow runs again"},
    ("post", "/orders/{order_id}/complete"): {202: "Accepted: the workflow completes the order"},
    ("post", "/purchase-orders"): {201: "Created"},
    ("post", "/channels"): {201: "Created", 200: "Replaced"},
    ("delete", "/channels/{channel_id}"): {204: "Disconnected"},
    ("put", "/carriers/{carrier_id}"): {201: "Created", 200: "Replaced"},
    ("post", "/orders/{order_id}/labels"): {201: "Bought", 200: "The label this shipment already has"},
    ("put", "/suppliers/{warehouse_id}"): {201: "Created", 200: "Replaced"},
    ("put", "/fba/{warehouse_id}"): {201: "Created", 200: "Replaced"},
}

#: Operations that call a seller's channel, carrier, SFTP supplier or Amazon while the caller waits: they
#: pass on the outside system's refusal or absence (502, 429 from a channel; 503 when a carrier or
#: supplier is unreachable).
UPSTREAM = {
    ("post", "/channels/{channel_id}/import"), ("post", "/webhooks/{channel_id}"),
    ("post", "/fba/{warehouse_id}/poll"), ("post", "/suppliers/{warehouse_id}/poll"),
    ("post", "/orders/{order_id}/labels"),
}

#: Operations without an id in the path that still answer 404 (an id in the body names nothing).
NOT_FOUND_FROM_BODY = {("put", "/settings/allocation"), ("post", "/purchase-orders")}

ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {"error": {
        "type": "object",
        "required": ["code", "message", "details"],
        "properties": {"code": {"type": "string"}, "message": {"type": "string"}, "details": {"type": "object"}},
    }},
}

ERRORS = {
    400: "The body is not JSON (invalid_json)",
    401: "No or a wrong bearer token (unauthorized)",
    404: "Nothing has that id (not_found)",
    409: "The resource's state does not allow it, or a concurrent change won (conflict)",
    422: "The request does not validate (validation_error and others)",
    429: "The channel asks us to wait (channel_rate_limited; details.retry_after in seconds)",
    502: "The channel or Amazon answered with an error or could not be reached (channel_error, "
         "channel_unavailable, channel_auth_failed)",
    503: "A dependency is briefly unavailable: retry with backoff (temporarily_unavailable)",
}

#: Ids the API makes (``ord_…``, ``ord_…-1``, ``po_…``): path parameters hold no other characters.
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_\-]*$"

#: An API base URL (channels, carriers, FBA): https to a host name with a dot (IP literals and
#: loopback names are refused outside the local stack's sandboxes), no query, fragment or user.
BASE_URL_PATTERN = r"^https://[A-Za-z][A-Za-z0-9\-]*(\.[A-Za-z][A-Za-z0-9\-]*)+(:[1-9][0-9]{0,3})?(/[A-Za-z0-9._~\-]+)*$"


def _error_response(status: int) -> dict[str, Any]:
    return {"description": ERRORS[status], "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}


def _responses(method: str, path: str, operation: dict[str, Any]) -> dict[str, Any]:
    key = (method, path)
    generated = operation.get("responses", {})
    ok = generated.get("200", {"description": "OK", "content": {"application/json": {}}})
    out: dict[str, Any] = {}
    for status, description in SUCCESS.get(key, {200: "OK"}).items():
        if status == 204:
            out[str(status)] = {"description": description}
        else:
            out[str(status)] = {**copy.deepcopy(ok), "description": description}
    statuses = [422, 503]
    if key not in PUBLIC or PUBLIC[key]:
        statuses.append(401)
    if "requestBody" in operation:
        statuses.append(400)
    if "{" in path or key in NOT_FOUND_FROM_BODY:
        statuses.append(404)
    if method in ("post", "put", "delete") and key not in PUBLIC:
        statuses.append(409)
    if key in UPSTREAM:
        statuses += [429, 502]
    for status in sorted(statuses):
        out[str(status)] = _error_response(status)
    if key == ("get", "/health"):
        out = {"200": out["200"]}  # answered by the API alone
    return out


def _path_parameters(path: str, operation: dict[str, Any]) -> None:
    for parameter in operation.get("parameters", []):
        if parameter.get("in") != "path":
            continue
        schema = parameter.setdefault("schema", {})
        if "pattern" not in schema:
            schema["pattern"] = ID_PATTERN
            schema.setdefault("minLength", 1)
        elif parameter["name"] == "sku":
            # A "/" in a SKU cannot travel in one path segment: such SKUs are not addressable there.
            schema["pattern"] = schema["pattern"].replace("/", "")


def _walk(node: Any, visit) -> None:  # noqa: ANN001
    if isinstance(node, dict):
        visit(node)
        for value in node.values():
            _walk(value, visit)
    elif isinstance(node, list):
        for value in node:
            _walk(value, visit)


def _not_blank(schema: dict[str, Any]) -> None:
    """Strings are stripped before their length is checked: one of spaces only is empty."""
    if schema.get("type") == "string" and schema.get("minLength") == 1 and "pattern" not in schema \
            and "format" not in schema and "enum" not in schema:
        schema["pattern"] = r"\S"


def _decimal(schema: dict[str, Any], places: int = 4, pattern: str | None = None) -> None:
    """``anyOf: [number, string]`` of a Decimal field: the number has at most ``places`` decimal places and
    the string holds a plain decimal number (``pattern``; by default a non-negative amount of money)."""
    for branch in schema.get("anyOf", []):
        if branch.get("type") == "string":
            branch["pattern"] = pattern or MONEY_PATTERN
        elif branch.get("type") == "number":
            branch["multipleOf"] = float(f"1e-{places}")
            branch.setdefault("maximum", 9_999_999_999)


#: Money: ``ge=0, max_digits=14, decimal_places=4``.
MONEY_PATTERN = r"^[0-9]{1,10}(\.[0-9]{1,4})?$"

#: (schema, property) -> (decimal places, the string's pattern) of a Decimal field. A bounded one's string
#: form is documented within its bounds (the number form carries the exact ones): weight 1-999.99 oz,
#: a side 1-99.99 in, an SLA of 1-999.999999 h.
DECIMALS = {
    ("LineIn", "unit_price"): (4, MONEY_PATTERN), ("Warehouse", "shipping_cost"): (4, MONEY_PATTERN),
    ("Warehouse", "sla_hours"): (6, r"^[1-9][0-9]{0,2}(\.[0-9]{1,6})?$"),
    ("Parcel", "weight_oz"): (2, r"^[1-9][0-9]{0,2}(\.[0-9]{1,2})?$"),
    **{("Parcel", side): (2, r"^[1-9][0-9]?(\.[0-9]{1,2})?$") for side in ("length_in", "width_in", "height_in")},
}


def _strings_are_text(schemas: dict[str, Any]) -> None:
    _walk(schemas, _not_blank)


def _together(*names: str) -> dict[str, Any]:
    """All of ``names`` given (not null), or none of them."""
    return {"anyOf": [
        {"required": list(names), "properties": {n: {"not": {"type": "null"}} for n in names}},
        {"properties": {n: {"type": "null"} for n in names}},
    ]}


def _one_of_two(first: str, second: str) -> dict[str, Any]:
    """Exactly one of two nullable fields."""
    return {"oneOf": [
        {"required": [first], "properties": {first: {"not": {"type": "null"}}, second: {"type": "null"}}},
        {"required": [second], "properties": {second: {"not": {"type": "null"}}, first: {"type": "null"}}},
    ]}


#: The smallest request rate a channel may be given (requests per second).
MIN_RATE = 0.001


def _property(schemas: dict[str, Any], name: str, prop: str) -> dict[str, Any]:
    """A property's schema to amend in place (a throwaway one when the model has no such field)."""
    return schemas.get(name, {}).get("properties", {}).get(prop, {})


def _rules(schemas: dict[str, Any]) -> None:
    """The models' cross-field rules, as JSON Schema."""
    extra: dict[str, dict[str, Any]] = {
        "NewOrder": _together("channel", "external_id"),
        "Pin": _one_of_two("channel", "sku"),
        "OrderColumn": _one_of_two("field", "value"),
        "CancelColumn": _one_of_two("field", "value"),
        "Parcel": _together("length_in", "width_in", "height_in"),
        "SupplierCredentials": {"anyOf": [
            {"required": ["password"], "properties": {"password": {"type": "string"}}},
            {"required": ["private_key"], "properties": {"private_key": {"type": "string"}}}]},
        "SftpSettings": {"required": ["host_key_fingerprint"],
                         "properties": {"host_key_fingerprint": {"type": "string"},
                                        "accept_unknown_host_key": {"const": False}}},
    }
    for name, rule in extra.items():
        if name in schemas:
            schemas[name].setdefault("allOf", []).append(rule)
    for name in ("ShopifyChannelIn", "WooCommerceChannelIn", "AmazonChannelIn"):  # the discriminator
        if name in schemas and "type" not in schemas[name].setdefault("required", []):
            schemas[name]["required"].append("type")
    _property(schemas, "AdjustmentIn", "delta")["not"] = {"const": 0}
    _property(schemas, "NewPurchaseOrder", "status").update({"enum": ["draft", "ordered"]})
    # DynamoDB numbers stop at 1e-130; the API refuses a rate below a thousandth (orderflow.api.channels).
    _property(schemas, "RateLimit", "rate").update({"minimum": MIN_RATE})
    _property(schemas, "RateLimit", "rate").pop("exclusiveMinimum", None)
    columns = _property(schemas, "TrackingFileFormat", "columns")
    if columns:
        columns.update({"required": ["tracking_number"], "dependentRequired": {"quantity": ["sku"]},
                        "anyOf": [{"required": ["po_number"]}, {"required": ["order_number"]}]})
    policy = schemas.get("AllocationPolicy", {}).get("properties", {}).get("rules")
    if policy is not None:
        policy.update({"uniqueItems": True, "contains": {"const": "stock"}})
    for (name, prop), (places, pattern) in DECIMALS.items():
        field = schemas.get(name, {}).get("properties", {}).get(prop)
        if field is not None:
            _decimal(field, places, pattern)
    for name in ("SupplierIn",):
        for value in schemas.get(name, {}).get("properties", {}).get("unit_costs", {}).get("patternProperties", {}).values():
            _decimal(value)
    for schema in schemas.values():
        for prop, field in schema.get("properties", {}).items():
            if prop in ("base_url", "endpoint", "lwa_url"):
                for branch in [field, *field.get("anyOf", [])]:
                    if branch.get("type") == "string":
                        branch["pattern"] = BASE_URL_PATTERN


def amend(document: dict[str, Any]) -> dict[str, Any]:
    """The generated document with the security, statuses and rules above."""
    document = copy.deepcopy(document)
    components = document.setdefault("components", {})
    components["securitySchemes"] = copy.deepcopy(SECURITY_SCHEMES)
    document["security"] = [{BEARER: []}]
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = copy.deepcopy(ERROR_SCHEMA)
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            if not isinstance(operation, dict) or method not in ("get", "put", "post", "delete", "patch"):
                continue
            if (method, path) in PUBLIC:
                operation["security"] = PUBLIC[(method, path)]
            _path_parameters(path, operation)
            operation["responses"] = _responses(method, path, operation)
    _strings_are_text(schemas)
    _rules(schemas)
    text = json.dumps(document)
    for unused in ("HTTPValidationError", "ValidationError", "ResponseValidationError"):
        if f'"#/components/schemas/{unused}"' not in text:
            schemas.pop(unused, None)
    return document
