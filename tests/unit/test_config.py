"""Configuration: typed, validated at start, secrets from the environment, errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from backorder.channels.state import channel_state
from backorder.config import ConfigError, load_config, parse_config
from backorder.connectors.base import settings_lookup
from backorder.connectors.registry import load_specs

LOOKUP = settings_lookup(load_specs())


def test_no_file_means_sandbox_defaults_and_the_default_sqlite_database() -> None:
    config = load_config(None, LOOKUP, environ={})
    assert config.database_url == "sqlite:///backorder.db"
    assert config.channels == {}
    assert config.engine.auto_send_purchase_orders is False


def test_the_example_file_documents_a_valid_configuration() -> None:
    example = Path(__file__).resolve().parents[2] / "backorder.example.toml"
    config = load_config(example, LOOKUP, environ={})
    assert set(config.channels) == {"pos", "web"}
    assert config.policy().locations_for("pos") == ("shop-floor", "warehouse")
    assert config.channels["web"].buffer == 2
    assert config.locations == ("warehouse", "shop-floor")  # top level, not swallowed by [database]


def test_an_env_reference_is_replaced_by_the_variable() -> None:
    config = parse_config({"database": {"url": "${DB_URL}"}}, LOOKUP, environ={"DB_URL": "sqlite:///x.db"})
    assert config.database_url == "sqlite:///x.db"


def test_a_missing_env_variable_names_the_key_and_the_variable() -> None:
    with pytest.raises(ConfigError, match=r"database\.url: environment variable DB_URL is not set"):
        parse_config({"database": {"url": "${DB_URL}"}}, LOOKUP, environ={})


def test_an_unknown_key_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"engine\.auto_send_purchase_order"):
        parse_config({"engine": {"auto_send_purchase_order": True}}, LOOKUP, environ={})


def test_an_unknown_platform_is_an_error_naming_the_channel() -> None:
    with pytest.raises(ConfigError, match=r"channels\.web\.platform: unknown platform 'shopfiy'"):
        parse_config({"channels": {"web": {"platform": "shopfiy"}}}, LOOKUP, environ={})


def test_a_wrong_type_names_the_key_but_never_echoes_the_value() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"server": {"port": "s3cr3t-looking-value"}}, LOOKUP, environ={})
    assert "server.port" in str(caught.value)
    assert "s3cr3t-looking-value" not in str(caught.value)


def test_rules_for_unknown_events_are_rejected() -> None:
    with pytest.raises(ConfigError, match="unknown event 'BackorderCreatd'"):
        parse_config({"rules": {"BackorderCreatd": ["notify_staff"]}}, LOOKUP, environ={})


def test_configured_rules_replace_the_default_for_that_event_only() -> None:
    config = parse_config({"rules": {"BackorderCreated": ["notify_staff"]}}, LOOKUP, environ={})
    rules = config.rule_set().by_event
    assert [a.value for a in rules["BackorderCreated"]] == ["notify_staff"]
    assert "notify_customer" in [a.value for a in rules["BackorderCancelled"]]


def test_an_unknown_notify_role_is_rejected() -> None:
    with pytest.raises(ConfigError, match=r"notify\.fax: unknown role"):
        parse_config({"notify": {"fax": {"provider": "sandbox"}}}, LOOKUP, environ={})


def test_a_missing_config_file_says_how_to_pass_one(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="--config PATH or set BACKORDER_CONFIG"):
        load_config(tmp_path / "nope.toml", LOOKUP, environ={})


def test_invalid_toml_is_reported_with_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.toml"
    bad.write_text("[engine\nauto_send_purchase_orders = true\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_config(bad, LOOKUP, environ={})


# --- [database]: mistakes are errors, never a silent fall back to SQLite ----------------------

PG_URL = "postgresql+psycopg://backorder:pw@db.internal:5432/backorder"


def test_a_database_url_in_the_table_is_used() -> None:
    assert parse_config({"database": {"url": PG_URL}}, LOOKUP, environ={}).database_url == PG_URL


def test_a_misspelled_database_url_key_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"database\.uri: Extra inputs are not permitted") as caught:
        parse_config({"database": {"uri": PG_URL}}, LOOKUP, environ={})
    assert "database.url: Field required" in str(caught.value)
    assert "pw" not in str(caught.value)


def test_an_unknown_key_under_database_is_an_error_naming_it() -> None:
    with pytest.raises(ConfigError, match=r"database\.pool_size: Extra inputs are not permitted"):
        parse_config({"database": {"url": PG_URL, "pool_size": 20}}, LOOKUP, environ={})


def test_an_empty_database_table_is_an_error_not_the_default() -> None:
    with pytest.raises(ConfigError, match=r"database\.url: Field required"):
        parse_config({"database": {}}, LOOKUP, environ={})
    with pytest.raises(ConfigError, match=r"database\.url: String should have at least 1 character"):
        parse_config({"database": {"url": ""}}, LOOKUP, environ={})


def test_a_database_string_instead_of_a_table_is_an_error_without_the_value() -> None:
    with pytest.raises(ConfigError, match=r"database: expected a table") as caught:
        parse_config({"database": PG_URL}, LOOKUP, environ={})
    assert "pw" not in str(caught.value)


def test_the_database_table_and_a_top_level_database_url_together_are_an_error() -> None:
    assert parse_config({"database_url": PG_URL}, LOOKUP, environ={}).database_url == PG_URL
    with pytest.raises(ConfigError, match=r"database\.url: .*top-level database_url"):
        parse_config({"database_url": PG_URL, "database": {"url": "sqlite:///x.db"}}, LOOKUP, environ={})


# --- ${VAR} inside a string ---------------------------------------------------------------------


def test_an_env_reference_inside_a_string_is_replaced() -> None:
    url = "postgresql+psycopg://backorder:${PGPASSWORD}@db.internal:5432/backorder"  # the example file's
    config = parse_config({"database": {"url": url}}, LOOKUP, environ={"PGPASSWORD": "s3cr3t"})
    assert config.database_url == "postgresql+psycopg://backorder:s3cr3t@db.internal:5432/backorder"


def test_every_env_reference_in_a_string_is_replaced_once() -> None:
    environ = {"USER": "bo", "PW": "${HOST}", "HOST": "db"}  # a value is inserted as is, not expanded again
    config = parse_config({"database": {"url": "pg://${USER}:${PW}@${HOST}/${USER}"}}, LOOKUP, environ=environ)
    assert config.database_url == "pg://bo:${HOST}@db/bo"


def test_a_missing_variable_inside_a_string_names_the_key_and_the_variable_only() -> None:
    url = "postgresql+psycopg://${PGUSER}:${PGPASSWORD}@db.internal/backorder"
    with pytest.raises(ConfigError, match=r"database\.url: environment variable PGPASSWORD is not set") as caught:
        parse_config({"database": {"url": url}}, LOOKUP, environ={"PGUSER": "u-s3cr3t"})
    assert "u-s3cr3t" not in str(caught.value)
    with pytest.raises(ConfigError, match=r"channels\.web\.access_token: environment variable TOKEN is not set"):
        parse_config({"channels": {"web": {"platform": "shopify", "access_token": "shpat_${TOKEN}"}}}, LOOKUP, {})


def test_an_embedded_secret_stays_secret_and_out_of_errors_and_reprs() -> None:
    raw = {
        "database": {"url": "postgresql+psycopg://bo:${PGPASSWORD}@db/bo"},
        "channels": {"web": {"platform": "shopify", "access_token": "shpat_${TOKEN}"}},
    }
    config = parse_config(raw, LOOKUP, environ={"PGPASSWORD": "pg-s3cr3t", "TOKEN": "tok-s3cr3t"})
    assert config.channels["web"].access_token.get_secret_value() == "shpat_tok-s3cr3t"  # type: ignore[attr-defined]
    assert "pg-s3cr3t" not in repr(config) and "tok-s3cr3t" not in repr(config)
    with pytest.raises(ConfigError) as caught:
        parse_config({"server": {"port": "80${PORT}"}}, LOOKUP, environ={"PORT": "port-s3cr3t"})
    assert "server.port" in str(caught.value) and "port-s3cr3t" not in str(caught.value)


# --- the state `backorder channels` shows ---------------------------------------------------------


def _state(channel: dict[str, object]) -> str:
    return channel_state(parse_config({"channels": {"c": channel}}, LOOKUP, environ={}).channels["c"])


SHOP: dict[str, object] = {"platform": "shopify", "shop_domain": "a.myshopify.com", "access_token": "t"}
MAGENTO: dict[str, object] = {"platform": "magento", "base_url": "https://m.example", "access_token": "t"}


def test_a_shopify_channel_without_webhook_secret_says_it_receives_nothing() -> None:
    assert _state({"platform": "shopify"}) == (
        "receives nothing: set webhook_secret (and access_token, shop_domain for outbound calls)"
    )


@pytest.mark.parametrize("platform", ["shopify", "woocommerce", "magento", "sfcc"])
def test_every_platform_whose_webhooks_need_a_secret_says_so(platform: str) -> None:
    assert _state({"platform": platform}).startswith("receives nothing: set webhook_secret (and ")
    assert _state({"platform": platform, "webhook_secret": "whsec_x"}).startswith("webhook-only: outbound waits for ")


def test_a_channel_with_credentials_but_no_webhook_secret_says_webhooks_are_refused() -> None:
    assert _state(SHOP) == "no webhooks (refused until webhook_secret is set); orders pulled every 5 min"
    assert _state({**SHOP, "reconcile_minutes": 0}) == "outbound only: webhooks refused until webhook_secret is set"
    assert _state(MAGENTO) == "outbound only: webhooks refused until webhook_secret is set"
    assert _state({**MAGENTO, "reconcile_minutes": 10, "pull_orders": False}).startswith("outbound only")


def test_the_other_states_are_unchanged() -> None:
    assert _state({**SHOP, "webhook_secret": "s"}) == "two-way"
    assert _state({**SHOP, "previous_webhook_secret": "s"}) == "two-way"  # still accepted by the verifier
    assert _state({"platform": "shopify", "webhook_secret": "s"}) == (
        "webhook-only: outbound waits for access_token, shop_domain"
    )
    assert _state({**MAGENTO, "webhook_secrets": ["whsec_old"]}) == "two-way"
    assert _state({**MAGENTO, "adobe_public_keys": ["-----BEGIN PUBLIC KEY-----"]}) == "two-way"
    assert _state({"platform": "pos", "api_key": "k"}) == "api only (POST /api/v1/orders)"
    assert _state({"platform": "pos", "api_key": "k", "webhook_secret": "whsec_x"}) == (
        "api (POST /api/v1/orders) and signed webhooks"
    )
    assert _state({"platform": "b2b", "webhook_secret": "whsec_x"}) == (
        "signed webhooks only (set api_key for POST /api/v1/orders)"
    )
    assert _state({"platform": "pos"}) == (  # the example file's POS channel before its key is set
        "receives nothing: set api_key (POST /api/v1/orders) or webhook_secret (signed webhooks)"
    )
    assert _state({"platform": "sandbox"}) == "two-way"


@pytest.mark.parametrize(
    "public_url",
    ["127.0.0.1:8080", "backorder.example.com", "ftp://backorder.example.com", "https://", "https://x/?a=1"],
)
def test_a_public_url_that_is_not_an_absolute_http_address_is_an_error_naming_the_key(public_url: str) -> None:
    with pytest.raises(ConfigError, match=r"server\.public_url: .*must be an absolute http\(s\) address") as caught:
        parse_config({"server": {"public_url": public_url}}, LOOKUP, environ={})
    assert repr(public_url) not in str(caught.value)  # errors name the key, never the value


def test_a_loopback_public_url_is_warned_about_only_when_real_customers_get_the_links() -> None:
    from backorder.cli import link_warning

    email = {"provider": "sendgrid", "api_key": "k"}
    local = parse_config({"server": {"public_url": "http://127.0.0.1:8080/"}, "notify": {"email": email}}, LOOKUP)
    assert local.server.public_url == "http://127.0.0.1:8080"
    warning = link_warning(local)
    assert warning is not None and "public_url is http://127.0.0.1:8080" in warning and "sendgrid" in warning
    for url in ("http://localhost:8080", "http://[::1]:8080"):
        assert link_warning(parse_config({"server": {"public_url": url}, "notify": {"email": email}}, LOOKUP))
    assert (
        link_warning(
            parse_config({"server": {"public_url": "https://bo.shop.example"}, "notify": {"email": email}}, LOOKUP)
        )
        is None
    )
    assert link_warning(parse_config({"notify": {"email": {"provider": "sandbox"}}}, LOOKUP)) is None  # the demo


def test_the_currency_is_an_iso_4217_code() -> None:
    assert parse_config({"messages": {"currency": "EUR"}}, LOOKUP, environ={}).messages.currency == "EUR"
    with pytest.raises(ConfigError, match=r"messages\.currency"):
        parse_config({"messages": {"currency": "€"}}, LOOKUP, environ={})


def test_an_unknown_platform_or_provider_names_the_known_ones_and_the_likely_one() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config({"channels": {"web": {"platform": "shopfy"}}}, LOOKUP, environ={})
    message = str(caught.value)
    assert "channels.web.platform: unknown platform 'shopfy'; did you mean 'shopify'?" in message
    assert "woocommerce" in message and "pos" in message and "sendgrid" not in message
    with pytest.raises(
        ConfigError, match=r"notify\.email\.provider: unknown provider 'sendgird'; did you mean 'sendgrid'"
    ):
        parse_config({"notify": {"email": {"provider": "sendgird"}}}, LOOKUP, environ={})
