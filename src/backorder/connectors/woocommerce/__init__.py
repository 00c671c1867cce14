"""WooCommerce: order and product webhooks in; stock quantities, order notes and meta out,
through the REST API v3."""

from backorder.connectors.base import ConnectorSpec
from backorder.connectors.woocommerce.client import WooCommerceConnector, build
from backorder.connectors.woocommerce.settings import WooCommerceSettings

SPEC = ConnectorSpec(kind="woocommerce", settings=WooCommerceSettings, build=build, roles=frozenset({"channel"}))

__all__ = ["SPEC", "WooCommerceConnector", "WooCommerceSettings"]
