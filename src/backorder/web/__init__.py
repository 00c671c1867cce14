"""HTTP: the app factory, webhook routes, REST API v1 and the dashboard."""
