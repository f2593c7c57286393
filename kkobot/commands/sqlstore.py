"""The plugin store in the database: kb_plugin_store on MySQL/MariaDB or SQLite, its SQL and retries."""

from __future__ import annotations

from typing import Any, Callable

from twisted.enterprise import adbapi
from twisted.internet import defer
from zope.interface import implementer

from kkobot.commands.autocommit import autocommitPool
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
from kkobot.db.pool import isGoneAway

# The pools' most connections (cp_max): after an outage each may fail one call.
RECONNECT_TRIES = 3

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
            txn.execute(sql, (*address.row(), text, millis(expiresAt), timeText(now)))

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
            txn.execute(upsert, (*address.row(), str(by), timeText(now), nowMillis, by, nowMillis))
            # Same transaction, same (now locked) row: this reads our own increment.
            txn.execute(select, address.row())
            text = txn.fetchone()[0]
            if not INTEGER.fullmatch(text):
                raise StoreError(f"incr: the value of {address.key!r} is not an integer")
            return int(text)

        return self._run(interaction, retry=False)

    def _incrOneStatement(self, address: Address, by: int, now: float) -> defer.Deferred[int]:
        nowMillis = millis(now)

        def interaction(txn: Any) -> int:
            txn.execute(_INCR_ONE_STATEMENT,
                        (*address.row(), by, timeText(now), nowMillis, by, by, nowMillis))
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
