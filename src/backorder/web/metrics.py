"""Prometheus ``/metrics`` (issue 5), built per app: a collector registry of its own that reads
the database at scrape time (queue depths and ages, webhook counts, dispatch latency)."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeHistogramMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from backorder.bootstrap import Application

LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class BackorderCollector(Collector):
    def __init__(self, application: Application) -> None:
        self.application = application

    def collect(self) -> Iterator[Any]:
        assert self.application.staff is not None
        now = self.application.clock.now()
        data = self.application.staff.queries.queue_depths()
        depth = GaugeMetricFamily(
            "backorder_outbox_rows", "Outbox rows by action and status", labels=["action", "status"]
        )
        for (action, status), n in sorted(data["outbox"].items()):
            depth.add_metric([action, status], n)
        yield depth
        age = GaugeMetricFamily(
            "backorder_outbox_oldest_pending_age_seconds", "Age of the oldest pending outbox row", labels=["action"]
        )
        for action, oldest in sorted(data["oldest_pending"].items()):
            age.add_metric([action], max((now - oldest).total_seconds(), 0.0))
        yield age
        inbox = GaugeMetricFamily(
            "backorder_webhook_events", "Inbox (webhook) events by platform and status", labels=["platform", "status"]
        )
        for (platform, status), n in sorted(data["inbox"].items()):
            inbox.add_metric([platform, status], n)
        yield inbox
        lines, units, oldest_line = data["backorders"]
        yield GaugeMetricFamily("backorder_open_lines", "Order lines waiting for stock", value=lines)
        yield GaugeMetricFamily("backorder_open_units", "Units waiting for stock", value=int(units))
        yield GaugeMetricFamily(
            "backorder_oldest_backorder_age_seconds",
            "Age of the oldest waiting line",
            value=max((now - oldest_line).total_seconds(), 0.0) if oldest_line else 0.0,
        )
        # Dispatch latency over the latest 5,000 attempts, per connector (a gauge histogram: it
        # describes a recent window, not a running total).
        per: dict[str, list[float]] = {}
        outcomes: dict[tuple[str, str], int] = {}
        for connector, outcome, started, finished in data["attempts"]:
            per.setdefault(connector, []).append(max((finished - started).total_seconds(), 0.0))
            outcomes[(connector, outcome)] = outcomes.get((connector, outcome), 0) + 1
        latency = GaugeHistogramMetricFamily(
            "backorder_dispatch_latency_seconds",
            "Delivery attempt duration over the latest 5000 attempts",
            labels=["connector"],
        )
        for connector, values in sorted(per.items()):
            buckets = [(str(b), float(sum(1 for v in values if v <= b))) for b in LATENCY_BUCKETS]
            buckets.append(("+Inf", float(len(values))))
            latency.add_metric([connector], buckets, gsum_value=sum(values))
        yield latency
        recent = GaugeMetricFamily(
            "backorder_dispatch_recent_attempts",
            "Delivery attempts by outcome over the latest 5000",
            labels=["connector", "outcome"],
        )
        for (connector, outcome), n in sorted(outcomes.items()):
            recent.add_metric([connector, outcome], n)
        yield recent


def build_router(application: Application) -> APIRouter:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(BackorderCollector(application))
    router = APIRouter(include_in_schema=False)

    token = application.config.server.metrics_token
    expected = f"Bearer {token.get_secret_value()}".encode() if token is not None else None

    @router.get("/metrics")
    def metrics(request: Request) -> Response:
        given = request.headers.get("authorization", "").encode()
        if expected is not None and not hmac.compare_digest(given, expected):
            return Response(
                b'{"detail":"give the scraper\'s [server] metrics_token as Authorization: Bearer <token>"}',
                status_code=401,
                media_type="application/json",
                headers={"WWW-Authenticate": "Bearer"},
            )
        body = generate_latest(registry)
        channels = application.channel_services
        if channels is not None:  # webhook counters kept by the ingress (accepted, duplicate, rejected, processed)
            body += generate_latest(channels.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return router
