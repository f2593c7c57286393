"""Rows the database refuses for good: found by splitting the refused batch, then set aside in rejected.jsonl."""

from __future__ import annotations

import fcntl
import json
import os
from datetime import datetime
from typing import Any

from kkobot.chatlog.journal import Entry
from kkobot.chatlog.rows import CLIENT_TIME_FORMAT
from kkobot.chatlog.sqlwriter import COLUMNS_BY_KIND, TABLES
from kkobot.db.errors import errorCode

# Rows the database refuses for good (bad values, a trigger's SIGNAL, ...): one JSON
# object per line, in the journal directory, so an operator can fix and re-insert them.
REJECTED_FILE = "rejected.jsonl"


def rejectedPath(journalDir: str) -> str:
    """Where the rows the database refused for good are kept, beside the journal."""
    return os.path.join(journalDir, REJECTED_FILE)


def rejectedLine(journalId: str, entry: Entry, error: BaseException, when: datetime) -> bytes:
    """One line of rejected.jsonl: where the row came from, its columns, and why."""
    names = COLUMNS_BY_KIND.get(entry.kind)
    columns: Any = dict(zip(names, entry.values)) if names else list(entry.values)
    record = {
        "time": when.strftime(CLIENT_TIME_FORMAT),
        "journal_id": journalId,
        "seq": entry.seq,
        "table": TABLES.get(entry.kind, entry.kind),
        "error": {"code": errorCode(error), "type": type(error).__name__,
                  "message": str(error.args[1]) if len(error.args) > 1 else str(error)},
        "row": columns,
    }
    return (json.dumps(record, ensure_ascii=False, default=str) + "\n").encode("utf-8")


def appendRejected(path: str, data: bytes) -> None:
    """Blocking (a worker thread): append and fsync before the row is marked done."""
    while True:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o600)
        # `kkobot-admin rejected import` moves the file away, then takes this lock:
        # holding it, and with the path still naming this file, the line cannot end
        # up in a file being imported.
        fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            if os.stat(path).st_ino == os.fstat(fd).st_ino:
                break
        except FileNotFoundError:
            pass
        os.close(fd)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)

