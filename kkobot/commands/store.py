"""Plugin storage: JSON values per plugin and per room / user / everywhere, kept in the database."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Callable, Sequence

from twisted.enterprise import adbapi
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from zope.interface import Interface, implementer

from kkobot.db.pool import isGoneAway
from kkobot.logs import Logger

log = Logger()

SCOPES = ("room", "user", "global")
MAX_KEY_CHARS = 191
MAX_VALUE_BYTES = 64 * 1024
# The pools' most connections (cp_max): after an outage each may fail one call.
RECONNECT_TRIES = 3
# 18 digits: every such integer fits a signed 64-bit column and a JavaScript-safe reader.
_INTEGER = re.compile(r"-?[0-9]{1,18}")

MYSQL_PLUGIN_STORE = """
CREATE TABLE IF NOT EXISTS `kb_plugin_store` (
  `plugin` varchar(64) NOT NULL COMMENT 'plugin name (its file name without kkobot_)',
  `scope` varchar(8) NOT NULL COMMENT 'room, user or global',
  `room_id` varchar(100) NOT NULL DEFAULT '' COMMENT 'channel id (else room name); empty for global',
  `user_id` varchar(100) NOT NULL DEFAULT '' COMMENT 'userHash for user scope, else empty',
  `item_key` varchar(191) NOT NULL COMMENT 'the plugin''s key',
  `value` mediumtext NOT NULL COMMENT 'JSON',
  `expires_at` bigint DEFAULT NULL COMMENT 'epoch milliseconds; NULL never expires',
  `updated_at` datetime NOT NULL,
  PRIMARY KEY (`plugin`, `scope`, `room_id`, `user_id`, `item_key`),
  KEY `idx_plugin_store_expires` (`expires_at`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin COMMENT='command plugins'' stored values'
"""

SQLITE_PLUGIN_STORE = (
    """
CREATE TABLE IF NOT EXISTS kb_plugin_store (
  plugin TEXT NOT NULL,
  scope TEXT NOT NULL,
  room_id TEXT NOT NULL DEFAULT '',
  user_id TEXT NOT NULL DEFAULT '',
  item_key TEXT NOT NULL,
  value TEXT NOT NULL,
  expires_at INTEGER DEFAULT NULL,
  updated_at TEXT NOT NULL,
  PRIMARY KEY (plugin, scope, room_id, user_id, item_key)
)
""",
    "CREATE INDEX IF NOT EXISTS idx_plugin_store_expires ON kb_plugin_store (expires_at)",
)

_PK = "plugin = %s AND scope = %s AND room_id = %s AND user_id = %s AND item_key = %s"
_LIVE = "(expires_at IS NULL OR expires_at > %s)"

# The increment happens inside the database, in one statement: two servers (or fifty
# bots) incrementing the same key never lose an update. A value that is not an
# integer is left alone and reported after the statement (the transaction is rolled back).
_INCR = {
    "mysql": (
        "INSERT INTO kb_plugin_store (plugin, scope, room_id, user_id, item_key, value, "
        "expires_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, NULL, %s) "
        "ON DUPLICATE KEY UPDATE "
        "value = IF(expires_at IS NOT NULL AND expires_at <= %s, VALUES(value), "
        "IF(value REGEXP '^-?[0-9]{1,18}$', CAST(CAST(value AS SIGNED) + %s AS CHAR), value)), "
        "expires_at = IF(expires_at IS NOT NULL AND expires_at <= %s, NULL, expires_at), "
        "updated_at = VALUES(updated_at)"
    ),
    "sqlite": (
        "INSERT INTO kb_plugin_store (plugin, scope, room_id, user_id, item_key, value, "
        "expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, NULL, ?) "
        "ON CONFLICT (plugin, scope, room_id, user_id, item_key) DO UPDATE SET "
        "value = CASE WHEN expires_at IS NOT NULL AND expires_at <= ? THEN excluded.value "
        "WHEN CAST(CAST(value AS INTEGER) AS TEXT) = value "
        "THEN CAST(CAST(value AS INTEGER) + ? AS TEXT) ELSE value END, "
        "expires_at = CASE WHEN expires_at IS NOT NULL AND expires_at <= ? THEN NULL "
        "ELSE expires_at END, "
        "updated_at = excluded.updated_at"
    ),
}

# The same increment as one statement on an autocommit connection: the new value
# comes back in the OK packet's insert id (LAST_INSERT_ID(expr)), offset by 2**62 so
# that negative values fit its unsigned range and 0 can mean "not an integer".
_OFFSET = 2**62
_NEW = "CAST(CAST(LAST_INSERT_ID({x} + 4611686018427387904) AS SIGNED) - 4611686018427387904 AS CHAR)"
_INCR_ONE_STATEMENT = (
    "INSERT INTO kb_plugin_store (plugin, scope, room_id, user_id, item_key, value, "
    "expires_at, updated_at) VALUES (%s, %s, %s, %s, %s, " + _NEW.format(x="%s") + ", NULL, %s) "
    "ON DUPLICATE KEY UPDATE "
    "value = IF(expires_at IS NOT NULL AND expires_at <= %s, " + _NEW.format(x="%s") + ", "
    "IF(value REGEXP '^-?[0-9]{1,18}$', " + _NEW.format(x="CAST(value AS SIGNED) + %s") + ", "
    "IF(LAST_INSERT_ID(0) = 0, value, value))), "
    "expires_at = IF(expires_at IS NOT NULL AND expires_at <= %s, NULL, expires_at), "
    "updated_at = VALUES(updated_at)"
)

_SET = {
    "mysql": (
        "INSERT INTO kb_plugin_store (plugin, scope, room_id, user_id, item_key, value, "
        "expires_at, updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, %s) "
        "ON DUPLICATE KEY UPDATE value = VALUES(value), expires_at = VALUES(expires_at), "
        "updated_at = VALUES(updated_at)"
    ),
    "sqlite": (
        "INSERT INTO kb_plugin_store (plugin, scope, room_id, user_id, item_key, value, "
        "expires_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
        "ON CONFLICT (plugin, scope, room_id, user_id, item_key) DO UPDATE SET "
        "value = excluded.value, expires_at = excluded.expires_at, "
        "updated_at = excluded.updated_at"
    ),
}


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


def _timeText(now: float) -> str:
    return datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M:%S")


@implementer(IPluginStorage)
class SqlStorage:
    """
    L{IPluginStorage} in the table C{kb_plugin_store} of the chat log's database
    (MySQL/MariaDB through adbapi, or SQLite), created with the other tables.
    """

    def __init__(self, database: Any, ownPool: bool = False) -> None:
        self.database = database
        self.dialect = "sqlite" if database.engine == "sqlite" else "mysql"
        # MySQL: with its own pool of autocommit connections, every call is one
        # statement, one round trip (no COMMIT after it), and the store does not wait
        # behind chat-log batches. MariaDB's CPU per stored call drops by a fifth; the
        # server's own CPU per call is mostly the hand-off to a pool thread either way
        # (docs/benchmarks.md). SQLite keeps its single connection.
        self._ownPool = ownPool and self.dialect == "mysql"
        self._pool: adbapi.ConnectionPool | None = None
        self._closed = False

    @property
    def pool(self) -> adbapi.ConnectionPool | None:
        """The store's own pool, made at the first call: a server built but never run opens none."""
        if self._pool is None and self._ownPool and not self._closed:
            self._pool = autocommitPool(
                self.database.settings, getattr(self.database, "_reactor", None))
        return self._pool

    def close(self) -> None:
        self._closed = True
        if self._pool is not None:
            self._pool.close()

    @staticmethod
    def addSchema(database: Any) -> None:
        database.addSchema(MYSQL_PLUGIN_STORE, SQLITE_PLUGIN_STORE)

    def _ready(self) -> defer.Deferred[Any]:
        # A command can run while the chat log is still creating the tables at
        # startup; the DDL is idempotent, so a caller that comes early just runs it.
        if self.database.schemaReady:
            return defer.succeed(None)
        return self.database.ensureSchema()

    def _run(self, func: Callable[..., Any], *args: Any, retry: bool = True) -> defer.Deferred[Any]:
        run = self.database.runInteraction if self.pool is None else self.pool.runInteraction
        if self.database.schemaReady:
            d = run(func, *args)
        else:
            d = self._ready()
            d.addCallback(lambda _: run(func, *args))
        if retry and self.dialect == "mysql":
            # Idle connections MySQL closed (wait_timeout closes them all at once) fail
            # one call each; the pool replaces each one. So: as many tries as the pool
            # has connections. Not for incr: it may have been applied before the link broke.
            tries = [RECONNECT_TRIES]

            def again(failure: Any) -> Any:
                # adbapi reports a connection it had to replace as ConnectionLost.
                if tries[0] > 0 and (failure.check(adbapi.ConnectionLost) or isGoneAway(failure.value)):
                    tries[0] -= 1
                    retried = run(func, *args)
                    retried.addErrback(again)
                    return retried
                return failure

            d.addErrback(again)
        return d

    def _q(self, statement: str) -> str:
        return self.database.sql(statement)

    def get(self, address: Address, now: float) -> defer.Deferred[Any]:
        sql = self._q(f"SELECT value FROM kb_plugin_store WHERE {_PK} AND {_LIVE}")

        def interaction(txn: Any) -> Any:
            txn.execute(sql, (*address.row(), millis(now)))
            row = txn.fetchone()
            return MISSING if row is None else decode(row[0])

        return self._run(interaction)

    def set(self, address: Address, value: Any, expiresAt: float | None, now: float) -> defer.Deferred[None]:
        text = encode(value)
        sql = _SET[self.dialect]

        def interaction(txn: Any) -> None:
            txn.execute(sql, (*address.row(), text, millis(expiresAt), _timeText(now)))

        return self._run(interaction)

    def delete(self, address: Address) -> defer.Deferred[bool]:
        sql = self._q(f"DELETE FROM kb_plugin_store WHERE {_PK}")

        def interaction(txn: Any) -> bool:
            txn.execute(sql, address.row())
            return txn.rowcount > 0

        return self._run(interaction)

    def incr(self, address: Address, by: int, now: float) -> defer.Deferred[int]:
        if self.pool is not None:
            return self._incrOneStatement(address, by, now)
        upsert = _INCR[self.dialect]
        select = self._q(f"SELECT value FROM kb_plugin_store WHERE {_PK}")
        nowMillis = millis(now)

        def interaction(txn: Any) -> int:
            txn.execute(upsert, (*address.row(), str(by), _timeText(now), nowMillis, by, nowMillis))
            # Same transaction, same (now locked) row: this reads our own increment.
            txn.execute(select, address.row())
            text = txn.fetchone()[0]
            if not _INTEGER.fullmatch(text):
                raise StoreError(f"incr: the value of {address.key!r} is not an integer")
            return int(text)

        return self._run(interaction, retry=False)

    def _incrOneStatement(self, address: Address, by: int, now: float) -> defer.Deferred[int]:
        nowMillis = millis(now)

        def interaction(txn: Any) -> int:
            txn.execute(_INCR_ONE_STATEMENT,
                        (*address.row(), by, _timeText(now), nowMillis, by, by, nowMillis))
            if not txn.lastrowid:
                raise StoreError(f"incr: the value of {address.key!r} is not an integer")
            return int(txn.lastrowid) - _OFFSET

        return self._run(interaction, retry=False)

    def everyUser(self, plugin: str, roomId: str, key: str, now: float) -> defer.Deferred[dict[str, Any]]:
        sql = self._q(
            "SELECT user_id, value FROM kb_plugin_store WHERE plugin = %s AND scope = 'user' "
            f"AND room_id = %s AND item_key = %s AND {_LIVE}"
        )

        def interaction(txn: Any) -> dict[str, Any]:
            txn.execute(sql, (plugin, roomId, key, millis(now)))
            return {user: decode(value) for user, value in txn.fetchall()}

        return self._run(interaction)

    def _filters(self, **columns: str | None) -> tuple[str, list[Any]]:
        where, args = [], []
        for column, value in columns.items():
            if value is not None:
                where.append(f"{column} = %s")
                args.append(value)
        return (" WHERE " + " AND ".join(where)) if where else "", args

    def items(
        self,
        plugin: str | None = None,
        scope: str | None = None,
        roomId: str | None = None,
        userId: str | None = None,
        key: str | None = None,
        now: float | None = None,
        limit: int = 1000,
    ) -> defer.Deferred[list[StoredItem]]:
        where, args = self._filters(plugin=plugin, scope=scope, room_id=roomId, user_id=userId,
                                    item_key=key)
        if now is not None:
            where += (" AND " if where else " WHERE ") + _LIVE
            args.append(millis(now))
        sql = self._q(
            "SELECT plugin, scope, room_id, user_id, item_key, value, expires_at, updated_at "
            f"FROM kb_plugin_store{where} ORDER BY plugin, scope, room_id, user_id, item_key "
            f"LIMIT {int(limit)}"
        )

        def interaction(txn: Any) -> list[StoredItem]:
            txn.execute(sql, args)
            return [
                StoredItem(p, s, r, u, k, decode(v), None if e is None else e / 1000.0, str(t))
                for p, s, r, u, k, v, e, t in txn.fetchall()
            ]

        return self._run(interaction)

    def clear(
        self,
        plugin: str,
        scope: str | None = None,
        roomId: str | None = None,
        userId: str | None = None,
        key: str | None = None,
    ) -> defer.Deferred[int]:
        where, args = self._filters(plugin=plugin, scope=scope, room_id=roomId, user_id=userId,
                                    item_key=key)
        sql = self._q(f"DELETE FROM kb_plugin_store{where}")

        def interaction(txn: Any) -> int:
            txn.execute(sql, args)
            return txn.rowcount

        return self._run(interaction)

    def purgeExpired(self, now: float) -> defer.Deferred[int]:
        sql = self._q("DELETE FROM kb_plugin_store WHERE expires_at IS NOT NULL AND expires_at <= %s")

        def interaction(txn: Any) -> int:
            txn.execute(sql, (millis(now),))
            return txn.rowcount

        return self._run(interaction)


# A connection unused this long is pinged (and reconnected) before its next call: MySQL
# (wait_timeout) or a firewall may have closed it, and an incr, which is not retried,
# would fail on it.
IDLE_PING_SECONDS = 300.0


class _AutocommitConnection(adbapi.Connection):
    """
    Each statement commits itself, so adbapi's COMMIT after every call is skipped.
    Made in the pool's thread for each call, around that thread's connection.
    """

    def __init__(self, pool: adbapi.ConnectionPool) -> None:
        adbapi.Connection.__init__(self, pool)
        raw = self._connection
        now = time.monotonic()
        last = getattr(raw, "_kkobotLastUsed", None)
        if last is not None and now - last > IDLE_PING_SECONDS:
            try:
                raw.ping(reconnect=False)
            except Exception:
                raw.connect()  # the same connection object, on a new socket
        raw._kkobotLastUsed = now

    def commit(self) -> None:
        pass


class _AutocommitPool(adbapi.ConnectionPool):
    connectionFactory = _AutocommitConnection


def autocommitPool(settings: Any, reactor: Any = None) -> adbapi.ConnectionPool:
    """A small PyMySQL pool in autocommit mode, for single-statement calls."""
    extra: dict[str, Any] = {} if reactor is None else {"cp_reactor": reactor}
    return _AutocommitPool(
        "pymysql", host=settings.host, port=int(settings.port), user=settings.user,
        password=settings.password or "", database=settings.name, charset="utf8mb4",
        autocommit=True, connect_timeout=5, read_timeout=30, write_timeout=30,
        cp_min=1, cp_max=3, cp_reconnect=True, **extra,
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
        self.values[address.row()] = (text, millis(expiresAt), _timeText(now))
        return defer.succeed(None)

    def delete(self, address: Address) -> defer.Deferred[bool]:
        return defer.succeed(self.values.pop(address.row(), None) is not None)

    def incr(self, address: Address, by: int, now: float) -> defer.Deferred[int]:
        found = self._live(address.row(), now)
        if found is None:
            text, expires = "0", None
        else:
            text, expires = found[0], found[1]
        if not _INTEGER.fullmatch(text):
            return defer.fail(StoreError(f"incr: the value of {address.key!r} is not an integer"))
        value = int(text) + by
        self.values[address.row()] = (str(value), expires, _timeText(now))
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
