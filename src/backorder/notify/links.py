"""Signed customer links (one-click unsubscribe, preference changes) with itsdangerous."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

UNSUBSCRIBE_SALT = "backorder.unsubscribe"


class LinkSigner:
    def __init__(self, secret_key: str | Callable[[], str], public_url: str) -> None:
        self._secret = secret_key
        self._serializer: URLSafeSerializer | None = None
        self.public_url = public_url.rstrip("/")

    @property
    def _unsubscribe(self) -> URLSafeSerializer:
        # Built on first use: the key may have to be read from (or generated into) the database.
        if self._serializer is None:
            secret = self._secret if isinstance(self._secret, str) else self._secret()
            self._serializer = URLSafeSerializer(secret, salt=UNSUBSCRIBE_SALT)
        return self._serializer

    def unsubscribe_token(self, address: str, order_id: str) -> str:
        return str(self._unsubscribe.dumps({"a": address, "o": order_id}))

    def unsubscribe_url(self, address: str, order_id: str) -> str:
        return f"{self.public_url}/hooks/unsubscribe/{self.unsubscribe_token(address, order_id)}"

    def read_unsubscribe(self, token: str) -> dict[str, Any] | None:
        try:
            data = self._unsubscribe.loads(token)
        except BadSignature:
            return None
        return data if isinstance(data, dict) and "a" in data else None

    def headers(self, address: str, order_id: str) -> dict[str, str]:
        """RFC 8058 one-click unsubscribe headers."""
        return {
            "List-Unsubscribe": f"<{self.unsubscribe_url(address, order_id)}>",
            "List-Unsubscribe-Post": "List-Unsubscribe=One-Click",
        }
