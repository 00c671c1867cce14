"""Ingress counters (prometheus-client), on a registry of their own built by bootstrap: nothing
is registered at import time, and several applications in one process (tests) do not collide."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter


class IngressMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        self.accepted = Counter(
            "backorder_webhooks_accepted",
            "Webhooks committed to the inbox",
            ["platform", "channel"],
            registry=self.registry,
        )
        self.duplicates = Counter(
            "backorder_webhooks_duplicate",
            "Webhooks already in the inbox (answered 200, nothing changed)",
            ["platform", "channel"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "backorder_webhooks_rejected",
            "Webhooks refused before anything was stored",
            ["platform", "reason"],
            registry=self.registry,
        )
        self.processed = Counter(
            "backorder_inbox_processed",
            "Inbox rows processed, by outcome",
            ["platform", "outcome"],
            registry=self.registry,
        )

    def value(self, name: str, **labels: str) -> float:
        found = self.registry.get_sample_value(f"backorder_{name}_total", labels)
        return float(found or 0.0)
