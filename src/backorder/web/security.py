"""Staff security for the dashboard: argon2 password hashes, server-side sessions in an
HttpOnly cookie (Secure behind TLS, SameSite=Lax), a CSRF token per session checked on every
POST, roles viewer < operator < admin, and login throttling per (user name, client address) pair
and per client address.

Throttling never locks a user name for everybody: that would let anyone who knows a staff user's
name keep them out. Failures count under the (name, address) pair (5 within 15 minutes lock that
name from that address: guessing one account's password) and under the address alone (20 lock
the address for every name: trying many accounts). The real user, from another address, can
still sign in. The address is ``request.client.host``: the peer, or what uvicorn took from
``X-Forwarded-For`` when the peer is a trusted proxy (uvicorn's default: loopback only, or
``FORWARDED_ALLOW_IPS``; see docs/dashboard.md). IPv6 addresses count by their /64 network, which one host usually holds whole.

API keys (``Authorization: Bearer bo_…``) are checked in ``web/api.py`` through
``StaffService.verify_api_key``."""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import HTTPException, Request, Response

from backorder.bootstrap import Application
from backorder.staff.service import CONTACT_ROLE, role_at_least

SESSION_COOKIE = "bo_session"
LOGIN_CSRF_COOKIE = "bo_login_csrf"
SESSION_LIFETIME = timedelta(hours=12)
THROTTLE_WINDOW = timedelta(minutes=15)
THROTTLE_LIMIT = 5
"""Failures within the window that lock one user name from one client address."""
THROTTLE_ADDRESS_LIMIT = 20
"""Failures within the window, whatever the user names, that lock a client address."""
THROTTLE_LOCK = timedelta(minutes=15)
_hasher = PasswordHasher()  # argon2id with the library's current defaults
_DUMMY_HASH = _hasher.hash("not a real password: equalises timing for unknown users")


def hash_password(password: str) -> str:
    if len(password) < 8:
        raise ValueError("passwords need at least 8 characters")
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(stored_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


@dataclass(frozen=True)
class StaffUser:
    id: int
    username: str
    role: str
    csrf_token: str
    token_hash: str

    @property
    def actor(self) -> str:
        return f"user:{self.username}"

    def can(self, role: str) -> bool:
        return role_at_least(self.role, role)

    @property
    def may_see_contact(self) -> bool:
        """Whether the order page shows the customer's name, email and phone to this user."""
        return self.can(CONTACT_ROLE)


class LoginRequired(Exception):
    """No valid session: the dashboard redirects to the login page."""


class Forbidden(Exception):
    """Signed in, but the role does not allow this."""

    def __init__(self, needed: str) -> None:
        super().__init__(needed)
        self.needed = needed


class CsrfFailed(Exception):
    """A POST without the session's CSRF token: nothing is changed."""


class LoginThrottled(Exception):
    def __init__(self, until: datetime) -> None:
        super().__init__(until.isoformat())
        self.until = until


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def is_tls(request: Request, application: Application) -> bool:
    return request.url.scheme == "https" or application.config.server.public_url.startswith("https://")


def set_cookie(
    response: Response, request: Request, application: Application, name: str, value: str, max_age: int
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        httponly=True,
        secure=is_tls(request, application),
        samesite="lax",
        path="/",
    )


def current_user(request: Request, application: Application) -> StaffUser | None:
    token = request.cookies.get(SESSION_COOKIE)
    if not token or application.staff is None:
        return None
    found = application.staff.store.session(_digest(token), application.clock.now())
    if found is None:
        return None
    return StaffUser(found.user_id, found.username, found.role, found.csrf_token, _digest(token))


def require(request: Request, application: Application, role: str = "viewer") -> StaffUser:
    user = current_user(request, application)
    if user is None:
        raise LoginRequired()
    if not user.can(role):
        raise Forbidden(role)
    return user


def check_csrf(user: StaffUser, presented: str | None) -> None:
    if not presented or not hmac.compare_digest(user.csrf_token, presented):
        raise CsrfFailed()


async def form_with_csrf(request: Request, user: StaffUser) -> dict[str, list[str]]:
    """Read a POSTed form and check its CSRF token (form field ``csrf_token`` or the
    ``X-CSRF-Token`` header htmx sends)."""
    form = await request.form()
    values: dict[str, list[str]] = {}
    for key, value in form.multi_items():
        if isinstance(value, str):
            values.setdefault(key, []).append(value)
    check_csrf(user, request.headers.get("x-csrf-token") or (values.get("csrf_token") or [None])[0])
    if any("\x00" in key or any("\x00" in v for v in vs) for key, vs in values.items()):
        # nothing staff type holds a NUL, and PostgreSQL text cannot: refused before any lookup
        raise HTTPException(400, "a NUL character is not allowed in a form")
    return values


def client_key(client: str) -> str:
    """The address failures count under: the IP address, or its /64 network for IPv6."""
    try:
        address = ipaddress.ip_address(client)
    except ValueError:  # not an IP address ("unknown", a unix socket): counted as given
        return client
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


def _pair_key(username: str, client: str) -> str:
    return f"pair:{client_key(client)}|{username.lower()}"[:200]


def throttle_limits(username: str, client: str) -> dict[str, int]:
    """The login_failures keys a failed sign-in counts under, with the failures that lock each:
    the (user name, address) pair and the address; never the user name alone."""
    return {_pair_key(username, client): THROTTLE_LIMIT, f"ip:{client_key(client)}"[:200]: THROTTLE_ADDRESS_LIMIT}


def login(application: Application, username: str, password: str, client: str) -> tuple[str, StaffUser] | None:
    """Check the password (throttled); on success open a session and return (cookie value, user).
    A disabled user is refused like a wrong password (the audit row says why)."""
    assert application.staff is not None
    store = application.staff.store
    now = application.clock.now()
    limits = throttle_limits(username, client)
    until = store.locked_until(list(limits), now)
    if until is not None:
        raise LoginThrottled(until)
    user = store.user(username)
    matches = verify_password(user.password_hash if user else _DUMMY_HASH, password)
    if not matches or user is None or not user.active:
        store.record_failure(limits, now, THROTTLE_WINDOW, THROTTLE_LOCK)
        detail = {"client": client, **({"reason": "disabled"} if matches and user and not user.active else {})}
        application.staff.audit(f"user:{username}"[:200], "login", "", detail, outcome="failed")
        return None
    # Only the pair's count: signing in to one account does not wipe the address's failures on others.
    store.clear_failures([_pair_key(username, client)])
    token = secrets.token_urlsafe(32)
    csrf = secrets.token_urlsafe(24)
    store.add_session(_digest(token), user.id, csrf, now, now + SESSION_LIFETIME)
    store.touch_login(user.id, now)
    application.staff.audit(f"user:{user.username}", "login", "", {"client": client})
    return token, StaffUser(user.id, user.username, user.role, csrf, _digest(token))


def logout(application: Application, user: StaffUser) -> None:
    assert application.staff is not None
    application.staff.store.drop_session(user.token_hash)
    application.staff.audit(user.actor, "logout")


def login_csrf_matches(request: Request, presented: str | None) -> bool:
    cookie = request.cookies.get(LOGIN_CSRF_COOKIE)
    return bool(cookie and presented and hmac.compare_digest(cookie, presented))


def derived_token(secret_key: str, purpose: str, value: str) -> str:
    """An HMAC of ``value`` for ``purpose`` (the self-service page's CSRF token)."""
    return hmac.new(secret_key.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()
