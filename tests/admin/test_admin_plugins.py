"""kkobot-admin store ... and triggers ... on the embedded default database, with kkobot-chat writing to it."""

from __future__ import annotations

import json
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.support import tempDir
from tests.support.paths import EXAMPLES



class AdminPluginDataTests(SynchronousTestCase):
    def setUp(self):
        self.workdir = tempDir(self)

    def admin(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from kkobot.admin.cli import main; main()", *argv],
                              capture_output=True, text=True, cwd=self.workdir, timeout=60)

    def chat(self, text: str, *flags: str) -> str:
        done = subprocess.run([sys.executable, "-c", "from kkobot.admin.chat import main; main()",
                               "--plugins", EXAMPLES, *flags], input=text, capture_output=True,
                              text=True, cwd=self.workdir, timeout=60)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    def test_store_list_get_clear(self):
        self.assertEqual(self.admin("store", "list").stdout, "no stored values\n")
        self.chat("# 출석\n# 퀴즈\n서울\n")
        listed = self.admin("store", "list")
        self.assertEqual(listed.stdout.split(), ["PLUGIN", "VALUES", "attendance", "3", "quiz", "2"])
        detail = self.admin("store", "list", "attendance").stdout.splitlines()
        self.assertEqual(detail[0].split(), ["SCOPE", "ROOM", "USER", "KEY", "VALUE", "EXPIRES", "UPDATED"])
        self.assertEqual(len(detail), 4)
        got = self.admin("store", "get", "attendance", "record", "--scope", "user",
                         "--room", "chat:테스트방", "--user", "chat-user")
        self.assertEqual(got.returncode, 0, got.stderr)
        self.assertEqual(json.loads(got.stdout)["points"], 10)
        missing = self.admin("store", "get", "attendance", "record")
        self.assertEqual(missing.returncode, 1)
        self.assertIn("scope room needs --room", missing.stderr)
        cleared = self.admin("store", "clear", "attendance", "--scope", "user")
        self.assertEqual(cleared.stdout, "2 value(s) of plugin attendance removed\n")
        self.assertIn("오늘 2번째", self.chat("# 출석\n"))  # the room's order counter stayed
        self.assertIn("오늘 3번째", self.chat("# 출석\n", "--user", "other"))

    def test_triggers_add_list_remove_reach_the_chat(self):
        added = self.admin("triggers", "add", "영업시간", "10시부터 22시까지예요, {sender}님")
        self.assertEqual(added.stdout, "trigger 1 added (a running server answers with it within seconds)\n")
        self.admin("triggers", "add", "--kind", "regex", "--room", "chat:공지방", "--cooldown", "0",
                   "^공지\\??$", "공지는 고정 메시지를 보세요")
        bad = self.admin("triggers", "add", "--kind", "regex", "(", "x")
        self.assertEqual((bad.returncode, bad.stderr.startswith("kkobot-admin: not a valid regular")), (1, True))
        listed = self.admin("triggers", "list").stdout.splitlines()
        self.assertEqual([line.split()[:4] for line in listed[1:]],
                         [["1", "keyword", "*", "30"], ["2", "regex", "chat:공지방", "0"]])
        out = self.chat("영업시간 알려주세요\n공지?\n/room 공지방\n공지?\n")
        self.assertIn("kkobot: 10시부터 22시까지예요, 홍길동님", out)
        self.assertEqual(out.count("공지는 고정 메시지를 보세요"), 1)
        self.assertEqual(self.admin("triggers", "remove", "1").stdout, "trigger 1 removed\n")
        self.assertNotIn("10시부터", self.chat("영업시간 알려주세요\n"))
        self.assertEqual(self.admin("triggers", "remove", "1").returncode, 1)
