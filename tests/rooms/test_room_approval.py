"""Over TCP: a new room waits with rooms.approval on, and approving it (another process's write) makes it answered without a restart."""

from __future__ import annotations

import re

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from kkobot.db.pool import Database
from kkobot.rooms import RoomStore
from tests.db.test_tableshape import operatorStatements
from tests.support import ScratchMysql, analyze, waitUntil
from tests.support.adminhelpers import RunningServer

APPROVAL = {"rooms": {"approval": True, "refresh_interval": 0.2}}


def replies(client, text):
    return [e for e in client.received
            if e.get("event") == "messageResponse" and e["data"].get("text") == text]


class ApprovalFlow:
    """The same story on the embedded SQLite default and on MariaDB with the operators' kb_rooms."""

    def dbSettings(self):
        return None

    def otherDatabase(self, server):
        db = Database(server.service.resolved.db, reactor=reactor)
        self.addCleanup(db.close)
        return db

    async def test_new_room_waits_until_approved_then_is_answered(self):
        server = RunningServer(self, cfg=APPROVAL, db=self.dbSettings())
        await server.start()
        client = await server.connectClient()
        client.send(analyze("# echo 첫 메시지", room="새방", channelId="777"))
        rooms = server.service.commandParts.rooms
        await waitUntil(lambda: rooms.status("777") == "pending", "the room recorded")
        rows = await server.service.database.runQuery(
            "SELECT room_id, room_name, bot_name, status FROM kb_rooms")
        self.assertEqual([tuple(r) for r in rows], [("777", "새방", "kkobot", "pending")])
        # A room already approved is answered meanwhile; the new one's message is logged.
        client.send(analyze("# echo 다른 방"))
        await waitUntil(lambda: rooms.status("18398338829933568") == "pending", "second room")

        # kkobot-admin rooms approve (or the admin web): another connection writes it.
        other = RoomStore(self.otherDatabase(server), reactor)
        self.assertTrue(await other.setStatus("777", "approved"))
        await waitUntil(lambda: rooms.status("777") == "approved", "the approval read")
        client.send(analyze("# echo 두번째", room="새방", channelId="777"))
        await client.waitForEvent("messageResponse", text="에코: 두번째")
        self.assertEqual(replies(client, "에코: 첫 메시지"), [])
        self.assertEqual(replies(client, "에코: 다른 방"), [])
        logged = await server.rows("message LIKE '# echo%'")
        self.assertEqual([r[2] for r in logged], ["# echo 첫 메시지", "# echo 다른 방", "# echo 두번째"])

        # Room settings from the database: echo disabled there, then allowed again.
        await other.changeSettings("777", lambda s: s.changed(disable=["echo"]))
        await waitUntil(lambda: rooms.settingsOf("777").isDisabled("echo"), "the settings read")
        client.send(analyze("# echo 세번째", room="새방", channelId="777"))
        await client.waitForEvent("messageResponse", text="이 방에서는 사용할 수 없는 명령입니다.")
        await other.changeSettings("777", lambda s: s.changed(enable=["echo"]))
        await waitUntil(lambda: not rooms.settingsOf("777").isDisabled("echo"), "re-enabled")
        client.send(analyze("# echo 네번째", room="새방", channelId="777"))
        await client.waitForEvent("messageResponse", text="에코: 네번째")


class ApprovalOnSqlite(ApprovalFlow, TestCase):
    timeout = 60

    async def test_without_approval_new_rooms_are_recorded_approved_and_answered(self):
        server = RunningServer(self, cfg={"rooms": {"refresh_interval": 0.2}})
        await server.start()
        client = await server.connectClient()
        client.send(analyze("# echo 안녕", room="자유방", channelId="888"))
        await client.waitForEvent("messageResponse", text="에코: 안녕")
        rooms = server.service.commandParts.rooms
        await waitUntil(lambda: rooms.status("888") == "approved", "the room recorded")


class ApprovalOnMariaDB(ApprovalFlow, TestCase):
    timeout = 60

    def setUp(self):
        self.scratch = ScratchMysql()
        self.addCleanup(self.scratch.drop)
        for statement in operatorStatements():
            self.scratch.execute(self.scratch.name, statement)
        self.before = self.definition()

    def definition(self):
        return re.sub(r" AUTO_INCREMENT=\d+", "",
                      self.scratch.query("SHOW CREATE TABLE `kb_rooms`")[0][1])

    def dbSettings(self):
        return self.scratch.settings()

    async def test_new_room_waits_until_approved_then_is_answered(self):
        await ApprovalFlow.test_new_room_waits_until_approved_then_is_answered(self)
        # The operators' table is used as it is.
        self.assertEqual(self.definition(), self.before)
        approved = self.scratch.query("SELECT approved_at IS NOT NULL FROM kb_rooms WHERE room_id='777'")
        self.assertEqual(approved, [(1,)])
