"""kkobot-admin rooms ... on the embedded default database, with kkobot-chat speaking in a room."""

from __future__ import annotations

import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from kkobot.rooms.settings import RoomSettings, SettingsError
from tests.support import tempDir

ROOM = "chat:테스트방"


class RoomsCli(SynchronousTestCase):
    def setUp(self):
        self.workdir = tempDir(self)

    def admin(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from kkobot.admin.cli import main; main()",
                               "rooms", *argv], capture_output=True, text=True, cwd=self.workdir,
                              timeout=60)

    def chat(self, text: str) -> str:
        done = subprocess.run([sys.executable, "-c", "from kkobot.admin.chat import main; main()"],
                              input=text, capture_output=True, text=True, cwd=self.workdir, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    def test_list_show_set_and_deny(self):
        self.assertIn("no rooms", self.admin("list").stdout)
        self.assertIn("에코: 안녕", self.chat("# echo 안녕\n"))
        listed = self.admin("list").stdout.splitlines()
        self.assertEqual(listed[0].split(), ["ROOM", "NAME", "BOT", "STATUS", "FIRST", "SEEN"])
        self.assertEqual(listed[1].split()[:4], [ROOM, "테스트방", "kkobot", "approved"])
        done = self.admin("set", ROOM, "--disable", "echo", "--add-admin", "a1", "--setting",
                          "help.admin_only=true")
        self.assertEqual(done.returncode, 0, done.stderr)
        shown = self.admin("show", ROOM).stdout
        self.assertIn("admins: a1", shown)
        self.assertIn("disabled commands: echo", shown)
        self.assertIn('"help": {"admin_only": true}', shown)
        self.assertIn("이 방에서는 사용할 수 없는 명령입니다.", self.chat("# echo 안녕\n"))
        self.assertIn("denied", self.admin("deny", ROOM, "--reason", "광고").stdout)
        self.assertEqual(self.admin("list", "--status", "denied").stdout.splitlines()[1].split()[0], ROOM)
        missing = self.admin("approve", "nope")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("no room nope", missing.stderr)
        bad = self.admin("set", ROOM, "--setting", "noequals")
        self.assertEqual(bad.returncode, 1)
        self.assertIn("COMMAND.KEY=VALUE", bad.stderr)


class Settings(SynchronousTestCase):
    def test_changes(self):
        s = RoomSettings().changed(["a", "b"], [], ["Echo"], [], ["echo.limit=3", "help.admin_only=true",
                                                                 "help.note=안녕"])
        self.assertEqual(s.admins, {"a", "b"})
        self.assertTrue(s.isDisabled("ECHO"))
        self.assertTrue(s.adminOnly("help"))
        self.assertEqual(s.settingsOf("echo"), {"limit": 3})
        t = s.changed([], ["a"], [], ["echo"], ["echo.limit=", "help.enabled=false"])
        self.assertEqual(t.admins, {"b"})
        self.assertFalse(t.isDisabled("echo"))
        self.assertTrue(t.isDisabled("help"))
        self.assertNotIn("echo", t.commands)
        self.assertEqual(RoomSettings.fromRow(*t.toRow()), t)
        self.assertEqual(RoomSettings.fromRow("not json", None, "[]"), RoomSettings())
        self.assertRaises(SettingsError, s.changed, values=["x=1"])
