"""Settings of a Magento / Adobe Commerce channel (``[channels.<id>] platform = "magento"``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from backorder.connectors.base import ConnectorSettings


class MagentoSettings(ConnectorSettings):
    """``base_url`` is the shop's root (``https://shop.example.com``); REST calls go to
    ``{base_url}/rest/{store_code}/V1/...`` with ``access_token`` (an integration's access token,
    sent as ``Authorization: Bearer``)."""

    store_code: str = "default"
    access_token: SecretStr | None = None
    webhook_secret: SecretStr | None = None
    """Standard Webhooks secret (``whsec_<base64>``) shared with the Backorder_Sync module."""
    webhook_secrets: tuple[SecretStr, ...] = ()
    """More secrets accepted during a rotation (any of them may have signed an event)."""
    adobe_public_keys: tuple[str, ...] = ()
    """PEM public key(s) from Stores > Configuration > Adobe Services > Webhooks, to accept
    Adobe Commerce webhooks (``x-adobe-commerce-webhook-signature``)."""
    source_locations: dict[str, str] = Field(default_factory=dict)
    """Magento source code → our location, for stock READ from Magento. Unmapped sources are ignored."""
    push_source_code: str | None = "default"
    """The source whose quantity we SET to the channel's sellable quantity (None: no stock push)."""
    hold_backordered_orders: bool = True
    """Put backordered orders on hold (and release them when they can ship), besides the comment."""
    timeout_seconds: float = Field(10.0, gt=0)
    reconcile_minutes: float = Field(0.0, ge=0)
    """Pull orders updated since the last pull (``GET /V1/orders`` by ``updated_at``) this often;
    0 (the default): never — the integration token then needs read access to sales orders. When
    ``source_locations`` maps a source, the same round first pulls the quantities of the mapped
    sources (``GET /V1/inventory/source-items``)."""
    pull_orders: bool = True
    """False: the rounds pull stock only (a token without the Sales read ACL)."""
    stock_refresh_hours: float = Field(24.0, ge=0)
    """MSI source items carry no modification time, so a pulled level is keyed by its quantity and
    an unchanged one adds no inbox row. A quantity that went away and came back (5 → 3 → 5) while
    the module's second event was lost looks unchanged too; every ``stock_refresh_hours`` each
    level is recorded (and applied) once more, which bounds how long such a miss lasts. 0: never."""

    @model_validator(mode="after")
    def _push_source_is_not_read(self) -> MagentoSettings:
        if self.push_source_code and self.push_source_code in self.source_locations:
            raise ValueError(
                f"source {self.push_source_code!r} is both push_source_code and in source_locations: "
                "a source we write the sellable quantity to cannot also be read back as on-hand stock"
            )
        return self

    def all_webhook_secrets(self) -> list[str]:
        secrets = [self.webhook_secret] if self.webhook_secret else []
        return [s.get_secret_value() for s in (*secrets, *self.webhook_secrets)]

    def missing_credentials(self) -> list[str]:
        missing = []
        if not self.base_url:
            missing.append("base_url")
        if self.access_token is None or not self.access_token.get_secret_value():
            missing.append("access_token")
        return missing
