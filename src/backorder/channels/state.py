"""The one-line state of a sales channel that ``backorder channels`` shows: what it receives and
whether its outbound calls wait for credentials."""

from __future__ import annotations

from backorder.channels.processor import API_KINDS
from backorder.connectors.base import ConnectorSettings

SECRET_KEY = "webhook_secret"


def takes_signed_webhooks(settings: ConnectorSettings) -> bool:
    """True when the platform's webhooks are verified with a secret (its settings declare
    ``webhook_secret``): such a channel refuses every webhook (401) until one is set."""
    return SECRET_KEY in type(settings).model_fields


def can_verify_webhooks(settings: ConnectorSettings) -> bool:
    """Whether the channel holds what its verifier checks a webhook against: the same lists the
    connectors use (``webhook_secrets()`` for Shopify and WooCommerce, ``all_webhook_secrets()``
    for Magento and SFCC), or Adobe Commerce public keys (Magento)."""
    if getattr(settings, "adobe_public_keys", ()):
        return True
    for name in ("webhook_secrets", "all_webhook_secrets"):
        secrets = getattr(settings, name, None)
        if callable(secrets):
            return bool(secrets())
    return getattr(settings, SECRET_KEY, None) is not None


def channel_state(settings: ConnectorSettings) -> str:
    """``two-way``; ``webhook-only: outbound waits for …``; ``api only (…)``; or, for a platform
    whose webhooks need a secret it does not have, what it actually receives and what to set."""
    if settings.kind in API_KINDS:
        api_key = getattr(settings, "api_key", None) is not None
        signed = getattr(settings, SECRET_KEY, None) is not None
        if api_key and signed:
            return "api (POST /api/v1/orders) and signed webhooks"
        if api_key:
            return "api only (POST /api/v1/orders)"
        if signed:
            return "signed webhooks only (set api_key for POST /api/v1/orders)"
        return f"receives nothing: set api_key (POST /api/v1/orders) or {SECRET_KEY} (signed webhooks)"
    missing = settings.missing_credentials()
    if takes_signed_webhooks(settings) and not can_verify_webhooks(settings):
        if missing:
            return f"receives nothing: set {SECRET_KEY} (and {', '.join(missing)} for outbound calls)"
        minutes = float(getattr(settings, "reconcile_minutes", 0) or 0)
        if minutes and getattr(settings, "pull_orders", True):
            return f"no webhooks (refused until {SECRET_KEY} is set); orders pulled every {minutes:g} min"
        return f"outbound only: webhooks refused until {SECRET_KEY} is set"
    return "webhook-only: outbound waits for " + ", ".join(missing) if missing else "two-way"
