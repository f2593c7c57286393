"""A table that refuses its rows (chat, ping, device) holds back only its own kind; the others keep flowing."""

from __future__ import annotations

from collections import Counter

from twisted.trial.unittest import TestCase
from twisted.web.template import flattenString, tags

from kkobot.admin.web.health import readiness
from kkobot.admin.web.status import chatlogTiles
from tests.support.phones import (
    Phone,
    authConfig,
    connectPhone,
    portOf,
    startService,
    stopService,
    waitForRows,
)
from tests.support import captureLogs, logText, tempDir, waitUntil
from tests.chatlog.test_operator_tables import operatorDatabase

# kkobot cannot fill a NOT NULL column without a default: the table refuses every row
# (MySQL 1364), as when an operator adds such a column while the server runs.
REFUSE = "ALTER TABLE `{table}` ADD COLUMN `required_note` varchar(10) NOT NULL"
FIX = "ALTER TABLE `{table}` ALTER COLUMN `required_note` SET DEFAULT ''"
# A table of kkobot's own name that is not kkobot's: the rows have nowhere else to go.
NO_FALLBACK = "CREATE TABLE `{table}` (`unrelated` int NOT NULL)"


class Listening:
    numPorts = 1


class IsolationTestBase(TestCase):
    timeout = 180

    async def serve(self, autoApprove: bool = True) -> tuple[object, Phone]:
        self.scratch = operatorDatabase(self)
        self.events = captureLogs(self)
        # Frequent pings; the idle timeout stays long, since the test's own (blocking)
        # ALTER TABLEs hold up the reactor the server shares.
        cfg = authConfig(autoApprove=autoApprove,
                         server={"ping_interval": 0.1, "idle_timeout": 60},
                         chatlog={"flush_interval": 0.01})
        self.service = startService(self.scratch.settings(), tempDir(self), cfg)
        self.addCleanup(stopService, self.service)
        await waitUntil(lambda: self.service.chatlog.ready, "the logs to be ready")
        self.port = await portOf(self.service)
        phone = await connectPhone(self, self.port, "phone-a")
        self.assertTrue((await phone.handshake())["approved"])
        await phone.echo("시작")
        return self.service, phone

    def sql(self, statement: str) -> None:
        self.scratch.execute(self.scratch.name, statement)

    def count(self, table: str, where: str = "") -> int:
        """Rows of C{table} (0 while it does not exist)."""
        if not self.scratch.query("SHOW TABLES LIKE %s", table):
            return 0
        return self.scratch.query(f"SELECT COUNT(*) FROM `{table}` {where}")[0][0]

    def tables(self) -> dict[str, dict]:
        return readiness(Listening(), self.service.chatlog)["tables"]

    def messages(self) -> Counter:
        return Counter(m for (m,) in self.scratch.query("SELECT message FROM kb_chat_logs"))

    async def pingsFlow(self, phone: Phone) -> None:
        """Pings answered from now on reach kb_ping_monitor."""
        before = self.count("kb_ping_monitor")
        await waitForRows(lambda: self.count("kb_ping_monitor") >= before + 3, "ping rows")

    async def chatFlows(self, phone: Phone, tag: str) -> None:
        await phone.echo(tag)
        await waitForRows(lambda: self.messages()[f"에코: {tag}"] == 1, f"the rows of {tag}")

    async def newDeviceRecorded(self, device: str) -> Phone:
        phone = await connectPhone(self, self.port, device)
        self.assertTrue((await phone.handshake())["approved"])
        await phone.echo(f"{device} 인사")
        await waitForRows(
            lambda: self.count("kb_bot_devices", f"WHERE device_id = '{device}'") == 1,
            f"device {device} recorded")
        return phone

    async def stopAndCountPings(self, phones: list[Phone]) -> int:
        for phone in phones:
            await phone.close()
        await waitUntil(lambda: not self.service.factory.connections, "the connections to close")
        self.assertTrue(await self.service.chatlog.flush())
        await stopService(self.service)
        return sum(p.pingsAnswered for p in phones)


class ChatRefused(IsolationTestBase):
    async def test_pings_and_devices_flow_while_chat_rows_wait_then_chat_rows_once(self) -> None:
        service, phone = await self.serve()
        self.sql(REFUSE.format(table="kb_chat_logs"))
        for i in range(50):
            phone.say(f"# echo 거부 중 {i}")
        await waitUntil(lambda: len(phone.replies()) == 51, "answers while chat rows wait")
        await waitUntil(lambda: self.tables()["chat"]["state"] == "refused", "chat refused")
        self.assertIn("kb_chat_logs", readiness(Listening(), service.chatlog)["tables_refused"])
        self.assertGreaterEqual(self.tables()["chat"]["waiting"], 100)
        await self.pingsFlow(phone)
        other = await self.newDeviceRecorded("phone-b")
        self.assertEqual(self.messages()["# echo 거부 중 0"], 0)
        self.assertEqual(self.tables()["ping"]["state"], "ok")

        self.sql(FIX.format(table="kb_chat_logs"))
        await waitUntil(lambda: self.tables()["chat"]["state"] == "ok", "chat rows taken again",
                        timeout=30)
        pings = await self.stopAndCountPings([phone, other])
        expected = Counter(["# echo 시작", "에코: 시작", "# echo phone-b 인사", "에코: phone-b 인사"])
        for i in range(50):
            expected.update([f"# echo 거부 중 {i}", f"에코: 거부 중 {i}"])
        self.assertEqual(self.messages(), expected)
        self.assertEqual(self.count("kb_ping_monitor"), pings)


class PingRefused(IsolationTestBase):
    async def test_chat_and_devices_flow_while_ping_rows_wait_then_pings_once(self) -> None:
        service, phone = await self.serve()
        self.sql(NO_FALLBACK.format(table="kkobot_ping_monitor"))
        self.sql(REFUSE.format(table="kb_ping_monitor"))
        await waitUntil(lambda: self.tables()["ping"]["state"] == "refused", "ping refused",
                        timeout=30)
        refusedAt = self.count("kb_ping_monitor")
        for i in range(50):
            await self.chatFlows(phone, f"핑 거부 중 {i}") if i % 10 == 0 else phone.say(
                f"# echo 핑 거부 중 {i}")
        other = await self.newDeviceRecorded("phone-b")
        await waitUntil(lambda: self.tables()["ping"]["waiting"] >= 5, "ping rows waiting")
        self.assertEqual(self.count("kb_ping_monitor"), refusedAt)
        self.assertIn("kb_ping_monitor", readiness(Listening(), service.chatlog)["tables_refused"])
        tiles = (await flattenString(None, tags.div(*chatlogTiles(service.chatlog)))).decode()
        self.assertIn("핑 기록: 표가 행을 거부함", tiles)
        self.assertIn("정상", tiles)  # the chat log's own tile
        metrics = service.metrics.render().decode()
        self.assertIn('kkobot_table_up{kind="ping",state="refused",table="kb_ping_monitor"} 0.0',
                      metrics)
        self.assertIn('kkobot_table_up{kind="chat",state="ok",table="kb_chat_logs"} 1.0', metrics)

        self.sql(FIX.format(table="kb_ping_monitor"))
        await waitUntil(lambda: self.tables()["ping"]["state"] == "ok", "ping rows taken again",
                        timeout=30)
        pings = await self.stopAndCountPings([phone, other])
        self.assertEqual(self.count("kb_ping_monitor"), pings)
        self.assertEqual(self.count("kb_ping_monitor", "WHERE response_time_ms IS NULL"), 0)
        expected = Counter(["# echo 시작", "에코: 시작", "# echo phone-b 인사", "에코: phone-b 인사"])
        for i in range(50):
            expected.update([f"# echo 핑 거부 중 {i}", f"에코: 핑 거부 중 {i}"])
        self.assertEqual(self.messages(), expected)

    async def test_a_ping_table_that_cannot_be_mapped_any_more_gives_way_to_kkobots_own(self) -> None:
        service, phone = await self.serve()
        await self.pingsFlow(phone)
        self.sql(REFUSE.format(table="kb_ping_monitor"))
        await waitForRows(lambda: self.count("kkobot_ping_monitor") >= 3,
                          "ping rows in kkobot_ping_monitor", timeout=30)
        await self.chatFlows(phone, "옮긴 뒤")
        pings = await self.stopAndCountPings([phone])
        self.assertEqual(self.count("kb_ping_monitor") + self.count("kkobot_ping_monitor"), pings)
        self.assertIn("[DB] kb_ping_monitor exists but cannot take ping rows (column(s) "
                      "required_note NOT NULL without a default); writing them to "
                      "kkobot_ping_monitor instead", logText(self.events))


class DeviceRefused(IsolationTestBase):
    async def test_chat_and_pings_flow_while_a_device_waits_then_it_is_recorded(self) -> None:
        service, phone = await self.serve()
        self.sql(NO_FALLBACK.format(table="kkobot_bot_devices"))
        self.sql(REFUSE.format(table="kb_bot_devices"))
        newcomer = await connectPhone(self, self.port, "phone-new")
        # auth.auto_approve answers it though the table refuses to record it.
        self.assertTrue((await newcomer.handshake())["approved"])
        await newcomer.echo("새 기기")
        await waitUntil(lambda: self.tables()["device"]["state"] == "refused", "devices refused",
                        timeout=30)
        self.assertEqual(self.tables()["device"]["waiting"], 1)
        await self.chatFlows(phone, "기기 거부 중")
        await self.pingsFlow(phone)
        self.assertEqual(self.count("kb_bot_devices", "WHERE device_id = 'phone-new'"), 0)

        self.sql(FIX.format(table="kb_bot_devices"))
        await waitForRows(
            lambda: self.count("kb_bot_devices", "WHERE device_id = 'phone-new'") == 1,
            "the waiting device recorded", timeout=30)
        await waitUntil(lambda: self.tables()["device"]["state"] == "ok", "devices taken again")
        pings = await self.stopAndCountPings([phone, newcomer])
        self.assertEqual(self.count("kb_ping_monitor"), pings)
        self.assertEqual(self.messages()["에코: 새 기기"], 1)
        self.assertEqual(self.messages()["에코: 기기 거부 중"], 1)


class UpgradeFromOneJournal(TestCase):
    """A journal of the single chat log (chat and ping rows mixed) is written by the chat kind's log."""

    timeout = 60

    async def test_mixed_rows_left_in_the_journal_are_written_once(self) -> None:
        from twisted.internet import reactor

        from kkobot.chatlog.log import ChatLog
        from kkobot.config import DBSettings
        from kkobot.db.pool import Database
        from kkobot.chatlog.journal import Journal
        from kkobot.chatlog.kindlogs import KindLogs
        from kkobot.chatlog.pings import PingRow
        from tests.chatlog.test_journal_chatlog import reply

        scratch = operatorDatabase(self)
        journalDir = tempDir(self)
        # The database is unreachable for the old single log: every row stays journaled.
        away = Database(DBSettings("mysql", "127.0.0.1", 9, "root", "", scratch.name))
        self.addCleanup(away.close)
        single = ChatLog(away, reactor, Journal(journalDir), retryInterval=3600)
        single.startService()
        for i in range(10):
            single.log(reply(f"옛 저널 {i}"))
            single.log(PingRow(("kkobot", "phone-a", None, "127.0.0.1", "3.2.0", None, None,
                                None, None, None, 20 + i, None, "2026-11-25 19:25:10")))
        await single.stopService()

        db = Database(scratch.settings())
        self.addCleanup(db.close)
        logs = KindLogs.build(db, reactor, journalDir, flushInterval=0.01)
        logs.startService()
        self.addCleanup(lambda: logs.stopService() if logs.running else None)
        await waitUntil(lambda: logs.ready and logs.backlog == 0, "the old journal replayed")
        await logs.stopService()
        self.assertEqual(sorted(m for (m,) in scratch.query("SELECT message FROM kb_chat_logs")),
                         sorted(f"옛 저널 {i}" for i in range(10)))
        self.assertEqual(sorted(r for (r,) in scratch.query(
            "SELECT response_time_ms FROM kb_ping_monitor")), list(range(20, 30)))
        # A second start replays nothing.
        again = KindLogs.build(db, reactor, journalDir, flushInterval=0.01)
        again.startService()
        await waitUntil(lambda: again.ready, "the restart")
        await again.stopService()
        self.assertEqual(scratch.query("SELECT COUNT(*) FROM kb_chat_logs")[0][0], 10)
        self.assertEqual(scratch.query("SELECT COUNT(*) FROM kb_ping_monitor")[0][0], 10)
