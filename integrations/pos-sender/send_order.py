#!/usr/bin/env python3
"""Send one canonical order from a POS or B2B portal to backorder. Python 3.9+ standard library only.

Two ways, matching what backorder accepts for a channel with ``platform = "pos"`` / ``"b2b"`` / ``"api"``:

  API key (``[channels.<id>] api_key``)::

      send_order.py --url https://backorder.example.com/api/v1/orders --api-key "$KEY" order.json

  Standard Webhooks signature (``[channels.<id>] webhook_secret``)::

      send_order.py --url https://backorder.example.com/webhooks/pos/<channel id> --secret "$WHSEC" order.json

order.json: {"order_id": "POS-1001", "placed_at": "2026-11-27T09:30:00Z",
             "lines": [{"sku": "WN-CAD-RED-5ML", "quantity": 2}],
             "customer": {"email": "ada@example.com", "name": "Ada Lovelace"}}
The order id doubles as the Idempotency-Key / webhook-id, so re-sending the same order is harmless.
Exit status: 0 accepted, 1 refused (the answer is printed), 2 network error.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import hmac
import json
import sys
import time
import urllib.error
import urllib.request


def sign(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def build_request(
    url: str, order: dict, *, api_key: str | None = None, secret: str | None = None, now: int | None = None
) -> urllib.request.Request:
    body = json.dumps(order, separators=(",", ":"), ensure_ascii=False).encode()
    headers = {"Content-Type": "application/json", "User-Agent": "backorder-pos-sender/1"}
    msg_id = f"order-{order['order_id']}"
    if api_key:
        headers["Authorization"] = f"Bearer {api_key}"
        headers["Idempotency-Key"] = msg_id
    elif secret:
        timestamp = int(time.time()) if now is None else now
        headers.update(
            {
                "webhook-id": msg_id,
                "webhook-timestamp": str(timestamp),
                "webhook-signature": sign(secret, msg_id, timestamp, body),
            }
        )
    else:
        raise ValueError("give an API key or a webhook secret")
    return urllib.request.Request(url, data=body, headers=headers, method="POST")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    auth = parser.add_mutually_exclusive_group(required=True)
    auth.add_argument("--api-key")
    auth.add_argument("--secret")
    parser.add_argument("--timeout", type=float, default=10.0)
    parser.add_argument("order", help="JSON file with the order ('-' for stdin)")
    args = parser.parse_args(argv)
    with sys.stdin if args.order == "-" else open(args.order, encoding="utf-8") as handle:
        order = json.load(handle)
    request = build_request(args.url, order, api_key=args.api_key, secret=args.secret)
    try:
        with urllib.request.urlopen(request, timeout=args.timeout) as answer:
            print(answer.status, answer.read().decode(errors="replace"))
            return 0
    except urllib.error.HTTPError as exc:
        print(exc.code, exc.read().decode(errors="replace"), file=sys.stderr)
        return 1
    except (urllib.error.URLError, TimeoutError) as exc:
        print(f"network error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
