"""The shared outbound layer: error mapping, in-call retries, allowlist and rate limiting.

No network and no sleeping: every client runs on ``httpx.MockTransport``, ``sleep`` records the
delays it is asked for, randomness is a seeded ``random.Random`` and time is a fixed clock.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from backorder.connectors.errors import (
    ConnectorError,
    FatalError,
    NotConfigured,
    OutboundUrlNotAllowed,
    ProviderUnavailable,
    RateLimited,
    Rejected,
    RetryableError,
    TransportFailure,
)
from backorder.connectors.http import (
    HttpSettings,
    ProviderClient,
    RateLimiter,
    full_jitter_delay,
    host_is_allowed,
    parse_retry_after,
)

NOW = datetime(2025, 3, 14, 9, 26, 53, tzinfo=UTC)
BASE_URL = "https://api.example.com"
SEED = 20250314

Handler = Callable[[httpx.Request], httpx.Response]


class Recorder:
    """A mock provider: answers from a script and counts what reached it."""

    def __init__(self, *answers: httpx.Response | Exception) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer


class Harness:
    def __init__(self) -> None:
        self.sleeps: list[float] = []
        self._clients: list[httpx.Client] = []

    def client(
        self,
        handler: Handler,
        *,
        settings: HttpSettings | None = None,
        base_url: str = BASE_URL,
        auth: tuple[str, str] | None = None,
    ) -> ProviderClient:
        http = httpx.Client(base_url=base_url, transport=httpx.MockTransport(handler), auth=auth)
        self._clients.append(http)
        return ProviderClient(
            http,
            settings or HttpSettings(),
            provider="example",
            sleep=self.sleeps.append,
            rng=random.Random(SEED),
            clock=lambda: NOW,
        )

    def close(self) -> None:
        for http in self._clients:
            http.close()


@pytest.fixture
def harness() -> Iterator[Harness]:
    h = Harness()
    yield h
    h.close()


def answer(status: int, *, headers: dict[str, str] | None = None, text: str = "") -> httpx.Response:
    return httpx.Response(status, headers=headers, text=text)


# --------------------------------------------------------------------------------------------
# success


def test_2xx_answer_is_returned_as_is(harness: Harness) -> None:
    provider = Recorder(httpx.Response(201, json={"sid": "SM123"}))
    response = harness.client(provider).request("POST", "/messages", data={"To": "+15551234567"})
    assert response.json() == {"sid": "SM123"}
    assert provider.requests[0].url == "https://api.example.com/messages"


def test_settings_timeouts_are_applied_to_every_request(harness: Harness) -> None:
    provider = Recorder(answer(200))
    settings = HttpSettings(connect_timeout=2.5, read_timeout=12.0)
    harness.client(provider, settings=settings).request("GET", "/ping", idempotent=True)
    timeout = provider.requests[0].extensions["timeout"]
    assert timeout["connect"] == 2.5
    assert timeout["read"] == 12.0


def test_client_auth_is_kept_when_no_auth_is_passed(harness: Harness) -> None:
    provider = Recorder(answer(200))
    harness.client(provider, auth=("AC123", "token")).request("GET", "/ping")
    assert provider.requests[0].headers["Authorization"].startswith("Basic ")


def test_auth_passed_to_the_call_overrides_the_client_auth(harness: Harness) -> None:
    provider = Recorder(answer(200))
    harness.client(provider, auth=("AC123", "token")).request("GET", "/ping", auth=("api", "key-1"))
    assert provider.requests[0].headers["Authorization"] == "Basic " + base64.b64encode(b"api:key-1").decode()


# --------------------------------------------------------------------------------------------
# 429 and Retry-After


def test_429_with_retry_after_seconds_raises_rate_limited_with_that_wait(harness: Harness) -> None:
    provider = Recorder(answer(429, headers={"Retry-After": "7"}))
    with pytest.raises(RateLimited) as caught:
        harness.client(provider).request("POST", "/messages")
    assert caught.value.retry_after == 7.0
    assert caught.value.status_code == 429
    assert isinstance(caught.value, RetryableError)
    assert len(provider.requests) == 1
    assert harness.sleeps == []


def test_429_with_retry_after_http_date_is_measured_from_the_clock(harness: Harness) -> None:
    later = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    provider = Recorder(answer(429, headers={"Retry-After": later}))
    with pytest.raises(RateLimited) as caught:
        harness.client(provider).request("POST", "/messages")
    assert caught.value.retry_after == 90.0


def test_429_without_retry_after_has_no_wait_hint(harness: Harness) -> None:
    provider = Recorder(answer(429))
    with pytest.raises(RateLimited) as caught:
        harness.client(provider).request("POST", "/messages")
    assert caught.value.retry_after is None


def test_idempotent_429_waits_at_least_the_retry_after_then_succeeds(harness: Harness) -> None:
    provider = Recorder(answer(429, headers={"Retry-After": "2"}), answer(200))
    harness.client(provider).request("GET", "/orders", idempotent=True)
    assert len(provider.requests) == 2
    assert len(harness.sleeps) == 1
    assert harness.sleeps[0] >= 2.0


def test_idempotent_retry_after_longer_than_the_inline_limit_is_left_to_the_dispatcher(
    harness: Harness,
) -> None:
    provider = Recorder(answer(429, headers={"Retry-After": "3600"}), answer(200))
    with pytest.raises(RateLimited) as caught:
        harness.client(provider).request("GET", "/orders", idempotent=True)
    assert caught.value.retry_after == 3600.0
    assert len(provider.requests) == 1
    assert harness.sleeps == []


# --------------------------------------------------------------------------------------------
# 5xx / 408 and in-call retries


def test_idempotent_503_then_200_is_retried_after_a_full_jitter_sleep(harness: Harness) -> None:
    settings = HttpSettings(backoff_base=0.5, backoff_cap=10.0)
    provider = Recorder(answer(503), answer(503), answer(200, text="ok"))
    response = harness.client(provider, settings=settings).request("GET", "/stock", idempotent=True)
    assert response.text == "ok"
    assert len(provider.requests) == 3
    assert len(harness.sleeps) == 2
    assert 0.0 <= harness.sleeps[0] <= 0.5  # min(cap, base * 2**0)
    assert 0.0 <= harness.sleeps[1] <= 1.0  # min(cap, base * 2**1)
    rng = random.Random(SEED)
    assert harness.sleeps == [rng.uniform(0, 0.5), rng.uniform(0, 1.0)]


def test_idempotent_503_honours_retry_after_as_a_floor(harness: Harness) -> None:
    provider = Recorder(answer(503, headers={"Retry-After": "4"}), answer(200))
    harness.client(provider).request("PUT", "/levels/1", json={"available": 3}, idempotent=True)
    assert harness.sleeps[0] >= 4.0


def test_idempotent_request_gives_up_after_max_attempts(harness: Harness) -> None:
    provider = Recorder(answer(502))
    with pytest.raises(ProviderUnavailable) as caught:
        harness.client(provider, settings=HttpSettings(max_attempts=3)).request("GET", "/x", idempotent=True)
    assert caught.value.status_code == 502
    assert len(provider.requests) == 3
    assert len(harness.sleeps) == 2


def test_non_idempotent_503_raises_provider_unavailable_without_retry(harness: Harness) -> None:
    provider = Recorder(answer(503), answer(200))
    with pytest.raises(ProviderUnavailable) as caught:
        harness.client(provider).request("POST", "/purchase-orders", json={"lines": []})
    assert caught.value.status_code == 503
    assert len(provider.requests) == 1
    assert harness.sleeps == []


def test_408_is_provider_unavailable(harness: Harness) -> None:
    provider = Recorder(answer(408, headers={"Retry-After": "3"}))
    with pytest.raises(ProviderUnavailable) as caught:
        harness.client(provider).request("POST", "/x")
    assert caught.value.status_code == 408
    assert caught.value.retry_after == 3.0


# --------------------------------------------------------------------------------------------
# other 4xx: fatal, never retried


@pytest.mark.parametrize("status", [400, 401, 403, 404, 409, 422])
def test_other_4xx_raises_rejected_and_is_never_retried(harness: Harness, status: int) -> None:
    provider = Recorder(answer(status, text='{"message": "To is not a valid phone number"}'), answer(200))
    with pytest.raises(Rejected) as caught:
        harness.client(provider).request("GET", "/x", idempotent=True)
    assert caught.value.status_code == status
    assert "To is not a valid phone number" in caught.value.response_excerpt
    assert isinstance(caught.value, FatalError)
    assert len(provider.requests) == 1
    assert harness.sleeps == []


def test_rejected_keeps_only_the_start_of_a_long_provider_answer(harness: Harness) -> None:
    provider = Recorder(answer(400, text="x" * 10_000))
    with pytest.raises(Rejected) as caught:
        harness.client(provider).request("POST", "/x")
    assert len(caught.value.response_excerpt) <= 500
    assert len(caught.value.detail) < 600


def test_redirects_are_not_followed_and_are_rejected(harness: Harness) -> None:
    provider = Recorder(answer(302, headers={"Location": "https://elsewhere.example.net/"}), answer(200))
    with pytest.raises(Rejected) as caught:
        harness.client(provider).request("GET", "/x", idempotent=True)
    assert caught.value.status_code == 302
    assert "elsewhere.example.net" in caught.value.detail
    assert len(provider.requests) == 1


# --------------------------------------------------------------------------------------------
# transport errors


def test_transport_error_becomes_transport_failure_with_the_cause_kept(harness: Harness) -> None:
    boom = httpx.ConnectError("connection refused")
    provider = Recorder(boom)
    with pytest.raises(TransportFailure) as caught:
        harness.client(provider).request("POST", "/messages")
    assert caught.value.__cause__ is boom
    assert caught.value.retry_after is None
    assert len(provider.requests) == 1


def test_timeout_becomes_transport_failure_saying_it_timed_out(harness: Harness) -> None:
    provider = Recorder(httpx.ReadTimeout("read timed out"))
    with pytest.raises(TransportFailure, match="timed out") as caught:
        harness.client(provider).request("POST", "/messages")
    assert isinstance(caught.value.__cause__, httpx.ReadTimeout)


def test_idempotent_transport_failure_is_retried(harness: Harness) -> None:
    provider = Recorder(httpx.ConnectError("reset"), answer(200))
    harness.client(provider).request("GET", "/x", idempotent=True)
    assert len(provider.requests) == 2
    assert len(harness.sleeps) == 1


def test_error_detail_never_shows_the_query_string(harness: Harness) -> None:
    provider = Recorder(httpx.ConnectError("refused"))
    with pytest.raises(TransportFailure) as caught:
        harness.client(provider).request("GET", "/1/boards", params={"key": "k-SECRET", "token": "t-SECRET"})
    assert "SECRET" not in caught.value.detail
    assert "/1/boards" in caught.value.detail


# --------------------------------------------------------------------------------------------
# outbound allowlist


def test_host_not_in_the_allowlist_is_refused_before_any_request(harness: Harness) -> None:
    provider = Recorder(answer(200))
    settings = HttpSettings(allowed_hosts=["api.example.com"])
    with pytest.raises(OutboundUrlNotAllowed) as caught:
        harness.client(provider, settings=settings).request("GET", "https://metadata.internal/latest")
    assert caught.value.host == "metadata.internal"
    assert "allowed_hosts" in caught.value.detail
    assert provider.requests == []


def test_empty_allowlist_allows_only_the_base_url_host(harness: Harness) -> None:
    provider = Recorder(answer(200))
    client = harness.client(provider)
    client.request("GET", "https://api.example.com/ok")
    with pytest.raises(OutboundUrlNotAllowed):
        client.request("GET", "https://other.example.com/no")
    assert len(provider.requests) == 1


def test_empty_allowlist_without_a_base_url_allows_nothing(harness: Harness) -> None:
    provider = Recorder(answer(200))
    with pytest.raises(OutboundUrlNotAllowed):
        harness.client(provider, base_url="").request("GET", "https://api.example.com/x")
    assert provider.requests == []


def test_wildcard_entry_allows_subdomains_but_not_the_bare_domain() -> None:
    allowed = ["*.myshopify.com"]
    assert host_is_allowed("art-supplies.myshopify.com", allowed)
    assert host_is_allowed("ART-SUPPLIES.myshopify.com.", allowed)
    assert not host_is_allowed("myshopify.com", allowed)
    assert not host_is_allowed("evilmyshopify.com", allowed)
    assert not host_is_allowed("", allowed)


def test_allowlist_entries_with_a_scheme_or_port_are_refused_in_settings() -> None:
    with pytest.raises(ValueError):
        HttpSettings(allowed_hosts=["https://api.twilio.com"])
    with pytest.raises(ValueError):
        HttpSettings(allowed_hosts=["api.twilio.com:443"])
    assert HttpSettings(allowed_hosts=[" API.Twilio.com. ", "::1"]).allowed_hosts == ["api.twilio.com", "::1"]


# --------------------------------------------------------------------------------------------
# pure helpers the dispatcher reuses


@given(
    attempt=st.integers(min_value=0, max_value=200),
    base=st.floats(min_value=0.01, max_value=5.0),
    cap=st.floats(min_value=0.01, max_value=120.0),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_full_jitter_delay_stays_between_zero_and_the_capped_exponential(
    attempt: int, base: float, cap: float, seed: int
) -> None:
    delay = full_jitter_delay(attempt, base, cap, random.Random(seed))
    assert 0.0 <= delay <= min(cap, base * 2 ** min(attempt, 64))


def test_full_jitter_delay_refuses_a_negative_attempt() -> None:
    with pytest.raises(ValueError):
        full_jitter_delay(-1, 0.5, 10.0, random.Random(1))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("Fri, 14 Mar 2025 09:27:53 GMT", 60.0),
        ("Fri, 14 Mar 2025 09:00:00 GMT", 0.0),  # already past: go now
        (None, None),
        ("", None),
        ("soon", None),
        ("-5", None),
    ],
)
def test_parse_retry_after_reads_both_forms(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_needs_an_aware_now() -> None:
    with pytest.raises(ValueError):
        parse_retry_after("5", datetime(2025, 1, 1))  # naive on purpose


# --------------------------------------------------------------------------------------------
# rate limiter


class FakeMonotonic:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_returns_a_positive_wait_once_the_bucket_is_empty_and_zero_after_time_passes() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter(rate=1.0, burst=2, clock=clock)
    key = "twilio:+15551234567"
    assert limiter.reserve(key) == 0.0
    assert limiter.reserve(key) == 0.0
    wait = limiter.reserve(key)
    assert wait == pytest.approx(1.0)
    assert limiter.reserve(key) == pytest.approx(1.0)  # asking again consumed nothing
    clock.now += wait
    assert limiter.reserve(key) == 0.0
    assert limiter.reserve(key) > 0.0


def test_rate_limiter_keys_have_separate_buckets() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter(rate=0.5, burst=1, clock=clock)
    assert limiter.reserve("twilio:+15551234567") == 0.0
    assert limiter.reserve("twilio:+15551234567") == pytest.approx(2.0)
    assert limiter.reserve("twilio:+15557654321") == 0.0


def test_rate_limiter_never_saves_more_than_the_burst() -> None:
    clock = FakeMonotonic()
    limiter = RateLimiter(rate=10.0, burst=3, clock=clock)
    limiter.reserve("slack:C123")
    clock.now += 3600
    assert [limiter.reserve("slack:C123") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.reserve("slack:C123") > 0.0


def test_rate_limiter_refuses_a_rate_that_is_not_positive() -> None:
    with pytest.raises(ValueError):
        RateLimiter(rate=0)


# --------------------------------------------------------------------------------------------
# error details staff will read


def test_not_configured_says_which_setting_and_environment_variable_to_set() -> None:
    error = NotConfigured("[twilio] auth_token", env_var="BACKORDER_TWILIO__AUTH_TOKEN", provider="twilio")
    assert "[twilio] auth_token" in error.detail
    assert "BACKORDER_TWILIO__AUTH_TOKEN" in error.detail
    assert isinstance(error, FatalError)
    assert isinstance(error, ConnectorError)
    assert str(error) == error.detail
