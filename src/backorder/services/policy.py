"""Settings the handlers need, as one typed value (built from the config by bootstrap)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class EnginePolicy:
    channel_locations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    """Channel id → locations it fulfils from, in order. A channel not listed uses all."""
    auto_send_purchase_orders: bool = False
    po_consolidation_minutes: int = 60
    """A draft PO collects proposals this long before auto-send sends it."""
    default_lead_time_days: int = 14

    def locations_for(self, channel: str) -> tuple[str, ...] | None:
        return self.channel_locations.get(channel)

    @property
    def restricted_channels(self) -> set[str]:
        return set(self.channel_locations)
