"""What the plugin store keeps: scopes and key limits, addresses, JSON values, and the storage interface."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from zope.interface import Interface

SCOPES = ("room", "user", "global")
MAX_KEY_CHARS = 191
MAX_VALUE_BYTES = 64 * 1024
# 18 digits: every such integer fits a signed 64-bit column and a JavaScript-safe reader.
INTEGER = re.compile(r"-?[0-9]{1,18}")


class StoreError(ValueError):
    """A store call that cannot be done (bad key, value or scope; incr of a non-integer)."""


@dataclass(frozen=True)
class Address:
    """Where one value lives: plugin, scope, room and user (empty where the scope has none)."""

    plugin: str
    scope: str
    roomId: str
    userId: str
    key: str

    def row(self) -> tuple[str, str, str, str, str]:
        return (self.plugin, self.scope, self.roomId, self.userId, self.key)


@dataclass(frozen=True)
class StoredItem:
    """One stored value, as `kkobot-admin store list` shows it."""

    plugin: str
    scope: str
    roomId: str
    userId: str
    key: str
    value: Any
    expiresAt: float | None
    updatedAt: str


class IPluginStorage(Interface):
    """
    Where plugins' values are kept. Every method returns a Deferred and never blocks.

    Times are epoch seconds from the caller's clock; values are JSON-able.
    """

    def get(address, now):
        """The value, or L{MISSING} when absent or expired."""

    def set(address, value, expiresAt, now):
        """Store C{value}; C{expiresAt} None keeps it until deleted."""

    def delete(address):
        """Remove it; fires with True when something was removed."""

    def incr(address, by, now):
        """Add C{by} atomically (absent counts as 0); fires with the new integer."""

    def everyUser(plugin, roomId, key, now):
        """C{{userId: value}} of one user-scope key for every user of a room."""

    def items(plugin, scope, roomId, userId, key, now, limit):
        """Stored values matching the filters (None matches all), as L{StoredItem}s."""

    def clear(plugin, scope, roomId, userId, key):
        """Delete matching values; fires with the number removed."""

    def purgeExpired(now):
        """Delete expired values; fires with the number removed."""


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


def encode(value: Any) -> str:
    """The JSON text stored for C{value}; L{StoreError} when it is not JSON or too large."""
    try:
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError) as e:
        raise StoreError(f"a stored value must be JSON (str, int, float, bool, None, list, dict): {e}")
    if len(text.encode("utf-8")) > MAX_VALUE_BYTES:
        raise StoreError(f"a stored value must be at most {MAX_VALUE_BYTES} bytes as JSON")
    return text


def decode(text: str) -> Any:
    return json.loads(text)


def millis(seconds: float | None) -> int | None:
    return None if seconds is None else int(round(seconds * 1000))


def timeText(now: float) -> str:
    """C{updated_at} as the table stores it: local time, to the second."""
    return datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M:%S")
