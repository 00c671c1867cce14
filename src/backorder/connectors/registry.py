"""Which connectors exist. Built on demand by the composition root, never at import time."""

from __future__ import annotations

import importlib

from backorder.connectors.base import ConnectorSpec

CONNECTOR_PACKAGES = (
    "sandbox",
    "magento",
    "sfcc",
    "sendgrid",
    "mailgun",
    "smtp",
    "twilio",
    "slack",
    "shopify",
    "woocommerce",
)
"""Packages under ``backorder.connectors`` that expose ``SPEC``."""


def load_specs(packages: tuple[str, ...] = CONNECTOR_PACKAGES) -> dict[str, ConnectorSpec]:
    specs: dict[str, ConnectorSpec] = {}
    for package in packages:
        spec = importlib.import_module(f"backorder.connectors.{package}").SPEC
        specs[spec.kind] = spec
    return specs
