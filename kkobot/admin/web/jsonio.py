"""JSON in and out of twisted.web requests."""

from __future__ import annotations

import json
from typing import Any

from twisted.web.iweb import IRequest


def jsonBody(request: IRequest, status: int, payload: Any) -> bytes:
    """Set the status and headers for a JSON answer and return its body."""
    request.setResponseCode(status)
    request.setHeader(b"content-type", b"application/json; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    return json.dumps(payload, ensure_ascii=False).encode("utf-8")
