"""The plugin store in a dict, for tests: the database's answers, fired at once, nothing on disk."""

from __future__ import annotations

from typing import Any, Sequence

from twisted.internet import defer
from zope.interface import implementer

from kkobot.commands.storevalues import (
    INTEGER,
    MISSING,
    Address,
    IPluginStorage,
    StoredItem,
    StoreError,
    decode,
    encode,
    millis,
    timeText,
)


@implementer(IPluginStorage)
class MemoryStorage:
    """
    L{IPluginStorage} in a dict, for L{kkobot.testing.CommandTester}: the same answers
    as the database (values go through JSON), fired at once, nothing kept on disk.
    """

    def __init__(self) -> None:
        self.values: dict[tuple[str, str, str, str, str], tuple[str, int | None, str]] = {}

    def _live(self, row: tuple[str, ...], now: float | None) -> tuple[str, int | None, str] | None:
        found = self.values.get(row)  # type: ignore[arg-type]
        if found is None:
            return None
        if now is not None and found[1] is not None and found[1] <= millis(now):
            return None
        return found

    def get(self, address: Address, now: float) -> defer.Deferred[Any]:
        found = self._live(address.row(), now)
        return defer.succeed(MISSING if found is None else decode(found[0]))

    def set(self, address: Address, value: Any, expiresAt: float | None, now: float) -> defer.Deferred[None]:
        try:
            text = encode(value)
        except StoreError:
            return defer.fail()
        self.values[address.row()] = (text, millis(expiresAt), timeText(now))
        return defer.succeed(None)

    def delete(self, address: Address) -> defer.Deferred[bool]:
        return defer.succeed(self.values.pop(address.row(), None) is not None)

    def incr(self, address: Address, by: int, now: float) -> defer.Deferred[int]:
        found = self._live(address.row(), now)
        if found is None:
            text, expires = "0", None
        else:
            text, expires = found[0], found[1]
        if not INTEGER.fullmatch(text):
            return defer.fail(StoreError(f"incr: the value of {address.key!r} is not an integer"))
        value = int(text) + by
        self.values[address.row()] = (str(value), expires, timeText(now))
        return defer.succeed(value)

    def everyUser(self, plugin: str, roomId: str, key: str, now: float) -> defer.Deferred[dict[str, Any]]:
        found = {}
        for row in list(self.values):
            p, s, r, u, k = row
            if (p, s, r, k) == (plugin, "user", roomId, key):
                live = self._live(row, now)
                if live is not None:
                    found[u] = decode(live[0])
        return defer.succeed(found)

    def _matching(self, filters: Sequence[str | None]) -> list[tuple[str, str, str, str, str]]:
        return sorted(
            row for row in self.values
            if all(f is None or f == v for f, v in zip(filters, row))
        )

    def items(self, plugin=None, scope=None, roomId=None, userId=None, key=None, now=None, limit=1000):
        out = []
        for row in self._matching((plugin, scope, roomId, userId, key)):
            live = self._live(row, now)
            if live is not None:
                text, expires, updated = live
                out.append(StoredItem(*row, decode(text), None if expires is None else expires / 1000.0,
                                      updated))
        return defer.succeed(out[:limit])

    def clear(self, plugin, scope=None, roomId=None, userId=None, key=None):
        rows = self._matching((plugin, scope, roomId, userId, key))
        for row in rows:
            del self.values[row]
        return defer.succeed(len(rows))

    def purgeExpired(self, now: float) -> defer.Deferred[int]:
        expired = [row for row in self.values if self._live(row, now) is None]
        for row in expired:
            del self.values[row]
        return defer.succeed(len(expired))
