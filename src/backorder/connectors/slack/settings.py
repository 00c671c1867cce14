"""``[notify.staff] provider = "slack"``."""

from __future__ import annotations

from pydantic import SecretStr

from backorder.connectors.base import ConnectorSettings


class SlackSettings(ConnectorSettings):
    webhook_url: SecretStr | None = None
    """``"${SLACK_WEBHOOK_URL}"``: the incoming webhook URL (https://hooks.slack.com/services/…);
    it is a credential. ``base_url`` replaces its scheme and host (to point at a test server)."""
    posts_per_second: float = 1.0
    """Slack allows about one post per second per incoming webhook."""

    def missing_credentials(self) -> list[str]:
        return [] if self.webhook_url and self.webhook_url.get_secret_value() else ["webhook_url"]
