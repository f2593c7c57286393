"""kkobot-admin schedules list|add|pause|resume|remove|log, as an operator runs it (the real command, its database)."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys

from twisted.trial.unittest import SynchronousTestCase

from tests.support import ScratchMysql, tempDir, writeMysqlConfig


class SchedulesCommand:
    def admin(self, *argv: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", "from kkobot.admin.cli import main; main()",
                               *self.flags, *argv],
                              capture_output=True, text=True, cwd=self.workdir, timeout=60)

    def ok(self, *argv: str) -> str:
        done = self.admin(*argv)
        self.assertEqual(done.returncode, 0, done.stderr)
        return done.stdout

    def test_add_list_pause_resume_log_remove(self):
        self.assertEqual(self.ok("schedules", "list"), "no schedules\n")
        added = self.ok("schedules", "add", "--bot", "kkobot", "--room", "18398338829933568",
                        "--text", "주간 공지", "--weekly", "mon,fri", "--at", "09:00", "--at", "18:30",
                        "--images-1", "https://img.example/a.png", "--wait-1", "2000",
                        "--until", "2099-01-01 00:00")
        self.assertTrue(added.startswith("schedule 1 added: weekly mon,fri 09:00,18:30, next "), added)
        once = self.ok("schedules", "add", "--bot", "kkobot", "--room", "공지방", "--text", "한 번",
                       "--once", "2099-05-01", "--at", "07:00", "--title", "행사")
        self.assertIn("schedule 2 added: once 2099-05-01 07:00, next 2099-05-01 07:00:00", once)
        lines = self.ok("schedules", "list").splitlines()
        self.assertEqual(lines[0].split(), ["ID", "STATUS", "BOT", "ROOM", "WHEN", "VALID", "UNTIL",
                                            "SENT", "NEXT", "TITLE"])
        self.assertEqual(lines[1].split()[:6], ["1", "active", "kkobot", "18398338829933568",
                                                "weekly", "mon,fri"])
        self.assertEqual(lines[2].split()[-1], "행사")
        self.assertIn("inactive", self.ok("schedules", "pause", "1"))
        self.assertEqual(self.ok("schedules", "list", "--status", "inactive").splitlines()[1].split()[0], "1")
        self.assertIn("active", self.ok("schedules", "resume", "1"))
        self.assertEqual(self.ok("schedules", "log"), "no sends recorded\n")
        self.assertEqual(self.ok("schedules", "remove", "2"), "schedule 2 removed, with its send log\n")
        self.assertEqual(len(self.ok("schedules", "list").splitlines()), 2)


class SchedulesOnTheEmbeddedDefault(SchedulesCommand, SynchronousTestCase):
    def setUp(self):
        self.workdir = tempDir(self)
        self.flags: tuple[str, ...] = ()

    def test_the_rows_are_in_the_servers_sqlite_file(self):
        self.ok("schedules", "add", "--bot", "kkobot", "--room", "1", "--text", "x", "--daily",
                "--at", "10:00")
        conn = sqlite3.connect(os.path.join(self.workdir, "var", "kkobot_test.sqlite3"))
        try:
            rows = conn.execute("SELECT target_bot_name, schedule_type, schedule_time, created_by_type "
                                "FROM kb_schedule").fetchall()
        finally:
            conn.close()
        self.assertEqual(rows, [("kkobot", "daily", "10:00:00", "branch")])

    def test_mistakes_are_one_line_and_exit_status_1(self):
        for argv, message in (
            (("schedules", "pause", "99"), "no schedule 99"),
            (("schedules", "add", "--bot", "b", "--room", "r", "--daily", "--at", "09:00"),
             "give --text or images"),
            (("schedules", "add", "--bot", "b", "--room", "r", "--text", "t", "--weekly", "mon,xyz",
              "--at", "09:00"), "--weekly 'mon,xyz'"),
            (("schedules", "add", "--bot", "b", "--room", "r", "--text", "t", "--daily", "--at", "25:00"),
             "--at '25:00'"),
            (("schedules", "add", "--bot", "b", "--room", "r", "--text", "t", "--once", "2001-01-01",
              "--at", "09:00"), "would never send"),
        ):
            done = self.admin(*argv)
            self.assertEqual(done.returncode, 1, done.stdout)
            self.assertEqual(len(done.stderr.splitlines()), 1, done.stderr)
            self.assertIn(message, done.stderr)


class SchedulesOnMariaDB(SchedulesCommand, SynchronousTestCase):
    def setUp(self):
        self.workdir = tempDir(self)
        scratch = ScratchMysql()
        self.addCleanup(scratch.drop)
        cfg = os.path.join(self.workdir, ".cfg")
        s = scratch.settings()
        writeMysqlConfig(cfg, s.host, s.port, s.name, os.path.join(self.workdir, "journal"))
        self.flags = ("--config", cfg)
