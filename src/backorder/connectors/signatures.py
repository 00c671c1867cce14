"""Webhook signature checks, one function per scheme, constant-time, raising or returning None.

Each ``verify_*`` returns ``None`` when the request is authentic and otherwise raises
:class:`~backorder.connectors.errors.InvalidSignature` (header missing, malformed or wrong) or
:class:`~backorder.connectors.errors.StaleTimestamp` (a signed timestamp outside the replay window).
Both answer 401 at the ingress. A secret or key that is itself unusable (empty list, not base64,
not a PEM key) is a configuration error and raises :class:`ValueError` instead, so it surfaces as
a server error rather than as "someone sent a bad signature".

Always pass the RAW body bytes exactly as received: re-serialising parsed JSON changes whitespace
and key order and breaks every body-covering scheme. Digests are compared with
:func:`hmac.compare_digest`. HMAC schemes accept a list of secrets so a secret can be rotated
without downtime: a signature made with any of them is accepted.

Schemes (header names as sent; the ingress looks them up case-insensitively)::

    verify_shopify           X-Shopify-Hmac-Sha256          base64 HMAC-SHA256(body)
    verify_woocommerce       X-WC-Webhook-Signature         base64 HMAC-SHA256(body)
    verify_quickbooks        intuit-signature               base64 HMAC-SHA256(body), verifier token
    verify_standard_webhook  webhook-id, -timestamp,        base64 HMAC-SHA256(id.ts.body),
                             -signature                     a space-separated "v1,<sig>" list
    verify_twilio            X-Twilio-Signature             base64 HMAC-SHA1(url + sorted params)
    verify_mailgun           (fields in the body)           hex HMAC-SHA256(timestamp + token)
    verify_sendgrid_event    X-Twilio-Email-Event-Webhook-  ECDSA P-256 SHA-256(timestamp + body)
                             Signature / -Timestamp
    verify_slack             X-Slack-Signature,             "v0=" hex HMAC-SHA256("v0:ts:body")
                             X-Slack-Request-Timestamp
    verify_adobe_commerce    x-adobe-commerce-webhook-      RSA PKCS#1 v1.5 SHA-256(base64(body))
                             signature
    verify_zendesk           X-Zendesk-Webhook-Signature,   base64 HMAC-SHA256(timestamp + body)
                             X-Zendesk-Webhook-Signature-Timestamp
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TypeAlias
from urllib.parse import parse_qs, urlsplit, urlunsplit

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from backorder.connectors.errors import InvalidSignature, StaleTimestamp

__all__ = [
    "ADOBE_COMMERCE_SIGNATURE_HEADER",
    "DEFAULT_TOLERANCE_SECONDS",
    "QUICKBOOKS_SIGNATURE_HEADER",
    "SENDGRID_SIGNATURE_HEADER",
    "SENDGRID_TIMESTAMP_HEADER",
    "SHOPIFY_SIGNATURE_HEADER",
    "SLACK_SIGNATURE_HEADER",
    "SLACK_TIMESTAMP_HEADER",
    "STANDARD_WEBHOOK_ID_HEADER",
    "STANDARD_WEBHOOK_SIGNATURE_HEADER",
    "STANDARD_WEBHOOK_TIMESTAMP_HEADER",
    "TWILIO_SIGNATURE_HEADER",
    "WOOCOMMERCE_SIGNATURE_HEADER",
    "ZENDESK_SIGNATURE_HEADER",
    "ZENDESK_TIMESTAMP_HEADER",
    "Secrets",
    "sign_standard_webhook",
    "verify_adobe_commerce",
    "verify_mailgun",
    "verify_quickbooks",
    "verify_sendgrid_event",
    "verify_shopify",
    "verify_slack",
    "verify_standard_webhook",
    "verify_twilio",
    "verify_woocommerce",
    "verify_zendesk",
]

#: One secret, or several during a rotation (any of them may have signed the request).
Secrets: TypeAlias = str | Sequence[str]

DEFAULT_TOLERANCE_SECONDS = 300

SHOPIFY_SIGNATURE_HEADER = "X-Shopify-Hmac-Sha256"
WOOCOMMERCE_SIGNATURE_HEADER = "X-WC-Webhook-Signature"
QUICKBOOKS_SIGNATURE_HEADER = "intuit-signature"
STANDARD_WEBHOOK_ID_HEADER = "webhook-id"
STANDARD_WEBHOOK_TIMESTAMP_HEADER = "webhook-timestamp"
STANDARD_WEBHOOK_SIGNATURE_HEADER = "webhook-signature"
TWILIO_SIGNATURE_HEADER = "X-Twilio-Signature"
SENDGRID_SIGNATURE_HEADER = "X-Twilio-Email-Event-Webhook-Signature"
SENDGRID_TIMESTAMP_HEADER = "X-Twilio-Email-Event-Webhook-Timestamp"
SLACK_SIGNATURE_HEADER = "X-Slack-Signature"
SLACK_TIMESTAMP_HEADER = "X-Slack-Request-Timestamp"
ADOBE_COMMERCE_SIGNATURE_HEADER = "x-adobe-commerce-webhook-signature"
ZENDESK_SIGNATURE_HEADER = "X-Zendesk-Webhook-Signature"
ZENDESK_TIMESTAMP_HEADER = "X-Zendesk-Webhook-Signature-Timestamp"

_STANDARD_SECRET_PREFIX = "whsec_"
_UNIX_SECONDS = re.compile(r"\d{1,12}")
_HOST_PORT = re.compile(r"^(\[[^\]]*\]|[^:]*)(?::(\d*))?$")

# --------------------------------------------------------------------------------------------
# helpers


def _secret_list(secret: Secrets, what: str = "webhook secret") -> list[str]:
    secrets = [secret] if isinstance(secret, str) else list(secret)
    if not secrets:
        raise ValueError(f"no {what} configured")
    return secrets


def _required(value: str | None, header: str, kind: str = "header") -> str:
    if value is None or not value.strip():
        raise InvalidSignature(f"missing {header} {kind}")
    return value.strip()


def _hmac(key: bytes, message: bytes, digest: str) -> bytes:
    return hmac.new(key, message, digest).digest()


def _any_equal(candidates: Iterable[bytes], given: bytes) -> bool:
    # Compare against every candidate (no early exit) so timing does not tell which one matched.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(candidate, given)
    return matched


def _unix_seconds(value: str, header: str) -> int:
    value = value.strip()
    if not _UNIX_SECONDS.fullmatch(value):
        raise InvalidSignature(f"malformed {header}: expected Unix seconds")
    return int(value)


def _check_fresh(timestamp: int, now: int, tolerance: int, what: str) -> None:
    skew = now - timestamp
    if abs(skew) > tolerance:
        direction = "old" if skew > 0 else "in the future"
        raise StaleTimestamp(f"{what} timestamp is {abs(skew)}s {direction}; the limit is {tolerance}s")


def _verify_base64_hmac_sha256(body: bytes, header_value: str | None, secret: Secrets, header: str) -> None:
    given = _required(header_value, header).encode()
    expected = (base64.b64encode(_hmac(key.encode(), body, "sha256")) for key in _secret_list(secret))
    if not _any_equal(expected, given):
        raise InvalidSignature(f"{header} does not match the body")


# --------------------------------------------------------------------------------------------
# body HMAC schemes


def verify_shopify(body: bytes, header_value: str | None, secret: Secrets) -> None:
    """Shopify: ``X-Shopify-Hmac-Sha256`` = base64(HMAC-SHA256(app client secret, raw body))."""
    _verify_base64_hmac_sha256(body, header_value, secret, SHOPIFY_SIGNATURE_HEADER)


def verify_woocommerce(body: bytes, header_value: str | None, secret: Secrets) -> None:
    """WooCommerce: ``X-WC-Webhook-Signature`` = base64(HMAC-SHA256(webhook secret, raw body)).

    The key is the secret as WooCommerce stores it after ``wp_specialchars_decode`` (what the
    admin typed, with HTML entities decoded).
    """
    _verify_base64_hmac_sha256(body, header_value, secret, WOOCOMMERCE_SIGNATURE_HEADER)


def verify_quickbooks(body: bytes, header_value: str | None, verifier_token: Secrets) -> None:
    """QuickBooks Online (Intuit): ``intuit-signature`` = base64(HMAC-SHA256(verifier token, body))."""
    _verify_base64_hmac_sha256(body, header_value, verifier_token, QUICKBOOKS_SIGNATURE_HEADER)


# --------------------------------------------------------------------------------------------
# Standard Webhooks (https://www.standardwebhooks.com/)


def _standard_key(secret: str) -> bytes:
    raw = secret.removeprefix(_STANDARD_SECRET_PREFIX)
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("Standard Webhooks secret must be base64, optionally prefixed 'whsec_'") from exc


def _standard_signed_content(msg_id: str, timestamp: int | str, body: bytes) -> bytes:
    return f"{msg_id}.{timestamp}.".encode() + body


def sign_standard_webhook(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The ``webhook-signature`` value (``"v1,<base64>"``) for a message; used for our own webhooks
    and for tests."""
    digest = _hmac(_standard_key(secret), _standard_signed_content(msg_id, timestamp, body), "sha256")
    return "v1," + base64.b64encode(digest).decode()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    lowered = name.lower()
    for key, candidate in headers.items():
        if key.lower() == lowered:
            return candidate
    return None


def verify_standard_webhook(
    body: bytes,
    headers: Mapping[str, str],
    secret: Secrets,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Standard Webhooks v1: HMAC-SHA256 over ``id.timestamp.body`` with the base64 secret.

    ``webhook-signature`` may hold several space-separated ``v1,<sig>`` entries (the sender's own
    key rotation); ``secret`` may be several secrets (ours). Any match is accepted. Entries with
    another version tag are ignored.
    """
    msg_id = _required(_header(headers, STANDARD_WEBHOOK_ID_HEADER), STANDARD_WEBHOOK_ID_HEADER)
    raw_timestamp = _required(_header(headers, STANDARD_WEBHOOK_TIMESTAMP_HEADER), STANDARD_WEBHOOK_TIMESTAMP_HEADER)
    signature_header = _required(_header(headers, STANDARD_WEBHOOK_SIGNATURE_HEADER), STANDARD_WEBHOOK_SIGNATURE_HEADER)
    timestamp = _unix_seconds(raw_timestamp, STANDARD_WEBHOOK_TIMESTAMP_HEADER)
    _check_fresh(timestamp, now, tolerance, STANDARD_WEBHOOK_TIMESTAMP_HEADER)

    given: list[bytes] = []
    for entry in signature_header.split():
        version, _, encoded = entry.partition(",")
        if version != "v1":
            continue
        try:
            given.append(base64.b64decode(encoded, validate=True))
        except (binascii.Error, ValueError):
            continue
    if not given:
        raise InvalidSignature(f"{STANDARD_WEBHOOK_SIGNATURE_HEADER} has no v1 signature")

    content = _standard_signed_content(msg_id, raw_timestamp.strip(), body)
    expected = [_hmac(_standard_key(s), content, "sha256") for s in _secret_list(secret)]
    matched = False
    for signature in given:
        matched |= _any_equal(expected, signature)
    if not matched:
        raise InvalidSignature(f"{STANDARD_WEBHOOK_SIGNATURE_HEADER} does not match the message")


# --------------------------------------------------------------------------------------------
# Twilio


def _split_host_port(hostport: str) -> tuple[str, str | None]:
    match = _HOST_PORT.match(hostport)
    if match is None:  # pragma: no cover - the pattern matches any string without a bad bracket
        return hostport, None
    return match.group(1), match.group(2)


def _with_netloc(url: str, transform: Callable[[str, str | None, str], str]) -> str:
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, port = _split_host_port(hostport)
    new_hostport = transform(host, port, parts.scheme)
    return urlunsplit(parts._replace(netloc=f"{userinfo}{at}{new_hostport}"))


def _twilio_url_without_port(url: str) -> str:
    return _with_netloc(url, lambda host, port, scheme: host)


def _twilio_url_with_port(url: str) -> str:
    def add(host: str, port: str | None, scheme: str) -> str:
        if port:
            return f"{host}:{port}"
        return f"{host}:{443 if scheme == 'https' else 80}"

    return _with_netloc(url, add)


def _twilio_payload(url: str, params: Mapping[str, str | Sequence[str]]) -> bytes:
    pieces = [url]
    for name in sorted(params):
        value = params[name]
        values = [value] if isinstance(value, str) else list(value)
        pieces.extend(name + v for v in sorted(set(values)))
    return "".join(pieces).encode()


def verify_twilio(
    url: str,
    params: Mapping[str, str | Sequence[str]],
    header_value: str | None,
    auth_token: Secrets,
    *,
    body: bytes | None = None,
) -> None:
    """Twilio: ``X-Twilio-Signature`` = base64(HMAC-SHA1(auth token, URL + sorted params)).

    ``url`` is the full URL Twilio requested (scheme, host, path and query as Twilio saw them,
    i.e. the public URL behind any proxy). Form params are appended sorted by name, each value of
    a repeated name sorted with exact duplicates dropped. As the official SDK does, the URL is
    tried both with its port removed and with the scheme's default port added, because Twilio is
    inconsistent about which it signs.

    JSON bodies: Twilio adds ``bodySHA256=<hex sha256 of the body>`` to the query and signs the
    URL alone. Pass the raw ``body``; its hash must match and ``params`` are then ignored.
    """
    given = _required(header_value, TWILIO_SIGNATURE_HEADER).encode()
    query = parse_qs(urlsplit(url).query)
    if "bodySHA256" in query:
        if body is None:
            raise InvalidSignature("URL carries bodySHA256 but no body was given to check it against")
        expected_hash = hashlib.sha256(body).hexdigest().encode()
        if not hmac.compare_digest(expected_hash, query["bodySHA256"][0].strip().lower().encode()):
            raise InvalidSignature("bodySHA256 does not match the body")
        params = {}

    candidates = {_twilio_url_without_port(url), _twilio_url_with_port(url)}
    expected = [
        base64.b64encode(_hmac(token.encode(), _twilio_payload(candidate, params), "sha1"))
        for token in _secret_list(auth_token, "Twilio auth token")
        for candidate in sorted(candidates)
    ]
    if not _any_equal(expected, given):
        raise InvalidSignature(f"{TWILIO_SIGNATURE_HEADER} does not match the URL and parameters")


# --------------------------------------------------------------------------------------------
# Mailgun


def verify_mailgun(
    timestamp: str,
    token: str,
    signature: str | None,
    signing_key: Secrets,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Mailgun: ``signature`` = hex(HMAC-SHA256(webhook signing key, timestamp + token)).

    The three fields come from the body's ``signature`` object. The body itself is not covered,
    so the freshness check (and de-duplicating on ``token``) is what stops replays.
    """
    given = _required(signature, "Mailgun signature", "field").lower().encode()
    _check_fresh(_unix_seconds(timestamp, "Mailgun timestamp"), now, tolerance, "Mailgun")
    message = (timestamp.strip() + token).encode()
    expected = (
        _hmac(key.encode(), message, "sha256").hex().encode()
        for key in _secret_list(signing_key, "Mailgun webhook signing key")
    )
    if not _any_equal(expected, given):
        raise InvalidSignature("Mailgun signature does not match timestamp and token")


# --------------------------------------------------------------------------------------------
# Slack


def verify_slack(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    signing_secret: Secrets,
    now: int,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Slack v0: ``X-Slack-Signature`` = "v0=" + hex(HMAC-SHA256(secret, "v0:" + ts + ":" + body))."""
    given = _required(signature, SLACK_SIGNATURE_HEADER).encode()
    raw_timestamp = _required(timestamp, SLACK_TIMESTAMP_HEADER)
    _check_fresh(_unix_seconds(raw_timestamp, SLACK_TIMESTAMP_HEADER), now, tolerance, "Slack request")
    message = b"v0:" + raw_timestamp.encode() + b":" + body
    expected = (
        b"v0=" + _hmac(key.encode(), message, "sha256").hex().encode()
        for key in _secret_list(signing_secret, "Slack signing secret")
    )
    if not _any_equal(expected, given):
        raise InvalidSignature(f"{SLACK_SIGNATURE_HEADER} does not match the body")


# --------------------------------------------------------------------------------------------
# Zendesk


def verify_zendesk(
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    secret: Secrets,
    *,
    now: int | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Zendesk: ``X-Zendesk-Webhook-Signature`` = base64(HMAC-SHA256(secret, TIMESTAMP + BODY)).

    This is the formula of the current docs (developer.zendesk.com/documentation/webhooks/
    verifying/); an older page printed BODY + TIMESTAMP and its example only fits that order. The
    key is the signing secret's UTF-8 text, not its base64 decoding. ``timestamp`` is the ISO 8601
    ``X-Zendesk-Webhook-Signature-Timestamp``; give ``now`` (Unix seconds) to also reject replays.
    """
    given = _required(signature, ZENDESK_SIGNATURE_HEADER).encode()
    raw_timestamp = _required(timestamp, ZENDESK_TIMESTAMP_HEADER)
    if now is not None:
        try:
            when = datetime.fromisoformat(raw_timestamp)
        except ValueError as exc:
            raise InvalidSignature(f"malformed {ZENDESK_TIMESTAMP_HEADER}: expected ISO 8601") from exc
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        _check_fresh(int(when.timestamp()), now, tolerance, "Zendesk webhook")
    message = raw_timestamp.encode() + body
    expected = (
        base64.b64encode(_hmac(key.encode(), message, "sha256"))
        for key in _secret_list(secret, "Zendesk webhook signing secret")
    )
    if not _any_equal(expected, given):
        raise InvalidSignature(f"{ZENDESK_SIGNATURE_HEADER} does not match timestamp and body")


# --------------------------------------------------------------------------------------------
# public-key schemes


def _decode_base64_signature(value: str, header: str) -> bytes:
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise InvalidSignature(f"malformed {header}: not base64") from exc


def _sendgrid_key(public_key_b64: str) -> ec.EllipticCurvePublicKey:
    try:
        key = serialization.load_der_public_key(base64.b64decode(public_key_b64.strip(), validate=True))
    except (binascii.Error, ValueError) as exc:
        raise ValueError("SendGrid verification key must be the base64 public key SendGrid shows") from exc
    if not isinstance(key, ec.EllipticCurvePublicKey):
        raise ValueError("SendGrid verification key is not an elliptic-curve public key")
    return key


def verify_sendgrid_event(
    public_key_b64: str | Sequence[str],
    body: bytes,
    signature_b64: str | None,
    timestamp: str | None,
    *,
    now: int | None = None,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """SendGrid Event Webhook: ECDSA (P-256, SHA-256) over ``timestamp + body``.

    ``public_key_b64`` is the verification key from SendGrid's settings (base64 DER
    SubjectPublicKeyInfo). ``signature_b64`` and ``timestamp`` are the
    ``X-Twilio-Email-Event-Webhook-Signature`` / ``-Timestamp`` headers. Give ``now`` (Unix
    seconds) to also reject old deliveries; SendGrid retries for up to 72 hours, so choose the
    ``tolerance`` with that in mind.
    """
    signature = _decode_base64_signature(_required(signature_b64, SENDGRID_SIGNATURE_HEADER), SENDGRID_SIGNATURE_HEADER)
    raw_timestamp = _required(timestamp, SENDGRID_TIMESTAMP_HEADER)
    if now is not None:
        _check_fresh(_unix_seconds(raw_timestamp, SENDGRID_TIMESTAMP_HEADER), now, tolerance, "SendGrid event")
    message = raw_timestamp.encode() + body
    keys = [_sendgrid_key(k) for k in _secret_list(public_key_b64, "SendGrid verification key")]
    for key in keys:
        try:
            key.verify(signature, message, ec.ECDSA(hashes.SHA256()))
        except (_CryptoInvalidSignature, ValueError):
            continue
        return
    raise InvalidSignature(f"{SENDGRID_SIGNATURE_HEADER} does not match timestamp and body")


def _adobe_key(public_key_pem: str | bytes) -> rsa.RSAPublicKey:
    data = public_key_pem.encode() if isinstance(public_key_pem, str) else public_key_pem
    try:
        key = serialization.load_pem_public_key(data.strip())
    except ValueError as exc:
        raise ValueError("Adobe Commerce webhook public key must be the PEM key shown in the admin") from exc
    if not isinstance(key, rsa.RSAPublicKey):
        raise ValueError("Adobe Commerce webhook public key is not an RSA key")
    return key


def verify_adobe_commerce(
    body: bytes,
    signature_b64: str | None,
    public_key_pem: str | bytes | Sequence[str | bytes],
) -> None:
    """Adobe Commerce webhooks: ``x-adobe-commerce-webhook-signature`` = base64 RSA-SHA256 signature.

    Per Adobe's docs (developer.adobe.com/commerce/extensibility/webhooks/signature-verification)
    Commerce signs the BASE64 ENCODING of the request body with its private key (PKCS#1 v1.5,
    SHA-256; Node's ``crypto.createVerify('SHA256')``), and we verify with the public key from
    Stores > Configuration > Adobe Services > Webhooks. ``body`` is the raw body; it is
    base64-encoded here.
    """
    signature = _decode_base64_signature(
        _required(signature_b64, ADOBE_COMMERCE_SIGNATURE_HEADER), ADOBE_COMMERCE_SIGNATURE_HEADER
    )
    pems: list[str | bytes] = [public_key_pem] if isinstance(public_key_pem, str | bytes) else list(public_key_pem)
    if not pems:
        raise ValueError("no Adobe Commerce webhook public key configured")
    message = base64.b64encode(body)
    for key in [_adobe_key(pem) for pem in pems]:
        try:
            key.verify(signature, message, padding.PKCS1v15(), hashes.SHA256())
        except (_CryptoInvalidSignature, ValueError):
            continue
        return
    raise InvalidSignature(f"{ADOBE_COMMERCE_SIGNATURE_HEADER} does not match the body")
