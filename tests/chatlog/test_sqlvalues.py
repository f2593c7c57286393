"""The hand-built multi-row INSERT: same literals as PyMySQL, exact round trips through MariaDB."""

from __future__ import annotations

from datetime import datetime

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from kkobot.chatlog.rows import COLUMNS, INSERT_CHAT_LOGS
from kkobot.db.pool import MYSQL_CHAT_LOGS
from kkobot.chatlog.journal import encodeValues
from kkobot.chatlog.sqlvalues import MultiRowInsert, jsonRowsLiteral, rowLiteral
from tests.support.fuzzing import FUZZ
from tests.support import ScratchMysql, mysqlConnect

NASTY = [
    "it's",
    'say "hi"',
    "back\\slash\\",
    "\\'; DROP TABLE kb_chat_logs; --",
    "nul\x00byte",
    "ctrl-z\x1a and \r\n and \t",
    "emoji 🎉👍🏽 and 한글 ㅋㅋ",
    "%s %(x)s %%",
    "",
]
SELECT = f"SELECT {', '.join(COLUMNS)} FROM kb_chat_logs ORDER BY id"


def chatRow(message: str, **over: object) -> tuple:
    row = {
        "channel_id": "9000", "user_hash": "u'1", "room_name": None, "sender": "s\\1",
        "message": message, "directive": None, "message_type": "normal",
        "is_meaningful": 1, "bot_name": "bench", "is_mention": 0, "is_group_chat": 1,
        "log_id": None, "client_timestamp": "2024-02-29 23:59:59",
        "server_timestamp": "2026-01-02 03:04:05", "is_bot": 0,
        "is_our_bot_response": 0, "is_scheduled": 0,
    }
    row.update(over)
    return tuple(row[c] for c in COLUMNS)


class LiteralTests(SynchronousTestCase):
    """rowLiteral gives what the connection's own escape gives, value for value."""

    def setUp(self) -> None:
        ScratchMysql(create=False)  # skips without a server
        self.conn = mysqlConnect()
        self.addCleanup(self.conn.close)

    def test_sameAsPyMySQL(self) -> None:
        values = NASTY + [chr(c) for c in range(128)] + ["".join(map(chr, range(128))), None, 0, -7, 2**63 - 1,
                          1.5, True, datetime(2024, 1, 2, 3, 4, 5, 600)]
        expected = "(" + ",".join(self.conn.escape(v) for v in values) + ")"
        self.assertEqual(rowLiteral(values, self.conn.escape), expected)


class RoundTripTests(SynchronousTestCase):
    """Rows written by MultiRowInsert read back exactly as they were given."""

    def setUp(self) -> None:
        self.db = ScratchMysql()
        self.addCleanup(self.db.drop)
        self.db.execute(self.db.name, MYSQL_CHAT_LOGS)
        self.conn = mysqlConnect(self.db.name)
        self.addCleanup(self.conn.close)
        self.insert = MultiRowInsert(INSERT_CHAT_LOGS)

    def roundTrip(
        self, rows: list[tuple], maxLength: int | None = None, encoded: list[bytes] | None = None
    ) -> list[tuple]:
        with self.conn.cursor() as cur:
            if maxLength is not None:
                cur.max_stmt_length = maxLength
            self.assertEqual(self.insert(cur, rows, encoded), len(rows))
        return self.db.query(SELECT)

    def asRead(self, row: tuple) -> tuple:
        # Times come back as datetimes; everything else as given.
        out = list(row)
        for name in ("client_timestamp", "server_timestamp"):
            i = COLUMNS.index(name)
            if isinstance(out[i], str):
                out[i] = datetime.strptime(out[i], "%Y-%m-%d %H:%M:%S")
        return tuple(out)

    def test_nastyValues(self) -> None:
        rows = [chatRow(m) for m in NASTY]
        rows.append(chatRow("times as datetimes", client_timestamp=datetime(2020, 5, 6, 7, 8, 9),
                            server_timestamp=datetime(2021, 1, 1, 0, 0, 0)))
        rows.append(chatRow("nulls", room_name=None, sender=None, client_timestamp=None,
                            log_id=None, directive=None))
        self.assertEqual(self.roundTrip(rows), [self.asRead(r) for r in rows])

    def test_splitAtStatementLength(self) -> None:
        # Like executemany: a statement past max_stmt_length is cut between rows,
        # and every row lands once, in order.
        rows = [chatRow(f"row {i} '\\ 🎉") for i in range(40)]
        self.assertEqual(self.roundTrip(rows, maxLength=1000), [self.asRead(r) for r in rows])

    def test_noBackslashEscapes(self) -> None:
        # In this mode a backslash is literal: the connection's own quoting is used.
        with self.conn.cursor() as cur:
            cur.execute("SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
        rows = [chatRow(m) for m in NASTY]
        self.assertEqual(self.roundTrip(rows), [self.asRead(r) for r in rows])

    def test_fromTheJournalsJson(self) -> None:
        # The rows' journal bytes make the statement; what MariaDB stores is the rows.
        texts = NASTY + ["\\u0041 is not an escape here", "\\f\\b\\n", "\b\f\x7f", "a\\\"b'c\\"]
        rows = [chatRow(m) for m in texts]
        rows.append(chatRow("numbers and nulls", is_meaningful=0, log_id=None, room_name=None))
        encoded = [encodeValues(r)[1:-1] for r in rows]
        self.assertEqual(self.roundTrip(rows, encoded=encoded), [self.asRead(r) for r in rows])

    def test_jsonPathTakesQuotesAndBackslashes(self) -> None:
        # The round trips above go through the JSON path for these, not the fallback.
        for text in ["it's", 'say "hi"', "back\\slash\\", "\\'; DROP TABLE x; --", "\t\r\n",
                     "emoji 🎉 한글", 'a\\"b', "\\\\\""]:
            self.assertIsNotNone(jsonRowsLiteral([encodeValues(chatRow(text))[1:-1]]), text)
        # What MySQL would read differently goes to rowLiteral instead.
        for text in ["nul\x00", "ctrl-z\x1a", "form\x0cfeed", "\x01"]:
            self.assertIsNone(jsonRowsLiteral([encodeValues(chatRow(text))[1:-1]]), repr(text))

    def test_jsonPathSplitsLikeTheRest(self) -> None:
        # Past max_stmt_length the statement is cut between rows, as without the bytes.
        rows = [chatRow(f"row {i} '\\ 🎉") for i in range(40)]
        encoded = [encodeValues(r)[1:-1] for r in rows]
        self.assertEqual(self.roundTrip(rows, maxLength=1000, encoded=encoded),
                         [self.asRead(r) for r in rows])

    @FUZZ
    @given(st.lists(st.text(max_size=40), min_size=1, max_size=8))
    def test_anyTextFromTheJournalsJson(self, texts: list[str]) -> None:
        with self.conn.cursor() as cur:
            cur.execute("DELETE FROM kb_chat_logs")
        rows = [chatRow(t, sender=t[:100], room_name=t) for t in texts]
        encoded = [encodeValues(r)[1:-1] for r in rows]
        self.assertEqual(self.roundTrip(rows, encoded=encoded), [self.asRead(r) for r in rows])

    def test_empty(self) -> None:
        self.assertEqual(self.roundTrip([]), [])
