"""Sandbox sales channels: local HTTP servers that speak Shopify's, WooCommerce's and Amazon's APIs.

They keep producing orders (paging headers, 429s, signed webhooks included), so the local stack shows
imports with no internet, and the tests run the real channel clients against real sockets.
"""

from orderflow_local.sandbox.amazon import AmazonSandbox
from orderflow_local.sandbox.base import SandboxChannel
from orderflow_local.sandbox.shopify import ShopifySandbox
from orderflow_local.sandbox.woocommerce import WooCommerceSandbox

__all__ = ["AmazonSandbox", "SandboxChannel", "ShopifySandbox", "WooCommerceSandbox"]
