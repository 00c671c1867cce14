"""Prometheus /metrics: queue depths from the database and the ingress's webhook counters."""

from __future__ import annotations

from fastapi.testclient import TestClient

from backorder.bootstrap import Application
from backorder.web.app import create_app


def test_metrics_expose_webhook_counters_next_to_queue_depths(app: Application) -> None:
    with TestClient(create_app(app)) as client:
        refused = client.post("/webhooks/shopify/nowhere", content=b"{}", headers={"Content-Type": "application/json"})
        assert refused.status_code == 404
        text = client.get("/metrics").text
    assert "backorder_open_lines" in text  # from the database
    rejected = [line for line in text.splitlines() if line.startswith("backorder_webhooks_rejected_total{")]
    assert rejected and float(rejected[0].rsplit(" ", 1)[1]) >= 1.0


def test_closing_the_application_stops_the_inbox_writer(app: Application) -> None:
    writer = app.channel_services.writer
    app.close()
    thread = getattr(writer, "_thread", None)
    assert thread is None or not thread.is_alive()


def test_metrics_answer_only_the_scraper_when_a_token_is_set(app: Application) -> None:
    from pydantic import SecretStr

    server = app.config.server.model_copy(update={"metrics_token": SecretStr("scrape-me")})
    app.config = app.config.model_copy(update={"server": server})
    with TestClient(create_app(app)) as client:
        refused = client.get("/metrics")
        assert refused.status_code == 401 and "metrics_token" in refused.text
        assert client.get("/metrics", headers={"Authorization": "Bearer wrong"}).status_code == 401
        scraped = client.get("/metrics", headers={"Authorization": "Bearer scrape-me"})
        assert scraped.status_code == 200 and "backorder_" in scraped.text
