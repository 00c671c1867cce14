"""WooCommerce channel settings (``[channels.<id>] platform = "woocommerce"``)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr

from backorder.connectors.base import ConnectorSettings


class WooCommerceSettings(ConnectorSettings):
    store_url: str | None = None
    """``https://shop.example.com``; the API is ``<store_url>/wp-json/wc/v3`` (``base_url`` overrides)."""
    consumer_key: SecretStr | None = None
    consumer_secret: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    """The secret set on the WooCommerce webhooks (signs ``X-WC-Webhook-Signature``)."""
    previous_webhook_secret: SecretStr | None = None
    stock_location: str | None = None
    """Our location that WooCommerce stock reports stand for (with ``stock_source``)."""
    stock_source: bool = False
    """Apply ``product.updated`` stock quantities as on-hand counts (only if WooCommerce is where
    stock is counted; otherwise our own pushes would echo back)."""
    backorders: Literal["no", "notify", "yes"] = "notify"
    """What we set as ``backorders`` with every stock push: ``notify`` lets the shop keep
    taking orders we then back-order, telling the customer."""
    push_window_seconds: float = Field(5.0, ge=0)
    batch_size: int = Field(100, ge=1, le=100)
    """Objects per batch request (WooCommerce's default limit is 100)."""
    webhook_check_minutes: float = Field(60.0, ge=0)
    """Check this often that the webhooks `backorder connect` made still deliver (WooCommerce
    disables one after 5 consecutive failed deliveries) and re-enable or re-create them; 0: never."""
    reconcile_minutes: float = Field(5.0, ge=0)
    rate_per_second: float = Field(5.0, ge=0)
    allowed_hosts: tuple[str, ...] = ()
    meta_key: str = "_backorder_status"

    def missing_credentials(self) -> list[str]:
        missing = []
        if self.consumer_key is None:
            missing.append("consumer_key")
        if self.consumer_secret is None:
            missing.append("consumer_secret")
        if not (self.store_url or self.base_url):
            missing.append("store_url")
        return missing

    def webhook_secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self.webhook_secret, self.previous_webhook_secret) if s is not None]

    def api_base(self) -> str:
        return (self.base_url or self.store_url or "").rstrip("/")
