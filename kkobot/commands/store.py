"""Plugin storage as plugins see it (C{context.store}): one plugin's values per room / user / everywhere."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

# The storage backends and value types, importable from here as they always were.
from kkobot.commands.memorystore import MemoryStorage
from kkobot.commands.sqlstore import SqlStorage
from kkobot.commands.storevalues import (
    MAX_KEY_CHARS,
    MAX_VALUE_BYTES,
    MISSING,
    SCOPES,
    Address,
    IPluginStorage,
    StoredItem,
    StoreError,
    encode,
)

__all__ = [
    "PluginStore", "StoreError", "IPluginStorage", "SqlStorage", "MemoryStorage", "Address",
    "StoredItem", "MISSING", "SCOPES", "MAX_KEY_CHARS", "MAX_VALUE_BYTES",
]


class PluginStore:
    """
    C{context.store}: one plugin's values, seen from one message's room and sender.

    C{scope} is C{"room"} (this room), C{"user"} (this sender in this room) or
    C{"global"} (everywhere). Every call returns a Deferred (await it in C{async def}).
    """

    def __init__(
        self,
        storage: IPluginStorage,
        plugin: str,
        roomId: str | None,
        userId: str | None,
        clock: IReactorTime,
    ) -> None:
        self.storage = storage
        self.plugin = plugin
        self.roomId = roomId
        self.userId = userId
        self.clock = clock

    def __repr__(self) -> str:
        return f"<PluginStore {self.plugin} room={self.roomId!r} user={self.userId!r}>"

    def _address(self, key: str, scope: str) -> Address:
        if not isinstance(key, str) or not key:
            raise StoreError("a store key must be a non-empty string")
        if len(key) > MAX_KEY_CHARS:
            raise StoreError(f"a store key must be at most {MAX_KEY_CHARS} characters")
        if scope == "global":
            return Address(self.plugin, scope, "", "", key)
        if scope not in SCOPES:
            raise StoreError(f"unknown store scope {scope!r}: use 'room', 'user' or 'global'")
        if not self.roomId:
            raise StoreError(f"scope {scope!r} needs a room; this store has none (use scope='global')")
        if scope == "room":
            return Address(self.plugin, scope, self.roomId, "", key)
        if not self.userId:
            raise StoreError("scope 'user' needs a sender; this store has none")
        return Address(self.plugin, scope, self.roomId, self.userId, key)

    def get(self, key: str, default: Any = None, scope: str = "room") -> defer.Deferred[Any]:
        """The stored value, or C{default} when there is none (or it expired)."""
        try:
            address = self._address(key, scope)
        except StoreError:
            return defer.fail()
        d = self.storage.get(address, self.clock.seconds())
        d.addCallback(lambda value: default if value is MISSING else value)
        return d

    def set(self, key: str, value: Any, scope: str = "room", ttl: float | None = None) -> defer.Deferred[None]:
        """Store a JSON value; with C{ttl}, it is gone after that many seconds."""
        try:
            address = self._address(key, scope)
            encode(value)
            if ttl is not None and not ttl > 0:
                raise StoreError("ttl must be a positive number of seconds (or None)")
        except StoreError:
            return defer.fail()
        now = self.clock.seconds()
        return self.storage.set(address, value, None if ttl is None else now + ttl, now)

    def delete(self, key: str, scope: str = "room") -> defer.Deferred[bool]:
        try:
            address = self._address(key, scope)
        except StoreError:
            return defer.fail()
        return self.storage.delete(address)

    def incr(self, key: str, by: int = 1, scope: str = "room") -> defer.Deferred[int]:
        """Add C{by} (absent counts as 0) in one atomic step; fires with the new value."""
        try:
            if isinstance(by, bool) or not isinstance(by, int):
                raise StoreError("incr: by must be an integer")
            address = self._address(key, scope)
        except StoreError:
            return defer.fail()
        return self.storage.incr(address, by, self.clock.seconds())

    def everyUser(self, key: str) -> defer.Deferred[dict[str, Any]]:
        """C{{userHash: value}} of a user-scope key for every user of this room (rankings)."""
        if not self.roomId:
            return defer.fail(StoreError("everyUser needs a room"))
        return self.storage.everyUser(self.plugin, self.roomId, key, self.clock.seconds())
