"""Signed customer links (one-click unsubscribe, preference changes) with itsdangerous."""

from __future__ import annotations

from typing import Any

from itsdangerous import BadSignature, URLSafeSerializer

UNSUBSCRIBE_SALT = "backorder.unsubscribe"


class LinkSigner:
    def __init__(self, secret_key: str, public_url: str) -> None:
        self._unsubscribe = URLSafeSerializer(secret_key, salt=UNSUBSCRIBE_SALT)
        self.public_url = public_url.rstrip("/")

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
