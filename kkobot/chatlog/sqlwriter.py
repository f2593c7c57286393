"""Chat log SQL: each kind's INSERT, and the kb_chatlog_batches record that makes a batch exactly-once."""

from __future__ import annotations

from operator import attrgetter
from typing import Any

from twisted.internet import defer

from kkobot.chatlog.journal import Entry
from kkobot.chatlog.pings import COLUMNS as PING_COLUMNS
from kkobot.chatlog.pings import PING_TABLE, PingRow
from kkobot.chatlog.rows import COLUMNS, INSERT_CHAT_LOGS, ChatRow
from kkobot.chatlog.sqlvalues import MultiRowInsert
from kkobot.db.errors import isDuplicateKey
from kkobot.db.pool import Database
from kkobot.db.tablemap import TableError, TableMap

# One row per committed batch, in the same transaction as the batch's rows: the
# journal's replay skips what is recorded here, so a batch is never written twice.
MYSQL_BATCHES = """
CREATE TABLE IF NOT EXISTS `kb_chatlog_batches` (
  `journal_id` char(32) NOT NULL COMMENT 'the journal directory the rows came from',
  `first_seq` bigint NOT NULL COMMENT 'journal seq of the first row of the batch',
  `last_seq` bigint NOT NULL COMMENT 'journal seq of the last row of the batch',
  `row_count` int NOT NULL,
  `committed_at` datetime NOT NULL DEFAULT current_timestamp(),
  PRIMARY KEY (`journal_id`, `first_seq`)
) ENGINE=InnoDB DEFAULT CHARSET=ascii COMMENT='kkobot chat log batches (replay idempotency)'
"""
SQLITE_BATCHES = """
CREATE TABLE IF NOT EXISTS kb_chatlog_batches (
  journal_id TEXT NOT NULL, first_seq INTEGER NOT NULL, last_seq INTEGER NOT NULL,
  row_count INTEGER NOT NULL, committed_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (journal_id, first_seq)
)
"""
INSERT_BATCH = (
    "INSERT INTO kb_chatlog_batches (journal_id, first_seq, last_seq, row_count) "
    "VALUES (%s, %s, %s, %s)"
)
SELECT_COMMITTED = "SELECT MAX(last_seq) FROM kb_chatlog_batches WHERE journal_id = %s"
SELECT_BATCH_END = (
    "SELECT last_seq FROM kb_chatlog_batches WHERE journal_id = %s AND first_seq = %s"
)

_kindOf = attrgetter("kind")
_valuesOf = attrgetter("values")
_encodedOf = attrgetter("encoded")

# Kinds whose table may be an operator's own of another shape (kkobot.db.tablemap):
# kind -> the table spec. kb_chat_logs is always the operators' DDL as it is.
MAPPED = {PingRow.KIND: PING_TABLE}
COLUMNS_BY_KIND = {ChatRow.KIND: COLUMNS, PingRow.KIND: list(PING_COLUMNS)}
TABLES = {ChatRow.KIND: "kb_chat_logs", PingRow.KIND: "kb_ping_monitor"}
# What a kind's rows are called in log lines.
WHAT = {ChatRow.KIND: "chat", PingRow.KIND: "ping"}


class RowWriter:
    """
    Inserts one kind's rows, one multi-row statement per batch: as they are, or
    through the mapping onto an operator's table of another shape.
    """

    def __init__(self, statement: str, sqlite: bool, mapping: TableMap | None = None) -> None:
        self.mapping = mapping
        self.project = None if mapping is None or mapping.identity else mapping.project
        self.statement = statement
        self._multi = None if sqlite else MultiRowInsert(statement)

    def __call__(self, txn: Any, entries: list[Entry]) -> None:
        project = self.project
        encoded: list[bytes | None] | None = None
        if project is None:
            rows = list(map(_valuesOf, entries))
            encoded = list(map(_encodedOf, entries))
        else:
            rows = [project(entry.values) for entry in entries]
        if self._multi is None:
            txn.executemany(self.statement, rows)
        else:
            self._multi(txn, rows, None if encoded is None or None in encoded else encoded)

    def one(self, txn: Any, values: tuple[Any, ...]) -> None:
        """One row (a rejected row put back)."""
        txn.execute(self.statement, values if self.project is None else self.project(values))


def writerFor(database: Any, kind: str) -> RowWriter:
    """
    The writer of C{kind}'s rows on C{database}, as its last schema check decided;
    L{TableError} (or the error that kept the check from deciding) when it has not.
    """
    sqlite = database.engine == "sqlite"
    spec = MAPPED.get(kind)
    if spec is None:
        if kind != ChatRow.KIND:
            raise TableError(f"no table for rows of kind {kind!r}")
        return RowWriter(database.sql(INSERT_CHAT_LOGS), sqlite)
    mapping = database.tables.get(spec.name)
    if mapping is None:
        error = database.tableErrors.get(spec.name)
        raise error if error is not None else TableError(f"{spec.name} is not checked yet")
    return RowWriter(database.sql(mapping.insertSql()), sqlite, mapping)


class AlreadyCommitted(Exception):
    """The batch's record is in the database already: its rows up to lastSeq are too."""

    def __init__(self, lastSeq: int | None = None) -> None:
        super().__init__(lastSeq)
        self.lastSeq = lastSeq


def writeBatch(
    txn: Any,
    batchStatement: str,
    batchKey: tuple[str, int, int, int],
    statements: dict[str, RowWriter],
    rowsByKind: dict[str, list[Entry]],
    endStatement: str | None = None,
) -> None:
    """Runs in a pool thread: the batch record and its rows, one transaction."""
    try:
        txn.execute(batchStatement, batchKey)
    except Exception as e:
        if isDuplicateKey(e):
            # The recorded batch may be shorter than this one (a retry after a lost
            # COMMIT may carry more rows): only its own range is done.
            lastSeq = None
            if endStatement is not None:
                txn.execute(endStatement, batchKey[:2])
                found = txn.fetchone()
                lastSeq = int(found[0]) if found else None
            raise AlreadyCommitted(lastSeq)
        raise
    for kind, entries in rowsByKind.items():
        statements[kind](txn, entries)


def addSchema(database: Database) -> None:
    """The chat log's own tables (batch records) and the mapped ones (ping monitor)."""
    database.addSchema(MYSQL_BATCHES, SQLITE_BATCHES)
    for spec in MAPPED.values():
        database.addTable(spec)

def readCommitted(txn: Any, statement: str, journalId: str) -> int:
    txn.execute(statement, (journalId,))
    row = txn.fetchone()
    return int(row[0]) if row and row[0] is not None else 0


class BatchWriter:
    """
    Writes batches of journal entries to one database: the batch record and its
    rows in one transaction, each kind through the writer its table's last schema
    check decided on.
    """

    def __init__(self, database: Any) -> None:
        self.database = database
        self._writers: dict[str, RowWriter] = {}
        self._batchStatement = database.sql(INSERT_BATCH)
        self._endStatement = database.sql(SELECT_BATCH_END)
        addSchema(database)

    def committed(self, journalId: str) -> defer.Deferred[int]:
        """The last seq of C{journalId} the database has (0 for none)."""
        return self.database.runInteraction(
            readCommitted, self.database.sql(SELECT_COMMITTED), journalId
        )

    def write(self, journalId: str, batch: list[Entry]) -> defer.Deferred[None]:
        """
        One transaction for C{batch}; fails with L{AlreadyCommitted} when its record
        is there already. Raises at once when a kind's table is not decided yet.
        """
        kinds = set(map(_kindOf, batch))
        rowsByKind: dict[str, list[Entry]]
        if len(kinds) == 1:
            # A log's batch holds its own kind (older journals may mix them).
            rowsByKind = {kinds.pop(): batch}
        else:
            rowsByKind = {}
            for entry in batch:
                rowsByKind.setdefault(entry.kind, []).append(entry)
        key = (journalId, batch[0].seq, batch[-1].seq, len(batch))
        writers = {kind: self._writer(kind) for kind in rowsByKind}
        return self.database.runInteraction(
            writeBatch, self._batchStatement, key, writers, rowsByKind, self._endStatement,
        )

    def markDone(self, journalId: str, seq: int) -> defer.Deferred[None]:
        """A record with no rows: C{seq} counts as written (its row was set aside)."""
        key = (journalId, seq, seq, 0)
        return self.database.runInteraction(
            writeBatch, self._batchStatement, key, {}, {}, self._endStatement
        )

    def tableName(self, kind: str) -> str:
        """The table C{kind}'s rows go to (as the last schema check decided)."""
        spec = MAPPED.get(kind)
        if spec is None:
            return TABLES.get(kind, kind)
        mapping = self.database.tables.get(spec.name)
        return mapping.table if mapping is not None else spec.name

    def _writer(self, kind: str) -> RowWriter:
        writer = self._writers.get(kind)
        spec = MAPPED.get(kind)
        if writer is None or (spec is not None
                              and self.database.tables.get(spec.name) is not writer.mapping):
            writer = self._writers[kind] = writerFor(self.database, kind)
        return writer
