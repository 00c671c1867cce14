"""Shopify: orders, fulfillments, inventory and privacy webhooks in; sellable quantity, order
tags and fulfillment holds out, through the Admin GraphQL API."""

from backorder.connectors.base import ConnectorSpec
from backorder.connectors.shopify.client import ShopifyConnector, build
from backorder.connectors.shopify.settings import ShopifySettings

SPEC = ConnectorSpec(kind="shopify", settings=ShopifySettings, build=build, roles=frozenset({"channel"}))

__all__ = ["SPEC", "ShopifyConnector", "ShopifySettings"]
