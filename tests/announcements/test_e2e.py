"""Over TCP, the whole server on the operators' tables: a weekly announcement sent once, recorded, not resent after a restart; one missed while stopped caught up once."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from twisted.internet import reactor, task
from twisted.trial.unittest import TestCase

from kkobot.announcements.rules import WEEKDAYS
from tests.chatlog.test_operator_tables import definitions, operatorDatabase
from tests.support import tempDir
from tests.support.phones import authConfig, connectPhone, portOf, startService, stopService

SEOUL = ZoneInfo("Asia/Seoul")
CHANNEL = "18398338829933568"  # the channel of the phone's messages (tests.support.analyze)
DEVICE = "5f3c2a1b9d8e7f60"

# As the operators' admin web writes a row: creator, window, the database's own created_at.
INSERT = (
    "INSERT INTO kb_schedule (title, created_by_type, created_by_id, created_by_mb_id, "
    "target_bot_name, target_room_id, message_text, schedule_type, schedule_time, "
    "schedule_weekdays, valid_from, valid_until, created_at) VALUES "
    "(%s, 'branch', 'b1', 'admin', 'kkobot', %s, %s, 'weekly', %s, %s, %s, %s, %s)"
)


def seoulNow() -> datetime:
    return datetime.now(SEOUL).replace(tzinfo=None, microsecond=0)


def pause(seconds: float):
    return task.deferLater(reactor, seconds, lambda: None)


class AnnouncementsEndToEnd(TestCase):
    timeout = 240

    def setUp(self) -> None:
        self.scratch = operatorDatabase(self)
        self.before = definitions(self.scratch)
        self.varDir = tempDir(self)
        self.cfg = authConfig(autoApprove=True, schedules={"poll_interval": 0.2, "catch_up_seconds": 30})

    def addWeekly(self, text: str, at: datetime, created: datetime) -> int:
        self.scratch.execute(self.scratch.name, INSERT, f"공지 {text}", CHANNEL, text,
                             at.strftime("%H:%M:%S"), WEEKDAYS[at.weekday()],
                             (at - timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"),
                             (at + timedelta(days=30)).strftime("%Y-%m-%d %H:%M:%S"),
                             created.strftime("%Y-%m-%d %H:%M:%S"))
        return self.scratch.query("SELECT MAX(id) FROM kb_schedule")[0][0]

    async def server(self):
        service = startService(self.scratch.settings(), self.varDir, self.cfg)
        self.addCleanup(stopService, service)
        phone = await connectPhone(self, await portOf(service), DEVICE)
        answer = await phone.handshake()
        self.assertEqual((answer["success"], answer["approved"]), (True, True))
        return service, phone

    def announced(self, phone, text: str) -> list[dict]:
        return [e["data"] for e in phone.events
                if e.get("event") == "messageResponse" and e["data"]["text"] == text]

    def sends(self) -> list[tuple]:
        return self.scratch.query(
            "SELECT schedule_id, status, scheduled_at, send_components, completed_at IS NOT NULL "
            "FROM kb_schedule_logs ORDER BY id")

    async def test_weekly_for_now_plus_a_minute_sent_once_and_not_again_after_a_restart(self) -> None:
        service, phone = await self.server()
        await phone.echo("안녕")  # the server learns the room's name
        slot = seoulNow() + timedelta(minutes=1)
        sid = self.addWeekly("주간 회의", slot, created=seoulNow())
        await phone.waitFor(lambda e: e.get("event") == "messageResponse"
                            and e["data"]["text"] == "주간 회의", timeout=120)
        [sent] = self.announced(phone, "주간 회의")
        self.assertEqual((sent["room"], sent["channel_id"]), ("테스트방", CHANNEL))
        self.assertLessEqual(slot, seoulNow())
        await pause(1.0)  # five more polls
        await stopService(service)
        self.assertEqual(self.sends(), [(sid, "success", slot, "text", 1)])
        [(count, status)] = self.scratch.query(
            "SELECT send_count, status FROM kb_schedule WHERE id = %s", sid)
        self.assertEqual((count, status), (1, "active"))
        # It is in the chat log as the bot's scheduled message.
        self.assertEqual(self.scratch.query(
            "SELECT room_name, is_our_bot_response, is_scheduled FROM kb_chat_logs WHERE message = %s",
            "주간 회의"), [("테스트방", 1, 1)])

        # Restarted right after: the slot is still within the catch-up window, and not resent.
        await phone.close()
        service, phone = await self.server()
        await pause(1.5)
        await phone.echo("다시")
        self.assertEqual(self.announced(phone, "주간 회의"), [])
        await stopService(service)
        self.assertEqual(len(self.sends()), 1)
        self.assertEqual(definitions(self.scratch), self.before)  # the tables stay as they were

    async def test_missed_while_stopped_caught_up_once_within_the_lateness(self) -> None:
        # Nothing runs: one slot falls due 2 s from now, one was due a minute ago (past the
        # 30 s lateness, though the row is older than that).
        soon = seoulNow() + timedelta(seconds=2)
        missed = self.addWeekly("놓친 공지", soon, created=seoulNow())
        stale = self.addWeekly("오래된 공지", seoulNow() - timedelta(minutes=1),
                               created=seoulNow() - timedelta(hours=1))
        await pause(3.0)
        service, phone = await self.server()
        await phone.waitFor(lambda e: e.get("event") == "messageResponse"
                            and e["data"]["text"] == "놓친 공지", timeout=30)
        await pause(1.0)
        await stopService(service)
        await phone.close()
        self.assertEqual([(r[0], r[1], r[2]) for r in self.sends()], [(missed, "success", soon)])

        service, phone = await self.server()
        await pause(1.5)
        await phone.echo("또")
        await stopService(service)
        self.assertEqual(self.announced(phone, "놓친 공지"), [])
        self.assertEqual(self.announced(phone, "오래된 공지"), [])
        self.assertEqual(len(self.sends()), 1)
        self.assertNotIn(stale, [r[0] for r in self.sends()])
