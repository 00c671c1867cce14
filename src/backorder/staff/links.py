"""Signed, expiring customer links (issue 5): ``{public_url}/self-service/{token}``.

The token is the order id signed with itsdangerous (HMAC-SHA1 over a timestamped payload, the
library's default) under the server's secret key, with its own salt so a session token can
never be replayed as a link or the other way round."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from itsdangerous import BadSignature, SignatureExpired, TimestampSigner, URLSafeTimedSerializer

SALT = "backorder.self-service.v1"


@dataclass(frozen=True)
class LinkCheck:
    order_id: str | None
    problem: str | None  # None | "expired" | "invalid"


class SignedLinks:
    def __init__(self, secret_key: str, public_url: str, now: Callable[[], datetime], max_age_days: int = 60) -> None:
        class ClockSigner(TimestampSigner):  # the app's clock, so tests can expire links
            def get_timestamp(self) -> int:
                return int(now().timestamp())

        self._serializer = URLSafeTimedSerializer(secret_key, salt=SALT, signer=ClockSigner)
        self.public_url = public_url.rstrip("/")
        self.max_age_seconds = max_age_days * 86400

    def token_for(self, order_id: str) -> str:
        return self._serializer.dumps({"o": order_id})

    def link_for(self, order_id: str) -> str:
        return f"{self.public_url}/self-service/{self.token_for(order_id)}"

    def check(self, token: str) -> LinkCheck:
        try:
            data = self._serializer.loads(token, max_age=self.max_age_seconds)
        except SignatureExpired:
            return LinkCheck(None, "expired")
        except BadSignature:
            return LinkCheck(None, "invalid")
        if not isinstance(data, dict) or not isinstance(data.get("o"), str):
            return LinkCheck(None, "invalid")
        return LinkCheck(data["o"], None)
