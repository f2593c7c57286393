"""The announcement runner on a task.Clock against real MariaDB and SQLite: sent once, recorded, caught up, never twice."""

from __future__ import annotations

import base64
import json
from datetime import datetime, time, timedelta

from twisted.internet import defer
from twisted.trial.unittest import TestCase

from kkobot.announcements import manage
from kkobot.bridge.wireforms import HEADER_RAW
from tests.announcements.rig import BOT, CHANNEL, ROOM, Bridge, Rig, epoch
from tests.support import captureLogs, logText, waitUntil

# A Monday, 09:00 in Seoul.
MONDAY_9 = datetime(2026, 12, 7, 9, 0)
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\nfake").decode()


def texts(bridge: Bridge) -> list[str]:
    return [m["text"] for m in bridge.messages()]


class RunnerTests:
    engine = ""
    timeout = 120

    def rig(self, start: datetime = MONDAY_9) -> Rig:
        return Rig(self, self.engine, start)

    async def test_weekly_slot_sent_once_recorded_and_not_again_after_a_restart(self) -> None:
        rig = self.rig()
        sid = await rig.add(kind="weekly", weekdays=["monday"], at=(time(9, 1),))
        runner = rig.runner()
        await rig.pollAt(runner, MONDAY_9 + timedelta(seconds=30))
        self.assertEqual(texts(rig.bridge), [])
        await rig.pollAt(runner, datetime(2026, 12, 7, 9, 1, 2))
        self.assertEqual(texts(rig.bridge), ["오늘의 공지"])
        self.assertEqual(rig.bridge.messages()[0]["room"], CHANNEL)  # no name known: the id itself
        for seconds in (5, 10, 60):
            await rig.pollAt(runner, datetime(2026, 12, 7, 9, 1, 2) + timedelta(seconds=seconds))
        self.assertEqual(len(rig.bridge.lines), 1)
        [(logged, status, scheduledAt, components, error, completed)] = rig.logs()
        self.assertEqual((logged, status, str(scheduledAt), components, error, completed),
                         (sid, "success", "2026-12-07 09:01:00", "text", None, 1))
        [(count, last, nxt)] = rig.query(
            "SELECT send_count, last_sent_at, next_send_at FROM kb_schedule WHERE id = %s", sid)
        self.assertEqual((count, str(last), str(nxt)), (1, "2026-12-07 09:01:02", "2026-12-14 09:01:00"))
        # The chat log has it as a scheduled message of the bot.
        self.assertEqual([(r.message, r.is_scheduled) for r in rig.chatlog.rows],
                         [("오늘의 공지", 1)])

        # A restart: a new runner (and pool) on the same database, right after.
        restarted = rig.runner(rig.database())
        await rig.pollAt(restarted, datetime(2026, 12, 7, 9, 1, 20))
        await rig.pollAt(restarted, datetime(2026, 12, 7, 9, 5))
        self.assertEqual(len(rig.bridge.lines), 1)
        # A week later, it is sent again.
        await rig.pollAt(restarted, datetime(2026, 12, 14, 9, 1, 3))
        self.assertEqual(len(rig.bridge.lines), 2)
        self.assertEqual(len(rig.logs()), 2)

    async def test_missed_while_down_caught_up_within_the_lateness_exactly_once(self) -> None:
        rig = self.rig()
        late = await rig.add(at=(time(9, 2),), text="늦게라도")
        tooLate = await rig.add(at=(time(9, 3),), text="너무 늦음")
        # The server was down from 08:59 until 09:14: 09:02 is 12 minutes late
        # (caught up), 09:03 too; with a 11-minute catch-up only 09:03 goes.
        runner = rig.runner(catchUp=660.0)
        await rig.pollAt(runner, datetime(2026, 12, 7, 9, 13, 30))
        self.assertEqual(texts(rig.bridge), ["너무 늦음"])
        self.assertEqual([(r[0], r[1], str(r[2])) for r in rig.logs()],
                         [(tooLate, "success", "2026-12-07 09:03:00")])
        again = rig.runner(rig.database(), catchUp=660.0)
        await rig.pollAt(again, datetime(2026, 12, 7, 9, 13, 40))
        self.assertEqual(texts(rig.bridge), ["너무 늦음"])
        self.assertNotIn(late, [r[0] for r in rig.logs()])

    async def test_several_instances_send_each_slot_once(self) -> None:
        rig = self.rig()
        events = captureLogs(self)
        for minute in range(1, 6):
            for copy in range(3):
                await rig.add(at=(time(9, minute),), text=f"공지 {minute}-{copy}")
        runners = [rig.runner(rig.database()) for _ in range(4)]
        rig.clock.advance(6 * 60)
        await defer.gatherResults([r.poll() for r in runners])
        for r in runners:
            await rig.settle(r)
        self.assertEqual(sorted(texts(rig.bridge)),
                         sorted(f"공지 {m}-{c}" for m in range(1, 6) for c in range(3)))
        self.assertEqual(len(rig.logs()), 15)
        # Claims of different schedules at once neither deadlock nor wait for each other.
        self.assertNotIn("not claimed", logText(events))

    async def test_text_and_two_image_groups_paced_with_their_wait_times(self) -> None:
        rig = self.rig()
        rig.bridge.disconnect()
        rig.bridge = Bridge(rig.registry, rig.clock, form=HEADER_RAW)  # a 3.3 phone
        rig.bridge.connect()
        await rig.add(at=(time(9, 1),), text="사진 공지", interval=2,
                      images1=["https://img.example/a.png", "https://img.example/b.png"], wait1=3000,
                      images2=[PNG], wait2=500)
        runner = rig.runner()
        await rig.pollAt(runner, datetime(2026, 12, 7, 9, 1))
        headers = [json.loads(line[: line.rindex(b"}") + 1])["data"] for _, line in rig.bridge.lines]
        self.assertEqual([(h["message_type"], h.get("media_wait_time")) for h in headers],
                         [("text", None), ("image", 3000), ("image", 500)])
        sentAt = [at for at, _ in rig.bridge.lines]
        self.assertEqual([b - a for a, b in zip(sentAt, sentAt[1:])], [2.0, 2.0])
        [(_, status, _, components, error, _)] = rig.logs()
        self.assertEqual((status, components, error), ("success", "text,images_1,images_2", None))
        [(images, response)] = rig.query("SELECT sent_images_1, api_response FROM kb_schedule_logs")
        self.assertEqual(json.loads(images), ["https://img.example/a.png", "https://img.example/b.png"])
        self.assertEqual([p["part"] for p in json.loads(response)["parts"]], ["text", "images_1", "images_2"])

    async def test_a_part_that_cannot_be_sent_makes_a_partial_send(self) -> None:
        rig = self.rig()
        await rig.add(at=(time(9, 1),), text="본문", images1=["/uploads/local.png"])
        await rig.pollAt(rig.runner(), datetime(2026, 12, 7, 9, 1))
        self.assertEqual(texts(rig.bridge), ["본문"])
        [(_, status, _, components, error, done)] = rig.logs()
        self.assertEqual((status, components, done), ("partial", "text", 1))
        self.assertIn("message_images_1[0]", error)

    async def test_an_offline_bot_is_waited_for_then_the_failure_is_recorded(self) -> None:
        rig = self.rig()
        rig.bridge.disconnect()
        waited = await rig.add(at=(time(9, 1),), text="기다림")
        missed = await rig.add(at=(time(9, 2),), text="못 보냄")
        runner = rig.runner(catchUp=300.0)
        await rig.pollAt(runner, datetime(2026, 12, 7, 9, 2, 30))
        self.assertEqual(rig.logs(), [])
        rig.bridge.connect()
        await rig.pollAt(runner, datetime(2026, 12, 7, 9, 2, 35))
        self.assertEqual(sorted(texts(rig.bridge)), ["기다림", "못 보냄"])
        rig.bridge.disconnect()
        rig.bridge.lines.clear()
        # Tomorrow the bot stays away: its last chance passes with a failure recorded.
        for at in range(0, 400, 5):
            await rig.pollAt(runner, datetime(2026, 12, 8, 9, 1, 1) + timedelta(seconds=at))
        failures = [(r[0], r[1]) for r in rig.logs() if str(r[2]).startswith("2026-12-08")]
        self.assertEqual(sorted(failures), [(waited, "failed"), (missed, "failed")])
        self.assertIn("took no message", rig.logs()[-1][4])
        self.assertEqual(rig.bridge.lines, [])

    async def test_paused_not_sent_resumed_not_caught_up_added_rows_picked_up(self) -> None:
        rig = self.rig()
        sid = await rig.add(at=(time(9, 1), time(9, 3)))
        runner = rig.runner()
        await rig.pollAt(runner, datetime(2026, 12, 7, 9, 0, 30))
        self.assertTrue(await manage.setStatus(rig.db, sid, "inactive", rig.now()))
        await rig.pollAt(runner, datetime(2026, 12, 7, 9, 1, 30))
        self.assertTrue(await manage.setStatus(rig.db, sid, "active", rig.now()))
        await rig.pollAt(runner, datetime(2026, 12, 7, 9, 1, 40))
        self.assertEqual(texts(rig.bridge), [])  # 09:01 passed while paused
        await rig.pollAt(runner, datetime(2026, 12, 7, 9, 3, 1))
        self.assertEqual(texts(rig.bridge), ["오늘의 공지"])
        # A row added while the runner runs is sent at its time, no restart.
        await rig.add(kind="once", date=datetime(2026, 12, 7).date(), at=(time(9, 4),), text="새 공지")
        await rig.pollAt(runner, datetime(2026, 12, 7, 9, 4, 2))
        self.assertEqual(texts(rig.bridge), ["오늘의 공지", "새 공지"])

    async def test_a_once_schedule_is_completed_after_its_last_slot(self) -> None:
        rig = self.rig()
        sid = await rig.add(kind="once", date=datetime(2026, 12, 7).date(),
                            at=(time(9, 1), time(9, 2)))
        runner = rig.runner()
        await rig.pollAt(runner, datetime(2026, 12, 7, 9, 1))
        self.assertEqual(rig.query("SELECT status FROM kb_schedule WHERE id = %s", sid), [("active",)])
        await rig.pollAt(runner, datetime(2026, 12, 7, 9, 2))
        [(status, nxt, count)] = rig.query(
            "SELECT status, next_send_at, send_count FROM kb_schedule WHERE id = %s", sid)
        self.assertEqual((status, nxt, count), ("completed", None, 2))

    async def test_a_new_schedule_does_not_send_a_slot_from_before_it_existed(self) -> None:
        rig = self.rig(datetime(2026, 12, 7, 9, 5))
        await rig.add(at=(time(9, 1),))
        await rig.pollAt(rig.runner(), datetime(2026, 12, 7, 9, 5, 5))
        self.assertEqual((texts(rig.bridge), rig.logs()), ([], []))

    async def test_the_room_name_comes_from_the_chat_log(self) -> None:
        rig = self.rig()
        await rig.db.ensureSchema()
        await rig.db.runOperation(
            "INSERT INTO kb_chat_logs (channel_id, user_hash, room_name, sender, message, message_type, "
            "bot_name) VALUES (%s, 'u1', %s, '홍길동', '안녕', 'normal', %s)", (CHANNEL, ROOM, BOT))
        await rig.add(at=(time(9, 1),))
        await rig.pollAt(rig.runner(), datetime(2026, 12, 7, 9, 1))
        [message] = rig.bridge.messages()
        self.assertEqual((message["room"], message["channel_id"]), (ROOM, CHANNEL))

    async def test_an_unfinished_send_of_a_stopped_server_is_closed_as_failed(self) -> None:
        rig = self.rig()
        sid = await rig.add(at=(time(9, 1),))
        await rig.db.runOperation(
            "INSERT INTO kb_schedule_logs (schedule_id, target_room_id, status, error_message, "
            "scheduled_at, started_at) VALUES (%s, %s, 'partial', 'sending', %s, %s)",
            (sid, CHANNEL, "2026-12-06 09:01:00", "2026-12-06 09:01:00"))
        await rig.pollAt(rig.runner(), datetime(2026, 12, 7, 8, 0))
        [(_, status, _, _, error, done)] = rig.logs()
        self.assertEqual((status, done), ("failed", 1))
        self.assertIn("interrupted", error)


class MariaDBRunner(RunnerTests, TestCase):
    engine = "mysql"


class SQLiteRunner(RunnerTests, TestCase):
    engine = "sqlite"


class OddRows:
    timeout = 60

    def rig(self, start: datetime = MONDAY_9) -> Rig:
        return Rig(self, self.engine, start)

    async def test_a_row_whose_timing_cannot_be_read_is_skipped_with_one_warning(self) -> None:
        rig = self.rig()
        events = captureLogs(self)
        await rig.db.ensureSchema()
        await rig.db.runOperation(
            "INSERT INTO kb_schedule (title, created_by_type, created_by_id, created_by_mb_id, "
            "target_bot_name, target_room_id, message_text, schedule_type, schedule_time, "
            "valid_from, valid_until) VALUES ('x', 'branch', 'b', 'm', %s, %s, '요일 없음', 'weekly', "
            "'09:01:00', '2026-01-01 00:00:00', '2027-01-01 00:00:00')", (BOT, CHANNEL))
        await rig.add(at=(time(9, 1),), text="정상")
        runner = rig.runner()
        for second in (0, 5, 10):
            await rig.pollAt(runner, datetime(2026, 12, 7, 9, 1, second))
        self.assertEqual(texts(rig.bridge), ["정상"])
        warnings = [line for line in logText(events).splitlines() if "is skipped" in line]
        self.assertEqual(warnings, ["[SCHEDULE] schedule 1 is skipped: a weekly schedule needs schedule_weekdays"])


class MariaDBOddRows(OddRows, TestCase):
    engine = "mysql"


class SQLiteOddRows(OddRows, TestCase):
    engine = "sqlite"


class OnTime(TestCase):
    timeout = 60

    async def test_a_slot_between_polls_is_sent_at_its_second(self) -> None:
        rig = Rig(self, "sqlite", datetime(2026, 12, 7, 9, 0, 57, 500000))
        await rig.add(at=(time(9, 1),), text="정각")
        runner = rig.runner(pollInterval=5.0)
        runner.startService()
        self.addCleanup(runner.stopService)
        due = epoch(datetime(2026, 12, 7, 9, 1))
        await waitUntil(lambda: any(c.getTime() == due for c in rig.clock.getDelayedCalls()),
                        "the first poll to plan a wake-up for 09:01:00")
        rig.clock.advance(due - rig.clock.seconds())
        await waitUntil(lambda: rig.bridge.lines, "the announcement")
        self.assertEqual([(at, m["text"]) for (at, _), m in zip(rig.bridge.lines, rig.bridge.messages())],
                         [(due, "정각")])
