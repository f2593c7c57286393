"""The server on a database that already holds the earlier servers' tables: rows land in them, they stay as they were."""

from __future__ import annotations

import re
from collections import Counter

from twisted.trial.unittest import TestCase

from tests.support.phones import authConfig, connectPhone, portOf, startService, stopService
from tests.support import ScratchMysql, captureLogs, logText, tempDir, waitUntil
from tests.db.test_tableshape import operatorStatements

OPERATOR_TABLES = ("kb_chat_logs", "kb_bot_devices", "kb_rooms", "kb_servers",
                   "kb_server_processes", "kb_ping_monitor", "kb_schedule", "kb_schedule_logs")
DEVICE = "5f3c2a1b9d8e7f60"


def operatorDatabase(testcase: TestCase) -> ScratchMysql:
    """A scratch database with kb_chat_logs and every table of tests/support/data/operator_tables.sql."""
    scratch = ScratchMysql()
    testcase.addCleanup(scratch.drop)
    scratch.createOperatorTable()
    for statement in operatorStatements():
        scratch.execute(scratch.name, statement)
    return scratch


def definitions(scratch: ScratchMysql) -> dict[str, str]:
    """SHOW CREATE TABLE of every operator table (the AUTO_INCREMENT counter aside: rows move it)."""
    return {
        table: re.sub(r" AUTO_INCREMENT=\d+", "", scratch.query(f"SHOW CREATE TABLE `{table}`")[0][1])
        for table in OPERATOR_TABLES
    }


class OperatorTablesEndToEnd(TestCase):
    timeout = 180

    async def test_messages_pings_and_device_go_to_the_tables_as_they_are(self) -> None:
        scratch = operatorDatabase(self)
        before = definitions(scratch)
        events = captureLogs(self)
        cfg = authConfig(autoApprove=True, server={"ping_interval": 0.2, "idle_timeout": 60})
        service = startService(scratch.settings(), tempDir(self), cfg)
        self.addCleanup(stopService, service)
        phone = await connectPhone(self, await portOf(service), DEVICE)
        answer = await phone.handshake()
        self.assertEqual((answer["success"], answer["approved"]), (True, True))
        for i in range(500):
            phone.say(f"# echo 첫 {i}")
        await waitUntil(lambda: len(phone.replies()) == 500, "500 replies", timeout=60)
        await waitUntil(lambda: phone.pingsAnswered >= 3, "the bridge to answer three pings")
        for i in range(100):
            phone.say(f"# echo 둘 {i}")
        await waitUntil(lambda: len(phone.replies()) == 600, "100 more replies", timeout=60)
        self.assertEqual(phone.replies()[:2], ["에코: 첫 0", "에코: 첫 1"])
        await phone.close()
        await waitUntil(lambda: not service.factory.connections, "the server to see the close")
        self.assertTrue(await service.chatlog.flush())
        await stopService(service)

        expected = Counter()
        for prefix, count in (("첫", 500), ("둘", 100)):
            for i in range(count):
                expected[f"# echo {prefix} {i}"] += 1
                expected[f"에코: {prefix} {i}"] += 1
        stored = Counter(m for (m,) in scratch.query("SELECT message FROM kb_chat_logs"))
        self.assertEqual(stored, expected)

        pings = scratch.query(
            "SELECT bot_name, device_id, response_time_ms, status, ping_time IS NOT NULL "
            "FROM kb_ping_monitor")
        self.assertEqual(len(pings), phone.pingsAnswered)
        for bot, device, rtt, status, timed in pings:
            self.assertEqual((bot, device, status, timed), ("kkobot", DEVICE, "success", 1))
            self.assertIsNotNone(rtt)
            self.assertGreaterEqual(rtt, 0)

        devices = scratch.query(
            "SELECT bot_name, device_id, status, ip_address, client_type, client_version, "
            "approved_at IS NOT NULL, updated_at IS NOT NULL FROM kb_bot_devices")
        self.assertEqual(devices, [("kkobot", DEVICE, "approved", "127.0.0.1", "MessengerBotR",
                                    "3.2.0", 1, 1)])

        self.assertEqual(definitions(scratch), before)
        self.assertEqual(scratch.query("SHOW TABLES LIKE 'kkobot%'"), [])
        text = logText(events)
        self.assertIn("[DB] kb_ping_monitor: writing ping rows to the existing table's columns", text)
        self.assertIn("rtt_ms -> response_time_ms", text)
        self.assertNotIn("Unknown column", text)
        self.assertNotIn("could not record", text)
