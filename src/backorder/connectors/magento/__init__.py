"""Magento 2 / Adobe Commerce: events in from our Backorder_Sync module (Standard Webhooks) and from
Adobe Commerce webhooks; sellable quantity (MSI source items), order holds and comments out."""

from backorder.connectors.base import ConnectorSpec
from backorder.connectors.magento.client import MagentoConnector, build
from backorder.connectors.magento.settings import MagentoSettings

SPEC = ConnectorSpec(kind="magento", settings=MagentoSettings, build=build, roles=frozenset({"channel"}))

__all__ = ["SPEC", "MagentoConnector", "MagentoSettings"]
