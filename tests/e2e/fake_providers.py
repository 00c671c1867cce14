"""A fake SendGrid + Twilio + Slack on loopback: records every request with the message id it
carries, answers like the provider (with a share of retryable 503s), thread-safe."""

from __future__ import annotations

import json
import random
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit


class FakeProviders:
    def __init__(self, failure_rate: float = 0.05, seed: int = 11) -> None:
        self.received: list[tuple[str, str]] = []  # (path, message id) of accepted requests
        self.bodies: list[bytes] = []
        self.failures = 0
        self._rng = random.Random(seed)
        self._failure_rate = failure_rate
        self._cond = threading.Condition()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # keep the test output quiet
                return None

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                status, answer, headers = fake.answer(self.path, self.headers.get("Content-Type", ""), body)
                self.send_response(status)
                for k, v in headers.items():
                    self.send_header(k, v)
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeProviders:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, content_type: str, body: bytes) -> tuple[int, bytes, dict[str, str]]:
        with self._cond:
            if self._rng.random() < self._failure_rate:
                self.failures += 1
                return 503, b"try later", {}
        message_id = _message_id(path, content_type, body)
        with self._cond:
            self.received.append((urlsplit(path).path, message_id))
            self.bodies.append(body)
            self._cond.notify_all()
            n = len(self.received)
        if path.startswith("/v3/mail/send"):
            return 202, b"", {"X-Message-Id": f"sg-{n}"}
        if "/Messages.json" in path:
            return (
                201,
                json.dumps({"sid": f"SM{n:032d}", "status": "queued"}).encode(),
                {"Content-Type": "application/json"},
            )
        return 200, b"ok", {"Content-Type": "text/plain"}

    def wait_for(self, count: int, timeout: float) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.received) >= count, timeout)

    def counts(self) -> Counter[str]:
        with self._cond:
            return Counter(mid for _, mid in self.received)


def _message_id(path: str, content_type: str, body: bytes) -> str:
    if path.startswith("/v3/mail/send"):
        return str(json.loads(body)["personalizations"][0]["custom_args"]["bo_message_id"])
    if "/Messages.json" in path:
        form = parse_qs(body.decode())
        callback = form.get("StatusCallback", [""])[0]
        return parse_qs(urlsplit(callback).query).get("bo", ["?"])[0]
    text = body.decode(errors="replace")
    start = text.find("bo-")
    return text[start : start + 12].split(" ")[0].split('"')[0] if start >= 0 else "?"
