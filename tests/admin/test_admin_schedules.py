"""The schedule pages over TCP: create with a preview, sent by the runner, edit, pause, resume, remove, the send log a page at a time."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from urllib.parse import unquote, urlencode

from twisted.internet import reactor, task
from twisted.trial.unittest import TestCase

from kkobot.announcements import manage
from kkobot.announcements.rules import WEEKDAYS
from tests.chatlog.test_operator_tables import definitions, operatorDatabase
from tests.support import analyze, waitUntil
from tests.support.adminhelpers import TOKEN, RunningServer

FORM = b"application/x-www-form-urlencoded"
CFG = {"schedules": {"poll_interval": 0.2, "timezone": "UTC"}}
ROOM = "777"


async def until(check, what, tries=400):
    """Await C{check()} until it is true (each try is a real request or query)."""
    for _ in range(tries):
        if await check():
            return
        await task.deferLater(reactor, 0.05, lambda: None)
    raise AssertionError(f"gave up waiting for {what}")


class SchedulePages(TestCase):
    timeout = 90

    def dbSettings(self):
        return None

    async def setUp(self):
        self.server = RunningServer(self, cfg=CFG, db=self.dbSettings())
        await self.server.start()
        self.db = self.server.service.database
        self.client = await self.server.connectClient()
        self.client.send(analyze("안녕하세요", room="공지방", channelId=ROOM, userHash="u1"))
        rooms = self.server.service.commandParts.rooms
        await waitUntil(lambda: rooms.status(ROOM) is not None, "the room recorded")
        code, headers, _ = await self.server.request(
            b"POST", "/login", token=None, body=urlencode({"token": TOKEN}).encode(), contentType=FORM)
        self.session = {b"cookie": headers.getRawHeaders(b"set-cookie")[0].split(b";")[0]}

    async def page(self, path):
        code, _, body = await self.server.request(b"GET", path, token=None, headers=self.session)
        self.assertEqual(code, 200, body[:300])
        return body.decode("utf-8")

    async def post(self, path, fields, csrf=True, session=True):
        fields = list(fields.items()) if isinstance(fields, dict) else list(fields)
        if csrf is True:
            csrf = re.search(r'name="csrf" value="([0-9a-f]+)"', await self.page("/schedules/new")).group(1)
        if csrf:
            fields.append(("csrf", csrf))
        return await self.server.request(b"POST", path, token=None if session else TOKEN,
                                         body=urlencode(fields).encode(), contentType=FORM,
                                         headers=self.session if session else {})

    async def audited(self):
        rows = await self.db.runQuery("SELECT action, target FROM kb_admin_audit ORDER BY id")
        return [tuple(r) for r in rows]

    def form(self, **changes):
        fields = {"room": ROOM, "bot": "", "kind": "daily", "times": "09:00", "text": "공지입니다",
                  "wait1": "0", "wait2": "0", "interval": "1", "step": "preview"}
        fields.update(changes)
        days = fields.pop("weekdays", [])
        return list(fields.items()) + [("weekdays", d) for d in days]

    async def test_created_with_a_preview_sent_by_the_runner_edited_paused_and_removed(self):
        slot = datetime.now(timezone.utc).replace(tzinfo=None, microsecond=0) + timedelta(seconds=4)
        today = WEEKDAYS[slot.weekday()]
        fields = self.form(kind="weekly", weekdays=[today], times=slot.strftime("%H:%M:%S"),
                           text="오늘 3시 회의입니다\n늦지 마세요", images1="https://example.com/a.png",
                           wait1="2000")
        # The Bearer token alone reads the pages but changes nothing.
        code, _, _ = await self.post("/schedules/save", fields, csrf=False, session=False)
        self.assertEqual(code, 403)
        code, _, body = await self.post("/schedules/save", fields)
        html = body.decode()
        self.assertEqual(code, 200)
        self.assertIn("미리보기", html)
        self.assertIn(slot.strftime("%Y-%m-%d"), html)
        self.assertIn(slot.strftime("%H:%M:%S"), html)
        self.assertIn("오늘 3시 회의입니다\n늦지 마세요", html)
        self.assertIn("https://example.com/a.png", html)
        self.assertIn('value="save"', html)
        self.assertEqual(await manage.listSchedules(self.db), [], "a preview saves nothing")
        code, headers, _ = await self.post("/schedules/save", dict(fields, step="save") | {}, csrf=True)
        self.assertEqual(code, 303)
        location = unquote(headers.getRawHeaders(b"location")[0].decode())
        self.assertIn("만들었습니다", location)
        [row] = await manage.listSchedules(self.db)
        scheduleId = row["id"]
        self.assertEqual((row["schedule_type"], row["schedule_weekdays"], row["target_bot_name"]),
                         ("weekly", today, "kkobot"))
        # The runner sends it at its second; the log shows the send.
        await self.client.waitForEvent("messageResponse", text="오늘 3시 회의입니다\n늦지 마세요")
        await until(lambda: self._logShows(f"/schedules/log?id={scheduleId}", 'data-result="success"'),
                    "the send recorded as a success")
        listing = await self.page("/schedules")
        self.assertIn("매주", listing)
        self.assertIn('data-result="success"', listing)
        nextWeek = slot + timedelta(days=7)
        self.assertIn(nextWeek.strftime("%Y-%m-%d %H:%M:%S"), listing)
        overall = await self.page("/schedules/log")
        self.assertEqual(overall.count('class="send"'), 1)

        editing = await self.page(f"/schedules/edit?id={scheduleId}")
        self.assertIn("오늘 3시 회의입니다", editing)
        self.assertIn('value="weekly" id="kind-weekly" checked', editing.replace('checked="checked"', "checked"))
        start = re.search(r'<input[^>]*name="from"[^>]*>', editing).group(0)
        self.assertNotIn(slot.strftime("%Y-%m-%d"), start, "a start already past is not offered again")
        code, headers, _ = await self.post("/schedules/save", self.form(
            id=str(scheduleId), kind="daily", times="20:00, 08:00", text="바뀐 공지", step="save"))
        self.assertEqual(code, 303)
        row = await manage.getSchedule(self.db, scheduleId)
        self.assertEqual((row["schedule_type"], row["message_text"], row["send_count"]), ("daily", "바뀐 공지", 1))
        # Edited, it starts anew: a time already past today is not caught up.
        self.assertGreater(str(row["valid_from"]), slot.strftime("%Y-%m-%d %H:%M:%S"))
        self.assertIn("08:00", await self.page(f"/schedules/edit?id={scheduleId}"))
        self.assertIn("20:00", await self.page(f"/schedules/edit?id={scheduleId}"))

        code, _, _ = await self.post("/schedules/status", {"id": scheduleId, "status": "inactive"}, csrf="0" * 64)
        self.assertEqual(code, 403)
        self.assertEqual((await manage.getSchedule(self.db, scheduleId))["status"], "active")
        await self.post("/schedules/status", {"id": scheduleId, "status": "inactive"})
        self.assertEqual((await manage.getSchedule(self.db, scheduleId))["status"], "inactive")
        await self.post("/schedules/status", {"id": scheduleId, "status": "active"})
        self.assertEqual((await manage.getSchedule(self.db, scheduleId))["status"], "active")
        code, _, _ = await self.post("/schedules/remove", {"id": scheduleId})
        self.assertEqual(code, 303)
        self.assertEqual(await manage.listSchedules(self.db), [])
        self.assertEqual(await manage.sendLog(self.db), [])
        sid = str(scheduleId)
        self.assertEqual(await self.audited(), [("schedule.add", sid), ("schedule.edit", sid),
                                                ("schedule.pause", sid), ("schedule.resume", sid),
                                                ("schedule.remove", sid)])

    async def _logShows(self, path, text):
        return text in await self.page(path)

    async def test_a_form_that_makes_no_schedule_says_why_and_saves_nothing(self):
        cases = [
            (self.form(kind="weekly", step="save"), "요일을 하나 이상"),
            (self.form(kind="once", date="2020-01-01", step="save"), "보낼 시각이 남아 있지 않습니다"),
            (self.form(text="", step="save"), "보낼 내용"),
            (self.form(times="25:00", step="save"), "읽을 수 없습니다"),
            (self.form(until="2020-01-01T00:00", step="save"), "끝이 시작보다 앞입니다"),
            (self.form(images2="https://example.com/ok.png\n그림.png", step="save"), "이미지를 보낼 수 없습니다"),
        ]
        for fields, why in cases:
            code, _, body = await self.post("/schedules/save", fields)
            self.assertEqual(code, 200)
            self.assertIn(why, body.decode())
            self.assertNotIn('value="save"', body.decode(), "no save button without a good preview")
        self.assertEqual(await manage.listSchedules(self.db), [])
        self.assertEqual(await self.audited(), [])

    async def test_the_preview_lists_the_sends_the_rules_make(self):
        today = datetime.now(timezone.utc).date()
        tomorrow, after = today + timedelta(days=1), today + timedelta(days=2)
        code, _, body = await self.post("/schedules/save", self.form(kind="once", date=tomorrow.isoformat(),
                                                                     times="09:00"))
        once = re.search(r'<ol class="slots">(.*?)</ol>', body.decode()).group(1)
        self.assertEqual(re.findall(r"<li>(.*?)</li>", once), [f"{tomorrow} ({'월화수목금토일'[tomorrow.weekday()]}) 09:00:00"])
        # Twice a day inside a two-day window: four sends, then none.
        code, _, body = await self.post("/schedules/save", self.form(
            kind="daily", times="20:00, 08:00", **{"from": f"{tomorrow}T00:00", "until": f"{after}T23:59"}))
        daily = re.findall(r"<li>(\S+) \(.\) (\S+)</li>", body.decode())
        self.assertEqual(daily, [(str(tomorrow), "08:00:00"), (str(tomorrow), "20:00:00"),
                                 (str(after), "08:00:00"), (str(after), "20:00:00")])
        self.assertIn("https://example.com/a.png", (await self.post("/schedules/save", self.form(
            images1="https://example.com/a.png", wait1="3000")))[2].decode())
        self.assertEqual(await manage.listSchedules(self.db), [])

    async def test_the_send_log_a_page_at_a_time_by_id(self):
        values, _ = manage.scheduleValues(bot="kkobot", room=ROOM, kind="daily",
                                          times=[datetime(2000, 1, 1, 9).time()], now=datetime.now(),
                                          text="매일 공지")
        scheduleId = await manage.addSchedule(self.db, values)
        other = await manage.addSchedule(self.db, values)

        def fill(txn):
            for i in range(60):
                txn.execute(self.db.sql(
                    "INSERT INTO kb_schedule_logs (schedule_id, target_room_id, sent_message_text, status, "
                    "scheduled_at, started_at, send_components, duration_ms) "
                    "VALUES (%s, %s, '매일 공지', %s, %s, %s, 'text', 12)"),
                    (other if i % 10 == 0 else scheduleId, ROOM, "failed" if i == 59 else "success",
                     f"2026-01-{1 + i % 28:02d} 09:00:{i:02d}", f"2026-01-{1 + i % 28:02d} 09:00:{i:02d}"))
        await self.db.runInteraction(fill)
        first = await self.page(f"/schedules/log?id={scheduleId}")
        self.assertEqual(first.count('class="send"'), 50)
        self.assertEqual(first.count('data-result="failed"'), 1)
        self.assertNotIn(f'data-schedule="{other}"', first)
        link = re.search(r'href="(/schedules/log\?[^"]+)"[^>]*class="button more"', first).group(1)
        rest = await self.page(link.replace("&amp;", "&"))
        self.assertEqual(rest.count('class="send"'), 4)
        overall = await self.page("/schedules/log")
        self.assertEqual(overall.count('class="send"'), 50)
        self.assertIn(f'data-schedule="{other}"', overall)


class SchedulePagesOnMariaDB(SchedulePages):
    """The same on the operators' own kb_schedule / kb_schedule_logs, left as they are."""

    def dbSettings(self):
        self.scratch = operatorDatabase(self)
        self.before = definitions(self.scratch)
        self.addCleanup(lambda: self.assertEqual(definitions(self.scratch), self.before))
        return self.scratch.settings()
