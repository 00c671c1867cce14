"""Settings of a Salesforce B2C Commerce (SFCC) channel (``[channels.<id>] platform = "sfcc"``)."""

from __future__ import annotations

from pydantic import Field, SecretStr, model_validator

from backorder.connectors.base import ConnectorSettings

ACCOUNT_MANAGER_TOKEN_URL = "https://account.demandware.com/dwsso/oauth2/access_token"


class SfccSettings(ConnectorSettings):
    """``base_url`` is the instance host for OCAPI (``https://zzxy-001.dx.commercecloud.salesforce.com``);
    SCAPI Orders calls go to ``https://{short_code}.api.commercecloud.salesforce.com`` (or
    ``scapi_base_url``). Both use one Account Manager client-credentials token."""

    client_id: str | None = None
    client_secret: SecretStr | None = None
    token_url: str = ACCOUNT_MANAGER_TOKEN_URL
    scopes: tuple[str, ...] = ()
    """E.g. ``("SALESFORCE_COMMERCE_API:zzxy_prd", "sfcc.orders.rw")``; empty: the client's defaults."""
    ocapi_version: str = "v23_2"
    inventory_list_id: str | None = None
    """The inventory list whose records' allocation we SET to the sellable quantity."""
    short_code: str | None = None
    organization_id: str | None = None
    """``f_ecom_<realm>_<instance>``."""
    site_id: str | None = None
    scapi_base_url: str | None = None
    webhook_secret: SecretStr | None = None
    """Standard Webhooks secret (``whsec_<base64>``) shared with the int_backorder job step."""
    webhook_secrets: tuple[SecretStr, ...] = ()
    inventory_locations: dict[str, str] = Field(default_factory=dict)
    """Inventory list id → our location, for stock READ from SFCC. Unmapped lists are ignored."""
    hold_via_export_status: bool = True
    """Backordered orders get export status ``not_exported`` (held from export), ``ready`` when released."""
    note_attribute: str = "c_backorderNote"
    status_attribute: str = "c_backorderStatus"
    timeout_seconds: float = Field(10.0, gt=0)
    reconcile_minutes: float = Field(0.0, ge=0)
    """Pull orders modified since the last pull (SCAPI ``GET .../orders?lastModifiedDateFrom=``)
    this often; 0 (the default): never — the API client then needs the ``sfcc.orders`` scope. When
    ``inventory_locations`` maps a list, the same round first pulls that list's product inventory
    records (OCAPI Data ``GET /inventory_lists/{list}/product_inventory_records``; the client's
    Data API permission must allow ``get`` on that resource)."""
    pull_orders: bool = True
    """False: the rounds pull stock only (an API client without the ``sfcc.orders`` scope)."""

    @model_validator(mode="after")
    def _check(self) -> SfccSettings:
        for name in ("note_attribute", "status_attribute"):
            if not getattr(self, name).startswith("c_"):
                raise ValueError(f"{name} must be a custom attribute named c_…")
        if self.inventory_list_id and self.inventory_list_id in self.inventory_locations:
            raise ValueError(
                f"inventory list {self.inventory_list_id!r} is both inventory_list_id and in inventory_locations: "
                "a list we write the sellable quantity to cannot also be read back as on-hand stock"
            )
        return self

    def scapi_root(self) -> str | None:
        if self.scapi_base_url:
            return self.scapi_base_url.rstrip("/")
        return f"https://{self.short_code}.api.commercecloud.salesforce.com" if self.short_code else None

    def all_webhook_secrets(self) -> list[str]:
        secrets = [self.webhook_secret] if self.webhook_secret else []
        return [s.get_secret_value() for s in (*secrets, *self.webhook_secrets)]

    def missing_credentials(self) -> list[str]:
        missing = [
            k
            for k in ("base_url", "client_id", "inventory_list_id", "organization_id", "site_id")
            if not getattr(self, k)
        ]
        if self.client_secret is None or not self.client_secret.get_secret_value():
            missing.append("client_secret")
        if not self.scapi_root():
            missing.append("short_code")
        return missing
