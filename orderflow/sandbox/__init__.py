"""Sandbox sales channels: local HTTP servers that speak Shopify's, WooCommerce's and Amazon's APIs.

They keep producing orders (paging headers, 429s, signed webhooks included), so the local stack shows
imports with no internet, and the tests run the real channel clients against real sockets.
"""

from orderflow.sandbox.amazon import AmazonSandbox
from orderflow.sandbox.base import SandboxChannel
from orderflow.sandbox.shopify import ShopifySandbox
from orderflow.sandbox.woocommerce import WooCommerceSandbox

__all__ = ["AmazonSandbox", "SandboxChannel", "ShopifySandbox", "WooCommerceSandbox"]
