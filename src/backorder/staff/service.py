"""Users, API keys and the audit log as plain services over :mod:`backorder.store.staff`."""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from typing import Any

from backorder.services.ports import Clock
from backorder.store.staff import ApiKeyRow, StaffQueries, StaffStore, UserRow

ROLES = ("viewer", "operator", "admin")
CONTACT_ROLE = "viewer"
"""The lowest role shown customers' contact details (name, email, phone) on the order page.
Every staff role may read orders, and staff answer customers' calls, so all of them may."""
SCOPES = ("read", "write")
_USERNAME = re.compile(r"^[A-Za-z0-9_.@-]{1,80}$")


class StaffError(ValueError):
    """Bad input to a staff service (unknown role, duplicate user, malformed key)."""


def role_at_least(role: str, needed: str) -> bool:
    return role in ROLES and ROLES.index(role) >= ROLES.index(needed)


@dataclass(frozen=True)
class ApiPrincipal:
    key_id: int
    prefix: str
    name: str
    scopes: frozenset[str]

    @property
    def actor(self) -> str:
        return f"apikey:{self.prefix}"


@dataclass(frozen=True)
class NewApiKey:
    prefix: str
    secret: str
    """The whole key, shown once: ``bo_<prefix>_<random>``. Only its SHA-256 is stored."""


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class StaffService:
    def __init__(self, store: StaffStore, queries: StaffQueries, clock: Clock) -> None:
        self.store = store
        self.queries = queries
        self.clock = clock

    # users (the password hash is made by the caller: web.security owns argon2)
    def add_user(self, username: str, password_hash: str, role: str) -> int:
        if role not in ROLES:
            raise StaffError(f"role must be one of {', '.join(ROLES)}")
        if not _USERNAME.match(username):
            raise StaffError("username: 1-80 letters, digits, and . _ @ -")
        if self.store.user(username) is not None:
            raise StaffError(f"user {username!r} exists")
        return self.store.add_user(username, password_hash, role, self.clock.now())

    def user(self, username: str) -> UserRow | None:
        return self.store.user(username)

    def users(self) -> list[dict[str, Any]]:
        """Every user: id, username, role, active, created_at, last_login_at (by name)."""
        return self.store.users()

    def update_user(self, username: str, *, password_hash: str | None = None, role: str | None = None) -> int:
        """Change an existing user's password and/or role (None keeps it). Either change signs
        the user out everywhere (their sessions are deleted); returns how many sessions ended."""
        if role is not None and role not in ROLES:
            raise StaffError(f"role must be one of {', '.join(ROLES)}")
        ended = self.store.set_user(username, password_hash=password_hash, role=role)
        if ended is None:
            raise StaffError(f"no user {username!r}")
        return ended

    def set_active(self, username: str, active: bool) -> int:
        """Enable or disable a user; disabling deletes their sessions at once. Returns how many
        sessions ended."""
        ended = self.store.set_active(username, active)
        if ended is None:
            raise StaffError(f"no user {username!r}")
        return ended

    # API keys
    def add_api_key(self, name: str, scopes: tuple[str, ...]) -> NewApiKey:
        bad = set(scopes) - set(SCOPES)
        if bad or not scopes:
            raise StaffError(f"scopes must be among {', '.join(SCOPES)}")
        if "write" in scopes and "read" not in scopes:
            scopes = ("read", *scopes)
        prefix = secrets.token_hex(4)
        key = f"bo_{prefix}_{secrets.token_urlsafe(32)}"
        self.store.add_api_key(prefix, _digest(key), name, " ".join(s for s in SCOPES if s in scopes), self.clock.now())
        return NewApiKey(prefix, key)

    def api_keys(self) -> list[ApiKeyRow]:
        return self.store.api_keys()

    def revoke_api_key(self, prefix: str) -> bool:
        return self.store.revoke_api_key(prefix, self.clock.now())

    def verify_api_key(self, presented: str) -> ApiPrincipal | None:
        parts = presented.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != "bo":
            return None
        row = self.store.api_key(parts[1])
        if row is None or row.revoked_at is not None:
            return None
        if not hmac.compare_digest(row.key_hash, _digest(presented.strip())):
            return None
        self.store.touch_api_key(row.id, self.clock.now())
        return ApiPrincipal(row.id, row.prefix, row.name, frozenset(row.scopes.split()))

    # audit
    def audit(
        self, actor: str, action: str, target: str = "", detail: dict[str, Any] | None = None, outcome: str = "ok"
    ) -> None:
        self.store.audit(self.clock.now(), actor, action, target, detail or {}, outcome)
