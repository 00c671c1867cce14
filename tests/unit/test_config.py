"""Configuration: typed, validated at start, secrets from the environment, errors name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

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
