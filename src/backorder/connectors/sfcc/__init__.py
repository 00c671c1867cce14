"""Salesforce B2C Commerce Cloud: orders and inventory changes in from our int_backorder job step
(Standard Webhooks); inventory record allocation (OCAPI Data) and order export status / notes
(SCAPI Orders) out, with an Account Manager client-credentials token."""

from backorder.connectors.base import ConnectorSpec
from backorder.connectors.sfcc.client import SfccConnector, build
from backorder.connectors.sfcc.settings import SfccSettings

SPEC = ConnectorSpec(kind="sfcc", settings=SfccSettings, build=build, roles=frozenset({"channel"}))

__all__ = ["SPEC", "SfccConnector", "SfccSettings"]
