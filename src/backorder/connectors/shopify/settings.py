"""Shopify channel settings (``[channels.<id>] platform = "shopify"``)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from backorder.connectors.base import ConnectorSettings

DEFAULT_API_VERSION = "2025-01"


class ShopifySettings(ConnectorSettings):
    shop_domain: str | None = None
    """``example.myshopify.com``; the Admin API lives at ``https://<shop_domain>/admin/api/...``."""
    access_token: SecretStr | None = None
    """Admin API access token (``X-Shopify-Access-Token``); without it the channel is webhook-only."""
    webhook_secret: SecretStr | None = None
    """The app's client secret, which signs ``X-Shopify-Hmac-Sha256``."""
    previous_webhook_secret: SecretStr | None = None
    """Accepted too during a secret rotation."""
    api_version: str = DEFAULT_API_VERSION
    location_map: dict[str, str] = Field(default_factory=dict)
    """Shopify location id (numeric) → our location code."""
    stock_location_id: str | None = None
    """The Shopify location that receives our sellable quantity (default: first of location_map)."""
    stock_source: bool = False
    """Apply ``inventory_levels/update`` as on-hand counts (only if Shopify is where stock is
    counted; otherwise our own pushes would echo back)."""
    push_window_seconds: float = Field(5.0, ge=0)
    """Stock changes to a SKU within this window are one push."""
    batch_size: int = Field(250, ge=1, le=250)
    """SKUs per ``inventorySetQuantities`` call (Shopify accepts at most 250 quantities)."""
    reconcile_minutes: float = Field(5.0, ge=0)
    """Pull orders updated since the last pull this often (0: never)."""
    webhook_check_minutes: float = Field(60.0, ge=0)
    """Check this often that Shopify still holds the subscriptions `backorder connect` made (it
    deletes one whose deliveries keep failing) and re-create missing ones; 0: never. Channels
    never connected from here (e.g. app-specific webhooks in shopify.app.toml) are not checked."""
    rate_per_second: float = Field(2.0, ge=0)
    """Calls per second (the GraphQL cost bucket restores 50 points/s; one call costs ≤ 25)."""
    allowed_hosts: tuple[str, ...] = ()
    tag: str = "backordered"

    def missing_credentials(self) -> list[str]:
        missing = []
        if self.access_token is None:
            missing.append("access_token")
        if not (self.shop_domain or self.base_url):
            missing.append("shop_domain")
        return missing

    def webhook_secrets(self) -> list[str]:
        return [s.get_secret_value() for s in (self.webhook_secret, self.previous_webhook_secret) if s is not None]

    def api_base(self) -> str:
        return (self.base_url or f"https://{self.shop_domain}").rstrip("/")

    def graphql_path(self) -> str:
        return f"/admin/api/{self.api_version}/graphql.json"

    def push_location(self) -> str | None:
        return self.stock_location_id or next(iter(self.location_map), None)
