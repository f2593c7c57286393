"""The admin web's changes over TCP: the session and CSRF token they need, the audit entry they leave, the chat log search."""

from __future__ import annotations

import re
from urllib.parse import urlencode

from twisted.trial.unittest import TestCase

from kkobot.admin.web import chatlogsearch
from tests.support import ScratchMysql, analyze, waitUntil
from tests.support.adminhelpers import TOKEN, RunningServer

FORM = b"application/x-www-form-urlencoded"


class AdminWrites(TestCase):
    timeout = 60

    async def setUp(self):
        self.server = RunningServer(self, cfg={"rooms": {"approval": True, "refresh_interval": 0.2}})
        await self.server.start()
        self.client = await self.server.connectClient()
        self.rooms = self.server.service.commandParts.rooms

    async def login(self):
        code, headers, _ = await self.server.request(
            b"POST", "/login", token=None, body=urlencode({"token": TOKEN}).encode(), contentType=FORM)
        self.assertEqual(code, 303)
        cookie = headers.getRawHeaders(b"set-cookie")[0].split(b";")[0]
        return {b"cookie": cookie}

    async def page(self, path, headers):
        code, _, body = await self.server.request(b"GET", path, token=None, headers=headers)
        self.assertEqual(code, 200, body[:300])
        return body.decode("utf-8")

    def csrf(self, html):
        return re.search(r'name="csrf" value="([0-9a-f]+)"', html).group(1)

    async def post(self, path, fields, headers, token=None):
        return await self.server.request(b"POST", path, token=token, body=urlencode(fields).encode(),
                                         contentType=FORM, headers=headers)

    async def test_approving_a_room_needs_the_session_and_its_csrf_token_and_is_audited(self):
        self.client.send(analyze("# echo 대기", room="새방", channelId="777"))
        await waitUntil(lambda: self.rooms.status("777") == "pending", "the room recorded")
        # The Bearer token reads pages but, without a session, changes nothing.
        code, _, body = await self.server.request(b"GET", "/rooms?status=pending")
        self.assertEqual(code, 200)
        self.assertIn("새방", body.decode())
        code, _, _ = await self.post("/rooms/status", {"room": "777", "status": "approved"}, {}, token=TOKEN)
        self.assertEqual(code, 403)
        session = await self.login()
        html = await self.page("/rooms", session)
        token = self.csrf(html)
        code, _, _ = await self.post("/rooms/status", {"room": "777", "status": "approved", "csrf": "0" * 64},
                                     session)
        self.assertEqual(code, 403)
        self.assertEqual(self.rooms.status("777"), "pending")
        code, headers, _ = await self.post("/rooms/status", {"room": "777", "status": "approved", "csrf": token},
                                           session)
        self.assertEqual(code, 303)
        self.assertTrue(headers.getRawHeaders(b"location")[0].startswith(b"/rooms?done="))
        self.assertEqual(self.rooms.status("777"), "approved")
        self.client.send(analyze("# echo 승인 후", room="새방", channelId="777"))
        await self.client.waitForEvent("messageResponse", text="에코: 승인 후")
        audit = await self.page("/audit", session)
        self.assertIn("room.approved", audit)
        self.assertIn("777", audit)
        rows = await self.server.service.database.runQuery("SELECT actor, action, target FROM kb_admin_audit")
        self.assertEqual([(r[1], r[2]) for r in rows], [("room.approved", "777")])
        self.assertRegex(rows[0][0], r"^admin session [0-9a-f]{8} from 127\.0\.0\.1$")

    async def test_room_settings_edited_in_the_page_reach_the_bot(self):
        self.client.send(analyze("# echo 하나", room="설정방", channelId="900"))
        await waitUntil(lambda: self.rooms.status("900") == "pending", "the room recorded")
        session = await self.login()
        token = self.csrf(await self.page("/rooms/edit?room=900", session))
        await self.post("/rooms/status", {"room": "900", "status": "approved", "csrf": token}, session)
        code, headers, _ = await self.post("/rooms/settings", {
            "room": "900", "admins": "a1b2c3\nzzz", "disabled": "echo", "commands": '{"help": {"admin_only": true}}',
            "csrf": token}, session)
        self.assertEqual(code, 303)
        self.assertIn(b"done=", headers.getRawHeaders(b"location")[0])
        self.client.send(analyze("# echo 둘", room="설정방", channelId="900"))
        await self.client.waitForEvent("messageResponse", text="이 방에서는 사용할 수 없는 명령입니다.")
        html = await self.page("/rooms/edit?room=900", session)
        self.assertIn("zzz", html)
        code, headers, _ = await self.post("/rooms/settings", {
            "room": "900", "admins": "", "disabled": "", "commands": "{not json", "csrf": token}, session)
        self.assertIn(b"error=", headers.getRawHeaders(b"location")[0])
        self.assertTrue(self.rooms.settingsOf("900").isDisabled("echo"))

    async def test_the_chat_log_by_room_sender_and_text_a_page_at_a_time(self):
        for i in range(60):
            self.client.send(analyze(f"점심 {i}", room="점심방", channelId="555", userHash="u1"))
        self.client.send(analyze("저녁 뭐 먹지", room="저녁방", channelId="556", userHash="u2"))
        await waitUntil(lambda: self.server.service.router.messagesSeen >= 61, "messages in")
        await self.server.rows()
        session = await self.login()
        html = await self.page("/chatlog?" + urlencode({"room": "555", "q": "점심"}), session)
        self.assertEqual(html.count('class="chat"'), 50)
        self.assertIn("점심 59", html)
        self.assertNotIn("저녁", html.split("<table")[1])
        link = re.search(r'href="(/chatlog\?[^"]+before=\d+)"', html).group(1).replace("&amp;", "&")
        rest = await self.page(link, session)
        self.assertEqual(rest.count('class="chat"'), 10)
        self.assertIn("점심 0<", rest)
        bySender = await self.page("/chatlog?sender=u2", session)
        self.assertEqual(bySender.count('class="chat"'), 1)
        schedules = await self.page("/schedules", session)
        self.assertIn("예약 메시지", schedules)


class ChatLogSearchWindow(TestCase):
    """A search matching little goes on window by window instead of scanning the whole table."""

    def dbSettings(self):
        return None

    async def test_windows(self):
        server = RunningServer(self, db=self.dbSettings())
        await server.start()
        db = server.service.database

        def fill(txn):
            for i in range(30):
                txn.execute(db.sql(
                    "INSERT INTO kb_chat_logs (channel_id, user_hash, room_name, sender, message, message_type, "
                    "bot_name, server_timestamp) VALUES ('1', 'u', '방', '사람', %s, 'normal', 'kkobot', %s)"),
                    (f"{'찾기' if i in (2, 25) else '기타'} {i}", f"2026-01-01 00:00:{i:02d}"))
        await db.runInteraction(fill)
        query = chatlogsearch.Query(text="찾기")
        found = await db.runInteraction(chatlogsearch.search, db.sql, query, 10, 10)
        self.assertEqual([r[7] for r in found.rows], ["찾기 25"])
        self.assertTrue(found.windowEnded)
        more = await db.runInteraction(chatlogsearch.search, db.sql,
                                       chatlogsearch.Query(text="찾기", before=found.nextBefore), 10, 10)
        self.assertEqual(more.rows, [])
        last = await db.runInteraction(chatlogsearch.search, db.sql,
                                       chatlogsearch.Query(text="찾기", before=more.nextBefore), 10, 10)
        self.assertEqual(([r[7] for r in last.rows], last.nextBefore), (["찾기 2"], None))
        timed = await db.runInteraction(chatlogsearch.search, db.sql, chatlogsearch.Query(
            since="2026-01-01 00:00:10", until="2026-01-01 00:00:13"))
        self.assertEqual([r[7] for r in timed.rows], ["기타 12", "기타 11", "기타 10"])
        # LIKE wildcards in the search text are plain characters.
        wild = await db.runInteraction(chatlogsearch.search, db.sql, chatlogsearch.Query(text="%"))
        self.assertEqual(wild.rows, [])


class ChatLogSearchWindowOnMariaDB(ChatLogSearchWindow):
    def setUp(self):
        self.scratch = ScratchMysql()
        self.addCleanup(self.scratch.drop)
        self.scratch.createOperatorTable()  # kb_chat_logs exactly as operators have it

    def dbSettings(self):
        return self.scratch.settings()


class DeviceApproval(AdminWrites):
    """/devices with auth on: a pending phone approved in the page."""

    async def setUp(self):
        self.server = RunningServer(self, authConfig={
            "auth": {"required": True}, "bots": {"kkobot": {"secret": "s" * 32, "salt": "salt"}}})
        await self.server.start()

    async def test_a_pending_device_is_approved_in_the_page(self):
        devices = self.server.service.devices
        self.assertEqual(await devices.register("kkobot", "phone-1", version="3.2.0"), "pending")
        session = await self.login()
        html = await self.page("/devices", session)
        self.assertIn("phone-1", html)
        code, headers, _ = await self.post("/devices/status", {
            "bot": "kkobot", "device": "phone-1", "status": "approved", "csrf": self.csrf(html)}, session)
        self.assertEqual(code, 303)
        listed = await devices.list()
        self.assertEqual([(d.device, d.status) for d in listed], [("phone-1", "approved")])
        rows = await self.server.service.database.runQuery("SELECT action, target FROM kb_admin_audit")
        self.assertEqual([tuple(r) for r in rows], [("device.approved", "kkobot phone-1")])

    # The room tests of the base class need the open (no auth) server.
    test_approving_a_room_needs_the_session_and_its_csrf_token_and_is_audited = None
    test_room_settings_edited_in_the_page_reach_the_bot = None
    test_the_chat_log_by_room_sender_and_text_a_page_at_a_time = None
