"""Slack incoming webhook for staff posts (Block Kit)."""

from backorder.connectors.base import ConnectorSpec
from backorder.connectors.slack.client import SlackConnector, build
from backorder.connectors.slack.settings import SlackSettings

SPEC = ConnectorSpec(kind="slack", settings=SlackSettings, build=build, roles=frozenset({"staff"}))

__all__ = ["SPEC", "SlackConnector", "SlackSettings"]
