"""Multi-row INSERTs for PyMySQL with each value escaped once, the way PyMySQL would."""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from pymysql.constants import SERVER_STATUS

# PyMySQL's escape_string table (converters._escape_table), spelled out so a change
# there cannot slip by: tests compare the two over every character that matters.
_ESCAPES = {0: "\\0", 10: "\\n", 13: "\\r", 26: "\\Z", 34: '\\"', 39: "\\'", 92: "\\\\"}
# str.translate with a dict looks every character up; most values need nothing, and
# one regex scan tells which do.
_NEEDS_ESCAPE = re.compile("[\x00\n\r\x1a\"'\\\\]").search


def rowLiteral(values: Sequence[Any], literal: Callable[[Any], str]) -> str:
    """
    C{(v1,v2,...)} for one row: str, None and int inline (the column types of our
    rows), anything else (float, bool, datetime, bytes) through C{literal}, the
    connection's own escape.
    """
    escapes = _ESCAPES
    needsEscape = _NEEDS_ESCAPE
    return "(" + ",".join([
        ("'" + v.translate(escapes) + "'" if needsEscape(v) else "'" + v + "'")
        if type(v) is str
        else "NULL" if v is None
        else int.__repr__(v) if type(v) is int
        else literal(v)
        for v in values
    ]) + ")"


class MultiRowInsert:
    """
    C{INSERT INTO table (columns) VALUES (...),(...)} for a list of rows, split where
    PyMySQL's executemany would split it (C{Cursor.max_stmt_length} bytes).

    PyMySQL's executemany sends the same statements but formats every value through
    several Python calls; here the common types take one C{str.translate} each. On a
    connection in NO_BACKSLASH_ESCAPES mode (where quoting differs) it is executemany.
    """

    def __init__(self, statement: str) -> None:
        self.statement = statement
        self.prefix = statement[: statement.index(" VALUES ") + len(" VALUES ")]

    def __call__(self, txn: Any, rows: Sequence[Sequence[Any]]) -> int:
        if not rows:
            return 0
        conn = txn.connection
        if conn.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES:
            return txn.executemany(self.statement, rows)
        encoding = conn.encoding
        literal = conn.escape
        limit = txn.max_stmt_length
        prefix = self.prefix.encode(encoding)
        sql = bytearray(prefix)
        count = 0
        first = True
        for row in rows:
            value = rowLiteral(row, literal).encode(encoding)
            if first:
                first = False
            elif len(sql) + len(value) + 1 > limit:
                count += txn.execute(sql)
                sql = bytearray(prefix)
            else:
                sql += b","
            sql += value
        count += txn.execute(sql)
        return count
