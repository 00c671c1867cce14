"""The one shared outbound HTTP layer every connector calls providers through.

What it does, in order, for each :meth:`ProviderClient.request`:

1. Builds the request on the injected :class:`httpx.Client` (so its ``base_url``, default headers
   and auth apply) with the timeouts from :class:`HttpSettings`.
2. Refuses it with :class:`~backorder.connectors.errors.OutboundUrlNotAllowed` before anything is
   sent unless the host is on the allowlist (``allowed_hosts``; when that is empty, only the host
   of the client's ``base_url``). Redirects are never followed: the allowlist could not vouch for
   where they lead.
3. Sends it, translating at this edge (``raise Mapped(...) from exc``)::

       httpx.RequestError (connect, read, timeouts)  -> TransportFailure
       429                                           -> RateLimited (Retry-After parsed)
       408, 5xx                                      -> ProviderUnavailable (Retry-After if given)
       3xx other than 304, any other 4xx             -> Rejected (never retried)

4. Retries :class:`~backorder.connectors.errors.RetryableError` in the call only when the caller
   says the request is ``idempotent``: up to ``max_attempts`` tries with full-jitter exponential
   backoff (:func:`full_jitter_delay`), the provider's ``Retry-After`` taken as a floor. A wait
   longer than ``max_retry_wait`` is not slept: the error is raised so the outbox dispatcher can
   defer the work. Non-idempotent calls are tried once; the dispatcher owns their retries.

:class:`RateLimiter` is a token bucket per provider key (``"twilio:+15551234567"``). Its
:meth:`RateLimiter.reserve` never sleeps: it says how long the caller must wait, so the dispatcher
defers the job instead of blocking a worker.

Nothing is built at import time: clients, settings, clocks and random generators are all passed in
by the composition root (and by tests, which inject ``httpx.MockTransport``, a recording ``sleep``
and a seeded ``random.Random``).
"""

from __future__ import annotations

import email.utils
import logging
import random
import re
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, TypeAlias

import httpx
from pydantic import BaseModel, ConfigDict, Field, field_validator

from backorder.connectors.errors import (
    OutboundUrlNotAllowed,
    ProviderUnavailable,
    RateLimited,
    Rejected,
    RetryableError,
    TransportFailure,
)

__all__ = [
    "Auth",
    "HttpSettings",
    "ProviderClient",
    "RateLimiter",
    "full_jitter_delay",
    "host_is_allowed",
    "json_answer",
    "parse_retry_after",
]

logger = logging.getLogger(__name__)

#: What ``auth=`` accepts: a ``(user, password)`` pair for basic auth or any :class:`httpx.Auth`.
Auth: TypeAlias = tuple[str | bytes, str | bytes] | httpx.Auth

_DELTA_SECONDS = re.compile(r"\d+(?:\.\d+)?")
# 2**64 times any sane base is already far past any cap; stops float overflow for silly attempts.
_MAX_EXPONENT = 64


class HttpSettings(BaseModel):
    """Timeouts, retry policy and outbound allowlist shared by every provider call."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    connect_timeout: float = Field(default=5.0, gt=0, description="Seconds to establish a connection.")
    read_timeout: float = Field(
        default=30.0, gt=0, description="Seconds to wait for each read (also used for write and pool)."
    )
    max_attempts: int = Field(
        default=3, ge=1, le=10, description="Tries per call for idempotent requests (1 = no in-call retry)."
    )
    backoff_base: float = Field(default=0.5, gt=0, description="Seconds; ceiling of the first backoff.")
    backoff_cap: float = Field(default=10.0, gt=0, description="Seconds; the backoff ceiling never exceeds this.")
    max_retry_wait: float = Field(
        default=30.0,
        ge=0,
        description="Longest in-call wait (e.g. a long Retry-After); longer ones are left to the dispatcher.",
    )
    allowed_hosts: list[str] = Field(
        default_factory=list,
        description=(
            "Hosts requests may go to; '*.example.com' allows its subdomains. "
            "Empty: only the host of the client's base_url."
        ),
    )

    @field_validator("allowed_hosts")
    @classmethod
    def _normalise_hosts(cls, hosts: list[str]) -> list[str]:
        cleaned = [h.strip().lower().rstrip(".") for h in hosts]
        for host in cleaned:
            # One colon means "host:port"; IPv6 literals have several and are fine.
            if not host or "/" in host or any(c.isspace() for c in host) or host.count(":") == 1:
                raise ValueError(f"allowed_hosts entry {host!r} must be a bare host name such as 'api.twilio.com'")
        return cleaned

    def timeout(self) -> httpx.Timeout:
        """The :class:`httpx.Timeout` these settings describe."""
        return httpx.Timeout(self.read_timeout, connect=self.connect_timeout)


def json_answer(response: httpx.Response, provider: str, what: str) -> Any:
    """The decoded body of a provider's answer; anything that is not JSON (a proxy's login page,
    a changed API) is ``Rejected``, saying that ``what`` "are not JSON"."""
    try:
        return response.json()
    except ValueError as exc:
        raise Rejected(response.status_code, provider=provider, detail=f"{what} are not JSON") from exc


def full_jitter_delay(attempt: int, base: float, cap: float, rng: random.Random) -> float:
    """Seconds to wait before retry number ``attempt + 1`` (``attempt`` counts failures from 0).

    "Full jitter": uniform in ``[0, min(cap, base * 2**attempt)]``, which spreads a herd of
    clients that failed together better than fixed or equal-jitter backoff.
    """
    if attempt < 0:
        raise ValueError("attempt counts from 0")
    ceiling = min(cap, base * float(2 ** min(attempt, _MAX_EXPONENT)))
    return rng.uniform(0.0, ceiling)


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds a ``Retry-After`` header asks us to wait, or ``None`` when absent or unreadable.

    Accepts both RFC 9110 forms: delta-seconds (``"120"``; a decimal is tolerated) and an
    HTTP-date (``"Wed, 21 Oct 2015 07:28:00 GMT"``), measured from ``now`` (timezone-aware) and
    never negative.
    """
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    if value is None:
        return None
    value = value.strip()
    if not value:
        return None
    if _DELTA_SECONDS.fullmatch(value):
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no claim about local time
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


def host_is_allowed(host: str, allowed: Sequence[str]) -> bool:
    """Whether ``host`` matches an allowlist entry (exact, or ``*.suffix`` for subdomains)."""
    host = host.lower().rstrip(".")
    if not host:
        return False
    for entry in allowed:
        entry = entry.lower().rstrip(".")
        if entry.startswith("*."):
            if host.endswith(entry[1:]) and len(host) > len(entry) - 1:
                return True
        elif host == entry:
            return True
    return False


def _utc_now() -> datetime:
    return datetime.now(UTC)


def _describe(request: httpx.Request) -> str:
    # Scheme, host and path only: query strings can carry API keys (Trello, Airtable…).
    return f"{request.method} {request.url.host}{request.url.path}"


class ProviderClient:
    """One provider's view of the shared outbound layer, wrapping an injected :class:`httpx.Client`.

    The client is owned (built and closed) by the composition root; this class never closes it.
    ``provider`` names the provider in error details (``"twilio"``). ``sleep``, ``rng`` and
    ``clock`` are injectable so tests neither sleep nor depend on chance or the wall clock.
    """

    def __init__(
        self,
        client: httpx.Client,
        settings: HttpSettings,
        *,
        provider: str,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        clock: Callable[[], datetime] = _utc_now,
    ) -> None:
        self._client = client
        self._settings = settings
        self._provider = provider
        self._sleep = sleep
        self._rng = rng if rng is not None else random.Random()
        self._clock = clock

    @property
    def provider(self) -> str:
        return self._provider

    @property
    def settings(self) -> HttpSettings:
        return self._settings

    def allowed_hosts(self) -> tuple[str, ...]:
        """The effective allowlist: the configured hosts, else the ``base_url`` host, else none."""
        if self._settings.allowed_hosts:
            return tuple(self._settings.allowed_hosts)
        base_host = self._client.base_url.host
        return (base_host,) if base_host else ()

    def request(
        self,
        method: str,
        url: str | httpx.URL,
        *,
        json: Any = None,
        data: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | Sequence[tuple[str, Any]] | None = None,
        content: bytes | str | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, Any] | None = None,
        auth: Auth | None = None,
        idempotent: bool = False,
    ) -> httpx.Response:
        """Send one request and return the 2xx (or 304) response, or raise a connector error.

        ``idempotent=True`` (GET, PUT of a full state, a call carrying the provider's
        idempotency key) allows in-call retries of retryable failures; otherwise one try.
        ``auth=None`` keeps the client's own auth.
        """

        def build() -> httpx.Request:
            return self._client.build_request(
                method,
                url,
                json=json,
                data=data,
                files=files,
                content=content,
                headers=headers,
                params=params,
                timeout=self._settings.timeout(),
            )

        self._check_allowed(build())
        attempts = self._settings.max_attempts if idempotent else 1
        for attempt in range(attempts):
            try:
                return self._send_once(build(), auth)
            except RetryableError as exc:
                if attempt + 1 >= attempts:
                    raise
                delay = full_jitter_delay(attempt, self._settings.backoff_base, self._settings.backoff_cap, self._rng)
                if exc.retry_after is not None:
                    delay = max(delay, exc.retry_after)
                if delay > self._settings.max_retry_wait:
                    raise
                logger.info(
                    "retrying %s call in %.2fs (attempt %d of %d): %s",
                    self._provider,
                    delay,
                    attempt + 2,
                    attempts,
                    exc.detail,
                )
                self._sleep(delay)
        raise AssertionError("unreachable: the loop returns or raises")  # pragma: no cover

    def _check_allowed(self, request: httpx.Request) -> None:
        host = request.url.host
        if request.url.scheme not in ("http", "https") or not host_is_allowed(host, self.allowed_hosts()):
            raise OutboundUrlNotAllowed(host, provider=self._provider)

    def _send_once(self, request: httpx.Request, auth: Auth | None) -> httpx.Response:
        try:
            if auth is None:
                response = self._client.send(request, follow_redirects=False)
            else:
                response = self._client.send(request, auth=auth, follow_redirects=False)
        except httpx.TimeoutException as exc:
            raise TransportFailure(
                f"{_describe(request)} to {self._provider} timed out ({type(exc).__name__})",
                provider=self._provider,
            ) from exc
        except httpx.RequestError as exc:
            raise TransportFailure(
                f"{_describe(request)} to {self._provider} failed before an answer ({type(exc).__name__})",
                provider=self._provider,
            ) from exc
        return self._check_status(response)

    def _check_status(self, response: httpx.Response) -> httpx.Response:
        status = response.status_code
        if 200 <= status < 300 or status == 304:
            return response
        if status == 429:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            raise RateLimited(retry_after, provider=self._provider)
        if status == 408 or 500 <= status < 600:
            retry_after = parse_retry_after(response.headers.get("Retry-After"), self._clock())
            raise ProviderUnavailable(status, retry_after=retry_after, provider=self._provider)
        if 300 <= status < 400:
            target = httpx.URL(response.headers.get("Location", "")).host or "an unknown host"
            raise Rejected(
                status,
                provider=self._provider,
                detail=(
                    f"{self._provider} answered HTTP {status} redirecting to {target}; redirects are "
                    "not followed (check the configured base URL)"
                ),
            )
        raise Rejected(status, response.text, provider=self._provider)


class RateLimiter:
    """Token buckets keyed by provider key: ``rate`` tokens per second, at most ``burst`` saved.

    Thread-safe. ``clock`` is a monotonic clock in seconds (``time.monotonic`` by default).
    """

    def __init__(
        self,
        rate: float,
        burst: float = 1.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if rate <= 0:
            raise ValueError("rate must be positive (tokens per second)")
        if burst < 1:
            raise ValueError("burst must be at least 1")
        self._rate = rate
        self._burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}
        self._lock = threading.Lock()

    @property
    def rate(self) -> float:
        return self._rate

    @property
    def burst(self) -> float:
        return self._burst

    def reserve(self, key: str) -> float:
        """Take a token for ``key`` and return 0.0, or return the seconds until one is available.

        Never sleeps. When the answer is positive nothing is consumed: the caller defers the work
        and asks again after that long.
        """
        with self._lock:
            now = self._clock()
            tokens, stamp = self._buckets.get(key, (self._burst, now))
            tokens = min(self._burst, tokens + max(0.0, now - stamp) * self._rate)
            if tokens >= 1.0 - 1e-9:
                self._buckets[key] = (max(0.0, tokens - 1.0), now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self._rate
