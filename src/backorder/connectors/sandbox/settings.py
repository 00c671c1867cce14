"""Settings of the sandbox connector (``provider = "sandbox"`` or ``platform = "sandbox"``)."""

from __future__ import annotations

from backorder.connectors.base import ConnectorSettings


class SandboxSettings(ConnectorSettings):
    fail_first: int = 0
    """Answer this many calls with a retryable failure first (to watch retries in the demo)."""
