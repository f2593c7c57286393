"""Client text in the log: clipped and escaped, so it can neither flood nor forge log lines."""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from kkobot import logs
from kkobot.logs import MAX_FIELD_CHARS, FileLogService, Logger, clean
from tests.support.authrig import Rig, signedAuth
from tests.support import HELLO_320, analyze, captureLogs, logText, tempDir

HOSTILE = "ok\rFAKE [AUTH] admin logged in\x1b[2J\x1b]0;title\x07\u2028line\u202eevil\u2066\x85\x00"


class CleanTests(SynchronousTestCase):
    def test_control_and_format_characters_are_escaped(self) -> None:
        text = clean(HOSTILE + "\n\t")
        for raw in ("\r", "\x1b", "\x07", "\u2028", "\u202e", "\u2066", "\x85", "\x00", "\n", "\t"):
            self.assertNotIn(raw, text)
        self.assertIn("\\r", text)
        self.assertIn("\\x1b[2J", text)
        self.assertIn("\\u2028", text)
        self.assertIn("\\u202e", text)
        self.assertEqual(clean("홍길동 😀 [방]"), "홍길동 😀 [방]")

    def test_long_fields_are_clipped(self) -> None:
        text = clean("a" * 1_000_000)
        self.assertLess(len(text), MAX_FIELD_CHARS + 40)
        self.assertIn(f"+{1_000_000 - MAX_FIELD_CHARS} chars", text)


class LoggerTests(SynchronousTestCase):
    def test_every_string_field_is_made_safe(self) -> None:
        events = captureLogs(self)
        Logger().info("[CLIENT] {bot} from {address}", bot=HOSTILE + "b" * 5000, address="1.2.3.4")
        text = logText(events)
        self.assertNotIn("\r", text)
        self.assertNotIn("\x1b", text)
        self.assertNotIn("\u2028", text)
        self.assertLess(len(text), MAX_FIELD_CHARS + 100)

    def test_debug_fields_too(self) -> None:
        events = captureLogs(self)
        logs.setLevel("debug")
        self.addCleanup(logs.setLevel, "info")
        Logger().debug("[MSG] {text}", text="a\x1b[31mb")
        self.assertIn("a\\x1b[31mb", logText(events))


class ServerLogTests(SynchronousTestCase):
    """Findings 5 and 10 over the protocol, into logs/server.log."""

    def setUp(self) -> None:
        self.directory = tempDir(self)
        self.service = FileLogService(self.directory)
        self.service.startService()
        self.addCleanup(self.service.stopService)
        self.rig = Rig()
        self.addCleanup(self.rig.close)

    def serverLog(self) -> str:
        self.service._file.flush()
        with open(os.path.join(self.directory, "server.log"), encoding="utf-8") as f:
            return f.read()

    def test_client_fields_cannot_forge_lines(self) -> None:
        hello = {**HELLO_320, "botName": "kkobot\rFAKE", "version": "3.2\x1b[2J",
                 "deviceID": "dev\u2028ice"}
        conn = self.rig.connect(hello=hello)
        conn.send(analyze("# echo", botName="kkobot\rFAKE",
                          auth=signedAuth(secret="wrong", botName="kkobot\rFAKE")))
        text = self.serverLog()
        self.assertIn("kkobot\\rFAKE", text)
        self.assertIn("3.2\\x1b[2J", text)
        self.assertIn("dev\\u2028ice", text)
        for raw in ("\r", "\x1b", "\u2028"):
            self.assertNotIn(raw, text)
        # Every line is an event of ours or its continuation: nothing starts a fake one.
        for line in text.splitlines():
            self.assertTrue(line.startswith(("20", "19", "\t")), line)

    def test_connections_with_huge_fields_log_little(self) -> None:
        # Before the fix about 110 such connections rotated away all of server.log.
        before = len(self.serverLog())
        for i in range(20):
            conn = self.rig.connect(address=f"203.0.113.{i % 250}")
            # Under the line limit, so the handshake itself is read.
            conn.send({**HELLO_320, "version": "v" * 100_000, "deviceInfo": "i" * 100_000,
                       "deviceIP": "1" * 100_000})
            conn.send({**HELLO_320, "botName": "b" * 100_000})
            conn.send({**HELLO_320, "event": "x" * 100_000})
            conn.proto.connectionLost(None)
        grown = len(self.serverLog()) - before
        # Each connection: its connection, handshake and close lines, all clipped.
        self.assertLess(grown, 20 * 1000)

