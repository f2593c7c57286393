"""What in the config is a secret, and the copy of it that is safe to show (secrets masked)."""

from __future__ import annotations

import copy
import re
from typing import Any

__all__ = ["MASK", "is_secret_key", "masked"]

MASK = "********"

# Generous on purpose: a key that only looks like a secret is masked too.
_SECRET_WORDS = ("password", "passwd", "secret", "token", "salt", "api_key", "apikey",
                 "private_key", "credential")

# A password inside a URL (cluster.redis = redis://:password@host/0).
_URL_PASSWORD = re.compile(r"^([a-z][a-z0-9+.-]*://[^:/@]*:)[^@/]+@", re.IGNORECASE)


def is_secret_key(name: str) -> bool:
    """Whether a key's last segment names a secret (password, secret, salt, token...)."""
    lower = name.lower()
    return any(word in lower for word in _SECRET_WORDS)


def masked(data: Any) -> Any:
    """A deep copy with every secret value replaced by MASK (empty ones stay visible)."""
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for k, v in data.items():
            if isinstance(k, str) and is_secret_key(k) and v not in ("", None):
                out[k] = MASK
            else:
                out[k] = masked(v)
        return out
    if isinstance(data, list):
        return [masked(v) for v in data]
    if isinstance(data, str) and "://" in data:
        return _URL_PASSWORD.sub(lambda m: m.group(1) + MASK + "@", data)
    return copy.deepcopy(data)
