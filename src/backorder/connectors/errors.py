"""Errors of the connector boundary: what went wrong talking to a platform, said so staff can act.

Two families, one per direction. Adapters translate library errors into these at the edge with
``raise Mapped(...) from exc``, so callers never see an ``httpx`` or ``cryptography`` exception.

Outbound (our calls to a provider)::

    ConnectorError                      .detail, .provider
    ├── RetryableError                  .retry_after (seconds or None), .status_code
    │   ├── RateLimited                 HTTP 429; Retry-After parsed
    │   ├── ProviderUnavailable         HTTP 408 / 5xx; Retry-After honoured if present
    │   └── TransportFailure            connect/read errors, timeouts (no HTTP status)
    └── FatalError                      never retried: fix the cause, then replay the dead letter
        ├── Rejected                    any other 4xx (and unfollowed 3xx); .status_code, .response_excerpt
        ├── NotConfigured               credentials missing; names the config key / env var to set
        └── OutboundUrlNotAllowed       host not in the outbound allowlist; nothing was sent

Inbound (a webhook arriving at our ingress)::

    WebhookRejected                     .status_code, .reason (== .detail)
    ├── InvalidSignature                401: missing/wrong signature header
    ├── StaleTimestamp                  401: signed timestamp outside the replay window
    ├── PayloadTooLarge                 413: body over the size limit
    ├── UnknownChannel                  404: no configured channel at that URL
    └── MalformedPayload                422 (400 when unparseable): stored in the inbox as failed

Every error carries ``.detail``: one sentence that is safe to show staff on the dashboard. It
never contains a secret, a signature, a full URL with its query string or a request body.
"""

from __future__ import annotations

__all__ = [
    "REJECTED_EXCERPT_LIMIT",
    "ConnectorError",
    "FatalError",
    "InvalidSignature",
    "MalformedPayload",
    "NotConfigured",
    "OutboundUrlNotAllowed",
    "PayloadTooLarge",
    "RateLimited",
    "Rejected",
    "RetryableError",
    "StaleTimestamp",
    "TransportFailure",
    "UnknownChannel",
    "WebhookRejected",
]

#: How many characters of a provider's error answer a :class:`Rejected` keeps.
REJECTED_EXCERPT_LIMIT = 500


def _who(provider: str | None) -> str:
    return provider if provider else "the provider"


def _truncate(text: str, limit: int = REJECTED_EXCERPT_LIMIT) -> str:
    text = text.strip()
    if len(text) <= limit:
        return text
    return text[: limit - 1] + "…"


# --------------------------------------------------------------------------------------------
# Outbound


class ConnectorError(Exception):
    """A call to a provider failed; ``detail`` says why in words safe to show staff."""

    def __init__(self, detail: str, *, provider: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.provider = provider


class RetryableError(ConnectorError):
    """The same call may succeed later; ``retry_after`` is the provider's wait hint in seconds."""

    def __init__(
        self,
        detail: str,
        *,
        retry_after: float | None = None,
        status_code: int | None = None,
        provider: str | None = None,
    ) -> None:
        super().__init__(detail, provider=provider)
        self.retry_after = retry_after
        self.status_code = status_code


class RateLimited(RetryableError):
    """HTTP 429: the provider asks us to slow down."""

    def __init__(
        self,
        retry_after: float | None = None,
        *,
        provider: str | None = None,
        detail: str | None = None,
    ) -> None:
        if detail is None:
            wait = f"; it asked us to wait {retry_after:g}s" if retry_after is not None else ""
            detail = f"{_who(provider)} rate-limited the request (HTTP 429){wait}"
        super().__init__(detail, retry_after=retry_after, status_code=429, provider=provider)


class ProviderUnavailable(RetryableError):
    """HTTP 408 or 5xx: the provider is down, overloaded or timed out on its side."""

    def __init__(
        self,
        status_code: int,
        *,
        retry_after: float | None = None,
        provider: str | None = None,
        detail: str | None = None,
    ) -> None:
        if detail is None:
            detail = f"{_who(provider)} is unavailable (HTTP {status_code})"
        super().__init__(detail, retry_after=retry_after, status_code=status_code, provider=provider)


class TransportFailure(RetryableError):
    """No HTTP answer at all: DNS, connect, TLS, read errors and timeouts."""

    def __init__(self, detail: str, *, provider: str | None = None) -> None:
        super().__init__(detail, retry_after=None, status_code=None, provider=provider)


class FatalError(ConnectorError):
    """Retrying the same call cannot help; the outbox row goes to the dead-letter list."""


class Rejected(FatalError):
    """A 4xx other than 408/429 (or a redirect we do not follow): the request itself is wrong.

    ``response_excerpt`` keeps the start of the provider's answer (its error message is usually
    the only explanation staff will get), truncated to :data:`REJECTED_EXCERPT_LIMIT` characters.
    """

    def __init__(
        self,
        status_code: int,
        response_text: str = "",
        *,
        provider: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.response_excerpt = _truncate(response_text)
        if detail is None:
            answer = f": {self.response_excerpt}" if self.response_excerpt else ""
            detail = f"{_who(provider)} rejected the request (HTTP {status_code}){answer}"
        super().__init__(detail, provider=provider)


class NotConfigured(FatalError):
    """Credentials or settings a connector needs are missing.

    The detail names where to put them: the key in ``backorder.toml`` and, for secrets, the
    environment variable that overrides it.
    """

    def __init__(
        self,
        config_key: str,
        *,
        env_var: str | None = None,
        provider: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.config_key = config_key
        self.env_var = env_var
        if detail is None:
            where = f"set {config_key} in backorder.toml"
            if env_var:
                where += f" or the environment variable {env_var}"
            detail = f"{_who(provider)} is not configured: {where}"
        super().__init__(detail, provider=provider)


class OutboundUrlNotAllowed(FatalError):
    """The URL's host is not on the outbound allowlist; the request was never sent."""

    def __init__(
        self,
        host: str,
        *,
        provider: str | None = None,
        detail: str | None = None,
    ) -> None:
        self.host = host
        if detail is None:
            shown = host or "(no host)"
            detail = (
                f"refused to call {shown} for {_who(provider)}: the host is not in the outbound "
                "allowlist (add it to allowed_hosts under [http] in backorder.toml)"
            )
        super().__init__(detail, provider=provider)


# --------------------------------------------------------------------------------------------
# Inbound


class WebhookRejected(Exception):
    """An inbound webhook we refuse; ``status_code`` is what the ingress answers."""

    status_code: int

    def __init__(self, status_code: int, reason: str) -> None:
        super().__init__(reason)
        self.status_code = status_code
        self.reason = reason

    @property
    def detail(self) -> str:
        """The reason, safe to show staff (never the expected signature or the secret)."""
        return self.reason


class InvalidSignature(WebhookRejected):
    """401: the signature header is missing, malformed or does not match."""

    def __init__(self, reason: str = "webhook signature does not match") -> None:
        super().__init__(401, reason)


class StaleTimestamp(WebhookRejected):
    """401: the signed timestamp is outside the allowed window (a replay, or a skewed clock)."""

    def __init__(self, reason: str = "webhook timestamp is outside the allowed window") -> None:
        super().__init__(401, reason)


class PayloadTooLarge(WebhookRejected):
    """413: the body is over the configured size limit; nothing was stored."""

    def __init__(self, reason: str = "webhook body is larger than the configured limit") -> None:
        super().__init__(413, reason)


class UnknownChannel(WebhookRejected):
    """404: no channel is configured for the webhook URL."""

    def __init__(self, reason: str = "no channel is configured for this webhook URL") -> None:
        super().__init__(404, reason)


class MalformedPayload(WebhookRejected):
    """The body is authentic but cannot be understood; it is kept in the inbox as failed.

    422 by default; pass ``status_code=400`` when the body is not even parseable (bad JSON).
    """

    def __init__(self, reason: str, *, status_code: int = 422) -> None:
        super().__init__(status_code, reason)
