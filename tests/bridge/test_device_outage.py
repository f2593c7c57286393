"""Phones while MySQL is down: known ones answered from the local file, new ones by auto_approve, recorded later."""

from __future__ import annotations

import os
import stat
import uuid
from collections import Counter

from twisted.internet import defer, reactor, task
from twisted.trial.unittest import TestCase

from kkobot.admin import cli as admincli
from kkobot.config import DBSettings
from kkobot.db.pool import Database
from tests.support import mariadb
from tests.support.mariadb import privateMariaDB
from tests.support.phones import authConfig, connectPhone, portOf, startService, stopService, waitForRows
from tests.support import KB_CHAT_LOGS_SQL, captureLogs, logText, tempDir, waitUntil
from tests.db.test_tableshape import operatorStatements

KNOWN = [f"known-{i:02d}-{uuid.uuid4().hex[:8]}" for i in range(20)]
NEW = [f"new-{i}-{uuid.uuid4().hex[:8]}" for i in range(5)]


def sleep(seconds: float) -> defer.Deferred[None]:
    return task.deferLater(reactor, seconds, lambda: None)


class OutageTestBase(TestCase):
    timeout = 240

    def setUp(self) -> None:
        self.db = privateMariaDB()
        self.name = f"kkobot_o_{uuid.uuid4().hex[:10]}"
        conn = self.db.connect()
        try:
            with conn.cursor() as cur:
                cur.execute(f"CREATE DATABASE `{self.name}` CHARACTER SET utf8mb4")
                cur.execute(f"USE `{self.name}`")
                with open(KB_CHAT_LOGS_SQL, encoding="utf-8") as f:
                    ddl = "\n".join(l for l in f.read().splitlines() if not l.startswith("--"))
                cur.execute(ddl.strip().rstrip(";"))
                for statement in operatorStatements():
                    cur.execute(statement)
        finally:
            conn.close()
        self.settings = DBSettings(engine="mysql", host="127.0.0.1", port=self.db.port,
                                   user="root", password="", name=self.name)
        self.var = tempDir(self)
        self.addCleanup(self.ensureRunning)

    def ensureRunning(self) -> None:
        if not self.db.running:
            self.db.start()

    def query(self, statement: str, *args: object) -> list[tuple]:
        return self.db.query(self.name, statement, *args)

    def messages(self) -> Counter:
        return Counter(m for (m,) in self.query("SELECT message FROM kb_chat_logs"))

    def deviceTable(self, service) -> dict:
        return {t["kind"]: t for t in service.chatlog.tables()}["device"]

    async def connect(self, service, device: str):
        return await connectPhone(self, await portOf(service), device)


class KnownAndNewPhonesDuringAnOutage(OutageTestBase):
    async def test_all_answered_and_every_message_stored_once_after_mysql_returns(self) -> None:
        cfg = authConfig(autoApprove=True)
        service = startService(self.settings, self.var, cfg)
        self.addCleanup(stopService, service)
        await waitUntil(lambda: service.chatlog.ready, "the chat log")
        phones = [await self.connect(service, device) for device in KNOWN]
        for i, phone in enumerate(phones):
            self.assertTrue((await phone.handshake())["approved"])
            await phone.echo(f"전 {i}")
        await waitForRows(lambda: self.query("SELECT COUNT(*) FROM kb_bot_devices")[0][0] == 20,
                          "20 devices recorded")
        await stopService(service)
        stateFile = os.path.join(self.var, "devices", "test.json")
        self.assertEqual(stat.S_IMODE(os.stat(stateFile).st_mode), 0o600)
        self.assertFalse(os.path.exists(stateFile + ".tmp"))

        # MySQL goes away; the server restarts during the outage.
        self.db.stop()
        events = captureLogs(self)
        service = startService(self.settings, self.var, cfg)
        self.addCleanup(stopService, service)
        phones = [await self.connect(service, device) for device in KNOWN]
        newPhones = [await self.connect(service, device) for device in NEW]
        for phone in phones + newPhones:
            answer = await phone.handshake()
            self.assertEqual((answer["success"], answer["approved"]), (True, True), phone.device)
        for i, phone in enumerate(phones):
            await phone.echo(f"중 기존 {i}")
        for i, phone in enumerate(newPhones):
            await phone.echo(f"중 새 {i}")
        self.assertTrue(all(p.connected for p in phones + newPhones))
        # Every sighting (20 seen again, 5 new) waits to be recorded.
        await waitUntil(lambda: self.deviceTable(service)["waiting"] == 25, "25 devices waiting")
        self.assertEqual(self.deviceTable(service)["state"], "unavailable")

        self.db.start()
        await waitForRows(lambda: self.query("SELECT COUNT(*) FROM kb_bot_devices")[0][0] == 25,
                          "the 5 new devices recorded", timeout=60)
        await waitUntil(lambda: service.chatlog.ready and service.chatlog.backlog == 0,
                        "the journaled rows written", timeout=60)
        await stopService(service)

        expected = Counter()
        for i in range(20):
            expected.update([f"# echo 전 {i}", f"에코: 전 {i}", f"# echo 중 기존 {i}",
                             f"에코: 중 기존 {i}"])
        for i in range(5):
            expected.update([f"# echo 중 새 {i}", f"에코: 중 새 {i}"])
        self.assertEqual(self.messages(), expected)
        statuses = dict(self.query("SELECT device_id, status FROM kb_bot_devices"))
        self.assertEqual(statuses, {device: "approved" for device in KNOWN + NEW})
        text = logText(events)
        self.assertIn("20 device status(es) from", text)
        self.assertNotIn("server error", text)


class NewPhonesHeldPendingUntilMysqlReturns(OutageTestBase):
    async def test_held_open_then_decided(self) -> None:
        # Approved by an operator (or another server) before this server ever ran.
        self.query(
            "INSERT INTO kb_bot_devices (bot_name, device_id, status) VALUES ('kkobot', %s, 'approved')",
            NEW[0])
        self.db.stop()
        service = startService(self.settings, self.var, authConfig(autoApprove=False))
        self.addCleanup(stopService, service)
        phones = [await self.connect(service, device) for device in NEW]
        for i, phone in enumerate(phones):
            answer = await phone.handshake()
            self.assertEqual((answer["success"], answer["approved"]), (True, False), phone.device)
            phone.say(f"# echo 보류 {i}")
        await sleep(0.5)
        self.assertEqual([p.replies() for p in phones], [[]] * 5)
        self.assertTrue(all(p.connected for p in phones))

        self.db.start()
        # The device the table already knew as approved is decided by it.
        notice = await phones[0].waitFor(
            lambda e: e["event"] == "handshakeComplete" and e["data"]["approved"], timeout=60)
        self.assertTrue(notice["data"]["success"])
        await phones[0].echo("승인 후 0")
        # The others are recorded as pending, as auth.auto_approve off says.
        await waitForRows(
            lambda: self.query("SELECT COUNT(*) FROM kb_bot_devices WHERE status = 'pending'")[0][0] == 4,
            "4 pending devices recorded", timeout=60)
        adminDb = Database(self.settings)
        self.addCleanup(adminDb.close)
        args = admincli.parser().parse_args(["devices", "approve", "kkobot", NEW[1]])
        self.assertIn("approved", await admincli.run(args, adminDb, reactor))
        await phones[1].waitFor(
            lambda e: e["event"] == "handshakeComplete" and e["data"]["approved"], timeout=30)
        await phones[1].echo("승인 후 1")
        self.assertEqual([p.replies() for p in phones[2:]], [[]] * 3)
        self.assertTrue(all(p.connected for p in phones))
        await waitUntil(lambda: service.chatlog.ready and service.chatlog.backlog == 0,
                        "the journaled rows written", timeout=60)
        await stopService(service)
        expected = Counter(f"# echo 보류 {i}" for i in range(5))
        expected.update(["# echo 승인 후 0", "에코: 승인 후 0", "# echo 승인 후 1", "에코: 승인 후 1"])
        self.assertEqual(self.messages(), expected)
        approvedAt = self.query("SELECT approved_at IS NOT NULL FROM kb_bot_devices WHERE device_id = %s",
                                NEW[1])
        self.assertEqual(approvedAt, [(1,)])


def tearDownModule() -> None:
    mariadb.shutdown()
