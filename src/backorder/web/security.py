"""Staff security for the dashboard: argon2 password hashes, server-side sessions in an
HttpOnly cookie (Secure behind TLS, SameSite=Lax), a CSRF token per session checked on every
POST, roles viewer < operator < admin, and login throttling per user name and per client address.

API keys (``Authorization: Bearer bo_…``) are checked in ``web/api.py`` through
``StaffService.verify_api_key``."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from fastapi import Request, Response

from backorder.bootstrap import Application
from backorder.staff.service import role_at_least

SESSION_COOKIE = "bo_session"
LOGIN_CSRF_COOKIE = "bo_login_csrf"
SESSION_LIFETIME = timedelta(hours=12)
THROTTLE_WINDOW = timedelta(minutes=15)
THROTTLE_LIMIT = 5
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
    return values


def _throttle_keys(username: str, client: str) -> list[str]:
    return [f"user:{username.lower()}"[:200], f"ip:{client}"[:200]]


def login(application: Application, username: str, password: str, client: str) -> tuple[str, StaffUser] | None:
    """Check the password (throttled); on success open a session and return (cookie value, user)."""
    assert application.staff is not None
    store = application.staff.store
    now = application.clock.now()
    keys = _throttle_keys(username, client)
    until = store.locked_until(keys, now)
    if until is not None:
        raise LoginThrottled(until)
    user = store.user(username)
    ok = verify_password(user.password_hash if user else _DUMMY_HASH, password) and user is not None and user.active
    if not ok or user is None:
        store.record_failure(keys, now, THROTTLE_WINDOW, THROTTLE_LIMIT, THROTTLE_LOCK)
        application.staff.audit(f"user:{username}"[:200], "login", "", {"client": client}, outcome="failed")
        return None
    store.clear_failures(keys)
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
