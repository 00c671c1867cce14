"""Check an outbound ``httpx.Request`` against a vendor's published OpenAPI document (3.0 or
3.1) with openapi-core. Specs load once per test session (they are large) and the request is
presented as if sent to the spec's first server, so a test base URL does not matter."""

from __future__ import annotations

import functools
import json
from typing import Any

import httpx
import yaml
from openapi_core import OpenAPI
from openapi_core.datatypes import RequestParameters
from werkzeug.datastructures import Headers, ImmutableMultiDict

from tests.vendor import VENDOR_DIR

VENDOR = VENDOR_DIR


@functools.cache
def spec(relative: str) -> OpenAPI:
    path = VENDOR / relative
    text = path.read_text(encoding="utf-8")
    data: dict[str, Any] = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    return OpenAPI.from_dict(data)


class _Request:
    def __init__(self, request: httpx.Request, host_url: str) -> None:
        self.host_url = host_url
        self.path = request.url.path
        self.full_url_pattern = host_url + self.path
        self.method = request.method.lower()
        self.parameters = RequestParameters(
            query=ImmutableMultiDict(list(request.url.params.multi_items())),
            header=Headers([(k, v) for k, v in request.headers.items()]),
            cookie=ImmutableMultiDict(),
        )
        self.content_type = request.headers.get("content-type", "")
        self.body = request.content


def validate(relative: str, request: httpx.Request, server: str) -> None:
    """Raise AssertionError naming the spec when ``request`` does not match it."""
    try:
        spec(relative).validate_request(_Request(request, server))
    except Exception as exc:  # openapi-core raises a family of errors; show the cause chain
        causes = []
        current: BaseException | None = exc
        while current is not None:
            causes.append(f"{type(current).__name__}: {current}")
            extra = getattr(current, "schema_errors", None)
            if extra:
                causes.extend(str(e)[:300] for e in extra)
            current = current.__cause__ or current.__context__
        raise AssertionError(f"request does not match {relative}:\n  " + "\n  ".join(causes)) from exc
