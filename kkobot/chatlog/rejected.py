"""Rows set aside in rejected.jsonl: read them back, and insert them once their cause is fixed."""

from __future__ import annotations

import fcntl
import json
import os
import time
from collections import Counter
from dataclasses import dataclass
from typing import Any, Sequence

from kkobot.chatlog.sqlwriter import COLUMNS_BY_KIND, INSERT_BATCH, TABLES, RowWriter, writerFor
from kkobot.db.pool import Database
from kkobot.db.errors import describeError, isDuplicateKey

KIND_BY_TABLE = {table: kind for kind, table in TABLES.items()}
# A file being imported: set-asides of a running server go to a new rejected.jsonl.
IMPORTING_SUFFIX = ".importing"


class RejectedFileError(Exception):
    """rejected.jsonl holds a line this version cannot read; the message says where."""


class StillRefused(Exception):
    """The database still refuses a row; nothing of the file was imported."""

    def __init__(self, row: RejectedRow, error: BaseException) -> None:
        super().__init__(row, error)
        self.row = row
        self.error = error


@dataclass(frozen=True)
class RejectedRow:
    """One line of rejected.jsonl: which journal row it was, its table and columns, and why."""

    journalId: str
    seq: int
    kind: str
    values: tuple[Any, ...]
    errorCode: int | None
    errorMessage: str
    time: str

    @property
    def table(self) -> str:
        return TABLES[self.kind]


def readRejected(path: str) -> list[RejectedRow]:
    """Every row of a rejected file, in order; L{RejectedFileError} on a line it cannot use."""
    rows = []
    with open(path, encoding="utf-8") as f:
        for number, text in enumerate(f, 1):
            if not text.strip():
                continue
            try:
                rows.append(_parse(json.loads(text)))
            except (ValueError, KeyError, TypeError) as e:
                raise RejectedFileError(f"{path} line {number}: {e or type(e).__name__}")
    return rows


def _parse(record: dict[str, Any]) -> RejectedRow:
    kind = KIND_BY_TABLE.get(record["table"])
    if kind is None:
        raise ValueError(f"unknown table {record['table']!r}")
    columns = COLUMNS_BY_KIND[kind]
    row = record["row"]
    # Only the table's own columns, by the names kkobot wrote: the file decides no SQL.
    if not isinstance(row, dict) or set(row) != set(columns):
        raise ValueError(f"the row does not have exactly the columns of {record['table']}")
    journalId, seq = record["journal_id"], record["seq"]
    if not isinstance(journalId, str) or type(seq) is not int or seq <= 0:
        raise ValueError("journal_id must be text and seq a positive number")
    error = record.get("error") or {}
    return RejectedRow(
        journalId=journalId,
        seq=seq,
        kind=kind,
        values=tuple(row[c] for c in columns),
        errorCode=error.get("code"),
        errorMessage=str(error.get("message", "")),
        time=str(record.get("time", "")),
    )


def summarize(path: str, rows: Sequence[RejectedRow]) -> str:
    """A few lines per file: rows by table and error, and when they were set aside."""
    if not rows:
        return f"{path}: no rows"
    lines = [f"{path}: {len(rows)} row(s), set aside {rows[0].time} .. {rows[-1].time}"]
    groups = Counter((r.table, r.errorCode, r.errorMessage) for r in rows)
    for (table, code, message), n in sorted(groups.items(), key=lambda g: -g[1]):
        lines.append(f"  {n} {table} row(s): error {code} {message}")
    return "\n".join(lines)


def importBatchKey(row: RejectedRow) -> tuple[str, int, int, int]:
    """
    The kb_chatlog_batches record that marks a row imported: its journal and the
    negative of its seq, a key the server never writes (journal seqs are positive),
    so re-importing a row, or a line repeated by a crash, finds it and skips it, and
    the server's watermark (MAX(last_seq)) is unchanged.
    """
    return (row.journalId, -row.seq, -row.seq, 1)


def importRows(txn: Any, rows: Sequence[RejectedRow], writers: dict[str, RowWriter],
               batchStatement: str) -> tuple[int, int]:
    """Runs in a pool thread, one transaction: (rows inserted, rows found already imported)."""
    inserted = already = 0
    for row in rows:
        try:
            txn.execute(batchStatement, importBatchKey(row))
        except Exception as e:
            if isDuplicateKey(e):
                already += 1
                continue
            raise
        try:
            writers[row.kind].one(txn, row.values)
        except Exception as e:
            raise StillRefused(row, e)
        inserted += 1
    return inserted, already


async def importRejected(db: Database, rows: Sequence[RejectedRow]) -> tuple[int, int]:
    """Insert C{rows} in one transaction; L{StillRefused} leaves the database as it was."""
    if not rows:
        return 0, 0
    # Each kind's table as the server writes it (an operator's own shape, mapped).
    writers = {kind: writerFor(db, kind) for kind in {row.kind for row in rows}}
    return await db.runInteraction(importRows, rows, writers, db.sql(INSERT_BATCH))


def takeForImport(path: str) -> str | None:
    """
    Move C{path} aside (to C{path}.importing) so a running server's next set-aside
    starts a new file, and wait for an append in progress to finish. Returns the
    moved file (or one a failed import left), None when there is nothing.
    """
    importing = path + IMPORTING_SUFFIX
    if not os.path.exists(importing):
        try:
            os.replace(path, importing)
        except FileNotFoundError:
            return None
    fd = os.open(importing, os.O_RDONLY | os.O_CLOEXEC)
    try:
        # appendRejected holds this lock while it writes, and re-checks the path
        # after taking it: once we hold it, no server writes into the moved file.
        fcntl.flock(fd, fcntl.LOCK_EX)
    finally:
        os.close(fd)
    return importing


def archive(importing: str) -> str:
    """Keep an imported file beside the journal, named by when it was imported."""
    directory = os.path.dirname(importing)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = os.path.join(directory, f"rejected-imported-{stamp}.jsonl")
    n = 1
    while os.path.exists(target):
        n += 1
        target = os.path.join(directory, f"rejected-imported-{stamp}-{n}.jsonl")
    os.replace(importing, target)
    return target


def refusalText(e: StillRefused) -> str:
    return (f"the database still refuses {e.row.table} row seq {e.row.seq} of journal "
            f"{e.row.journalId} ({describeError(e.error)}: {e.error}); nothing was imported")
