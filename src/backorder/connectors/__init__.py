"""Connectors: everything that crosses the process boundary to a platform.

`errors` holds the one exception family for that boundary (outbound calls and inbound webhooks),
`http` the one shared outbound client layer (timeouts, retries with full-jitter backoff,
`Retry-After`, per-provider rate limits, the outbound-URL allowlist), and `signatures` the
constant-time webhook signature checks. Each platform gets its own sub-package; a connector never
imports another connector.
"""
