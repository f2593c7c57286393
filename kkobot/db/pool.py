"""Database access through twisted.enterprise.adbapi: MySQL/MariaDB (PyMySQL) or SQLite."""

from __future__ import annotations

import os
from typing import Any, Callable, Sequence

from twisted.python.failure import Failure

from twisted.enterprise import adbapi
from twisted.internet import defer

from kkobot.db.errors import describeError, isSchemaError
from kkobot.files import PRIVATE_DIR, PRIVATE_FILE, ensureDirectory, tighten
from kkobot.logs import Logger
from kkobot.db.tablemap import TableMap, TableSpec, resolve

log = Logger()

# MySQL error numbers that mean "the connection is gone, try again on a new one".
GONE_AWAY = {2006, 2013, 2014, 2045, 2055}
UNKNOWN_DATABASE = 1049
# Connections (and threads) of a MySQL pool: after an outage each may be a dead one.
POOL_MAX = 3

MYSQL_CHAT_LOGS = """
CREATE TABLE IF NOT EXISTS `kb_chat_logs` (
  `id` int(11) NOT NULL AUTO_INCREMENT COMMENT 'primary key',
  `channel_id` varchar(50) NOT NULL COMMENT 'KakaoTalk channel id (stable room id)',
  `user_hash` varchar(100) NOT NULL COMMENT 'stable user id within the room',
  `room_name` varchar(255) DEFAULT NULL COMMENT 'room name (may change)',
  `sender` varchar(100) DEFAULT NULL COMMENT 'sender display name (may change)',
  `message` text CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci NOT NULL COMMENT 'message text',
  `directive` varchar(30) DEFAULT NULL COMMENT 'command prefix, e.g. "# echo"',
  `message_type` varchar(20) NOT NULL COMMENT 'normal, command, auto_replay, ...',
  `is_meaningful` tinyint(1) NOT NULL DEFAULT 0 COMMENT 'meaningful message',
  `bot_name` varchar(30) NOT NULL COMMENT 'bot name',
  `is_mention` tinyint(1) NOT NULL DEFAULT 0 COMMENT 'mentions the bot',
  `is_group_chat` tinyint(1) NOT NULL DEFAULT 0 COMMENT 'group chat',
  `log_id` varchar(50) DEFAULT NULL COMMENT 'KakaoTalk message id',
  `client_timestamp` datetime DEFAULT NULL COMMENT 'time the phone sent it',
  `server_timestamp` datetime DEFAULT current_timestamp() COMMENT 'time the server received it',
  `is_bot` tinyint(1) DEFAULT 0 COMMENT 'sender is a bot',
  `is_our_bot_response` tinyint(1) NOT NULL DEFAULT 0 COMMENT 'a reply our bot sent',
  `is_scheduled` tinyint(1) NOT NULL DEFAULT 0 COMMENT 'a scheduled message',
  PRIMARY KEY (`id`),
  KEY `idx_channel_user_time` (`channel_id`,`user_hash`,`server_timestamp`),
  KEY `idx_meaningful` (`is_meaningful`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_general_ci COMMENT='KakaoTalk bot chat log'
"""

SQLITE_CHAT_LOGS = """
CREATE TABLE IF NOT EXISTS kb_chat_logs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  channel_id TEXT NOT NULL,
  user_hash TEXT NOT NULL,
  room_name TEXT DEFAULT NULL,
  sender TEXT DEFAULT NULL,
  message TEXT NOT NULL,
  directive TEXT DEFAULT NULL,
  message_type TEXT NOT NULL,
  is_meaningful INTEGER NOT NULL DEFAULT 0,
  bot_name TEXT NOT NULL,
  is_mention INTEGER NOT NULL DEFAULT 0,
  is_group_chat INTEGER NOT NULL DEFAULT 0,
  log_id TEXT DEFAULT NULL,
  client_timestamp TEXT DEFAULT NULL,
  server_timestamp TEXT DEFAULT CURRENT_TIMESTAMP,
  is_bot INTEGER DEFAULT 0,
  is_our_bot_response INTEGER NOT NULL DEFAULT 0,
  is_scheduled INTEGER NOT NULL DEFAULT 0
)
"""

SQLITE_CHAT_LOGS_INDEX = (
    "CREATE INDEX IF NOT EXISTS idx_channel_user_time "
    "ON kb_chat_logs (channel_id, user_hash, server_timestamp)"
)


def isGoneAway(error: BaseException) -> bool:
    """True for errors after which the same query may succeed on a fresh connection."""
    args = getattr(error, "args", ())
    return bool(args) and args[0] in GONE_AWAY


class Database:
    """
    One adbapi connection pool plus the dialect differences kkobot cares about.

    SQL is written with C{%s} placeholders (PyMySQL's style); for SQLite they are
    rewritten to C{?}.
    """

    def __init__(self, settings: Any, reactor: Any = None) -> None:
        self.settings = settings
        self.engine = getattr(settings, "engine", "mysql") or "mysql"
        self._reactor = reactor
        self._schemaStatements: list[str] = []
        self._closed = False
        # True once ensureSchema has succeeded: readers of our tables wait for it.
        self.schemaReady = False
        # Tables whose columns are read at every schema check (operators' own may
        # differ from kkobot's): spec name -> the decision, or why there is none.
        self._specs: dict[str, TableSpec] = {}
        self.tables: dict[str, TableMap] = {}
        self.tableErrors: dict[str, BaseException] = {}
        self._schemaWaiters: list[defer.Deferred[None]] = []
        self.pool = self._makePool()

    def describe(self) -> str:
        """Where the data goes, for logs (never the password)."""
        s = self.settings
        if self.engine == "sqlite":
            return f"sqlite:{s.path}"
        return f"mysql://{s.user}@{s.host}:{s.port}/{s.name}"

    def _makePool(self, withDatabase: bool = True) -> adbapi.ConnectionPool:
        s = self.settings
        extra: dict[str, Any] = {}
        if self._reactor is not None:
            extra["cp_reactor"] = self._reactor
        if self.engine == "sqlite":
            _prepareSqliteFile(s.path)
            # sqlite3 connections belong to one thread: a pool of exactly one.
            return adbapi.ConnectionPool(
                "sqlite3",
                s.path,
                check_same_thread=False,
                cp_min=1,
                cp_max=1,
                cp_openfun=_sqliteOpen,
                **extra,
            )
        kwargs: dict[str, Any] = dict(
            host=s.host,
            port=int(s.port),
            user=s.user,
            password=s.password or "",
            charset="utf8mb4",
            autocommit=False,
            connect_timeout=5,
            # A stalled server (not a refused connection) must fail the batch, not hang a
            # pool thread forever: the rows stay journaled and are retried.
            read_timeout=30,
            write_timeout=30,
        )
        if withDatabase:
            kwargs["database"] = s.name
        return adbapi.ConnectionPool(
            "pymysql", cp_min=1, cp_max=POOL_MAX, cp_reconnect=True, **kwargs, **extra
        )

    def sql(self, statement: str) -> str:
        if self.engine == "sqlite":
            return statement.replace("%s", "?")
        return statement

    def addSchema(self, mysql: str, sqlite: Sequence[str] | str) -> None:
        """Register DDL that L{ensureSchema} runs (for tables other parts add)."""
        statements = ([sqlite] if isinstance(sqlite, str) else list(sqlite)) if (
            self.engine == "sqlite") else [mysql]
        # Each kind's log registers the tables they share: once is enough.
        self._schemaStatements.extend(s for s in statements if s not in self._schemaStatements)

    def addTable(self, spec: TableSpec) -> None:
        """A table whose existing shape is read and mapped (L{kkobot.db.tablemap}) by L{ensureSchema}."""
        self._specs[spec.name] = spec

    def ensureSchema(self) -> defer.Deferred[None]:
        """
        Create the database (MySQL) and the tables when missing, and decide where each
        added table's rows go. Callers at the same time share one check.
        """
        d: defer.Deferred[None] = defer.Deferred()
        self._schemaWaiters.append(d)
        if len(self._schemaWaiters) == 1:
            self._ensureSchema().addBoth(self._ensured)
        return d

    def _ensured(self, result: Any) -> None:
        waiters, self._schemaWaiters = self._schemaWaiters, []
        for d in waiters:
            if isinstance(result, Failure):
                d.errback(result)
            else:
                d.callback(None)

    @defer.inlineCallbacks
    def _ensureSchema(self):
        if self.engine == "sqlite":
            statements = [SQLITE_CHAT_LOGS, SQLITE_CHAT_LOGS_INDEX]
        else:
            statements = [MYSQL_CHAT_LOGS]
        statements += self._schemaStatements
        specs = list(self._specs.values())
        try:
            results = yield self.pool.runInteraction(_setUp, self.engine, statements, specs)
        except Exception as e:
            if self.engine != "mysql" or getattr(e, "args", (None,))[0] != UNKNOWN_DATABASE:
                raise
            yield self._createDatabase()
            results = yield self.pool.runInteraction(_setUp, self.engine, statements, specs)
        self._tablesResolved(results)
        self.schemaReady = True

    def _tablesResolved(self, results: dict[str, TableMap | BaseException]) -> None:
        for name, result in results.items():
            if isinstance(result, BaseException):
                if repr(self.tableErrors.get(name)) != repr(result):
                    log.error(
                        "[DB] {table}: cannot decide where its rows go ({error}); they "
                        "wait and the check is repeated",
                        table=name, error=_errorText(result),
                    )
                self.tableErrors[name] = result
                continue
            self.tableErrors.pop(name, None)
            before = self.tables.get(name)
            self.tables[name] = result
            if before is not None and (before.table, before.columns, before.constants) == (
                result.table, result.columns, result.constants
            ):
                continue
            spec = result.spec
            if result.fallbackReason is not None:
                log.warn(
                    "[DB] {table} exists but cannot take {what} ({why}); writing them to "
                    "{own} instead (the existing table is left as it is)",
                    table=name, what=spec.what, why=result.fallbackReason, own=result.table,
                )
            elif not result.ownShape:
                log.info(
                    "[DB] {table}: writing {what} to the existing table's columns ({how})",
                    table=name, what=spec.what, how=result.describe(),
                )

    @defer.inlineCallbacks
    def _createDatabase(self):
        name = self.settings.name
        log.info("[DB] creating database {name}", name=name)
        pool = self._makePool(withDatabase=False)
        try:
            yield pool.runOperation(
                f"CREATE DATABASE IF NOT EXISTS `{name.replace('`', '``')}` "
                "CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
            )
        finally:
            pool.close()

    def runInteraction(self, func: Callable[..., Any], *args: Any, **kw: Any) -> defer.Deferred:
        return self.pool.runInteraction(func, *args, **kw)

    def runQuery(self, statement: str, *args: Any) -> defer.Deferred:
        return self.pool.runQuery(self.sql(statement), *args)

    def runOperation(self, statement: str, *args: Any) -> defer.Deferred:
        return self.pool.runOperation(self.sql(statement), *args)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.pool.close()


def _prepareSqliteFile(path: str) -> None:
    """
    The database file exists, the server user's alone, before SQLite opens it:
    SQLite gives its -wal and -shm files the database file's mode.
    """
    if path == ":memory:" or path.startswith("file:"):
        return
    ensureDirectory(os.path.dirname(os.path.abspath(path)), PRIVATE_DIR)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, PRIVATE_FILE))
    for name in (path, path + "-wal", path + "-shm"):
        tighten(name, PRIVATE_FILE)


def _sqliteOpen(conn: Any) -> None:
    # WAL lets the admin CLI read while the server writes.
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")


def _execute(txn: Any, statements: Sequence[str]) -> None:
    for statement in statements:
        txn.execute(statement)


def _setUp(
    txn: Any, engine: str, statements: Sequence[str], specs: Sequence[TableSpec]
) -> dict[str, TableMap | BaseException]:
    """Runs in a pool thread: kkobot's own tables, then where each mapped kind's rows go."""
    _execute(txn, statements)
    # One table that cannot be decided must not keep the others undecided.
    out: dict[str, TableMap | BaseException] = {}
    for spec in specs:
        try:
            out[spec.name] = resolve(txn, engine, spec)
        except Exception as e:
            if not isSchemaError(e):
                raise  # the connection or the server: the whole check is retried
            out[spec.name] = e
    return out


def _errorText(error: BaseException) -> str:
    return f"{describeError(error)}: {error}"
