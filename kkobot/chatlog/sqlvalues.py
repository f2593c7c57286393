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


def jsonRowsLiteral(payloads: Sequence[bytes]) -> bytes | None:
    """
    C{(v1,v2,...),(v1,v2,...)} made from the rows' JSON arrays as the journal holds
    them, each without its brackets (str, int, float, bool and null values;
    UTF-8), with a few C-level
    replaces instead of a Python call per value. None when a row holds an escape
    MySQL reads differently (C{\\uXXXX}: NUL, ^Z, other controls, or C{\\f}); those take
    L{rowLiteral}.

    JSON escapes C{\\" \\\\ \\b \\n \\r \\t} mean the same inside a MySQL string
    (without NO_BACKSLASH_ESCAPES); a C{'} is never escaped in JSON and is here; the
    double quotes around strings become single quotes; C{null}, C{true}, C{false}
    are MySQL keywords as they stand.
    """
    body = b"),(".join(payloads)
    backslash = b"\\" in body
    if backslash and (b"\\u" in body or b"\\f" in body):
        return None
    if backslash:
        # Raw bytes below 0x20 never occur in JSON text: safe placeholders for
        # escaped backslashes and quotes while the delimiters are swapped.
        body = body.replace(b"\\\\", b"\x00").replace(b'\\"', b"\x01")
    body = body.replace(b"'", b"\\'").replace(b'"', b"'")
    if backslash:
        body = body.replace(b"\x01", b'\\"').replace(b"\x00", b"\\\\")
    return b"(" + body + b")"


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

    def __call__(
        self, txn: Any, rows: Sequence[Sequence[Any]], encoded: Sequence[bytes] | None = None
    ) -> int:
        """
        Insert C{rows}; C{encoded}, when given, holds each row's JSON array without
        its brackets (L{kkobot.chatlog.journal.Entry.encoded}), which makes the statement
        without a Python call per value.
        """
        if not rows:
            return 0
        conn = txn.connection
        if conn.server_status & SERVER_STATUS.SERVER_STATUS_NO_BACKSLASH_ESCAPES:
            return txn.executemany(self.statement, rows)
        encoding = conn.encoding
        literal = conn.escape
        limit = txn.max_stmt_length
        prefix = self.prefix.encode(encoding)
        if encoded is not None and encoding == "utf8":
            count = self._fromJson(txn, prefix, encoded, limit)
            if count is not None:
                return count
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

    def _fromJson(self, txn: Any, prefix: bytes, encoded: Sequence[bytes], limit: int) -> int | None:
        """
        The rows from their journal bytes (L{jsonRowsLiteral}), a batch whose statement
        would pass C{limit} cut in halves until each fits (long texts in a large batch
        stay off the per-value path); None when a row needs L{rowLiteral}.
        """
        values = jsonRowsLiteral(encoded)
        if values is None:
            return None
        if len(prefix) + len(values) <= limit or len(encoded) == 1:
            return txn.execute(prefix + values)
        # A part of rows that need no rowLiteral needs none either.
        half = len(encoded) // 2
        first = self._fromJson(txn, prefix, encoded[:half], limit)
        rest = self._fromJson(txn, prefix, encoded[half:], limit)
        assert first is not None and rest is not None
        return first + rest
