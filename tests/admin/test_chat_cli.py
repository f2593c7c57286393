"""kkobot-chat driven through a pseudo-terminal: Korean typing, the examples, a question and its answer."""

from __future__ import annotations

import os
import pty
import select
import subprocess
import sys
import time

from twisted.trial.unittest import SynchronousTestCase

from tests.support import tempDir
from tests.support.paths import EXAMPLES



class Terminal:
    """A program on a pty, read and typed at like a person would (UTF-8)."""

    def __init__(self, argv: list[str], cwd: str) -> None:
        self.master, slave = pty.openpty()
        env = dict(os.environ, LANG="C.UTF-8", LC_ALL="C.UTF-8")
        self.proc = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, cwd=cwd,
                                     env=env, start_new_session=True)
        os.close(slave)
        self.screen = b""

    def type(self, text: str) -> None:
        os.write(self.master, text.encode("utf-8"))

    def waitFor(self, text: str, timeout: float = 20.0, since: int | None = None) -> str:
        """
        Read until C{text} appears after what was already seen (or after offset
        C{since} of the screen); the output from there on.
        """
        start = len(self.screen) if since is None else since
        wanted = text.encode("utf-8")
        deadline = time.monotonic() + timeout
        while wanted not in self.screen[start:]:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{text!r} did not appear; screen:\n"
                                     + self.screen.decode("utf-8", "replace"))
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.master, 4096)
                except OSError:
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"the program ended before {text!r}; screen:\n"
                                         + self.screen.decode("utf-8", "replace"))
                self.screen += chunk
        return self.screen[start:].decode("utf-8", "replace")

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        os.close(self.master)


class ChatCliTests(SynchronousTestCase):
    def start(self, *flags: str) -> Terminal:
        workdir = tempDir(self)
        argv = [sys.executable, "-c", "from kkobot.admin.chat import main; main()",
                "--plugins", EXAMPLES, *flags]
        terminal = Terminal(argv, workdir)
        self.addCleanup(terminal.close)
        self.workdir = workdir
        return terminal

    def test_examples_and_a_question_through_a_terminal(self):
        t = self.start("--room", "우리방", "--sender", "철수")
        t.waitFor("[우리방] 철수> ")
        t.type("# 출석\n")
        self.assertIn("철수님 출석 완료! 오늘 1번째, 연속 1일, +10점 (총 10점)", t.waitFor("[우리방] 철수> "))
        t.type("# 퀴즈\n")
        t.waitFor("[퀴즈] 대한민국의 수도는? (30초)")
        t.type("서울\n")
        t.waitFor("정답입니다! 철수님 누적 1점")
        # A whole syllable erased by one backspace (the terminal's own line editing).
        t.type("# echo 한글자\x7f\n")
        t.waitFor("에코: 한글\r\n")
        t.type("# 출석순위\n")
        t.waitFor("1. 철수 — 10점 (연속 1일, 총 1일)")
        t.type("/quit\n")
        self.assertEqual(t.proc.wait(timeout=20), 0)
        # The chat went into a real SQLite chat log and plugin store under ./var.
        self.assertTrue(os.path.exists(os.path.join(self.workdir, "var", "kkobot_test.sqlite3")))

    def test_values_stay_for_the_next_session_and_admins_may_reload(self):
        t = self.start("--admin")
        t.waitFor("> ")
        t.type("# 출석\n")
        t.waitFor("출석 완료!")
        mark = len(t.screen)
        t.type("# reload\n")
        # Not the next "> ": the terminal's echo of the typed line holds one too.
        t.waitFor("플러그인을 다시 불러왔습니다", since=mark)
        mark = len(t.screen)
        t.type("/room 다른방\n")
        t.type("# 출석\n")
        # The prompt and the answer may arrive in one read: both are looked for from the mark.
        answered = t.waitFor("출석 완료! 오늘 1번째", since=mark)
        self.assertIn("[다른방]", answered)
        t.type("\x04")  # Ctrl-D
        self.assertEqual(t.proc.wait(timeout=20), 0)
        again = Terminal([sys.executable, "-c", "from kkobot.admin.chat import main; main()",
                          "--plugins", EXAMPLES], self.workdir)
        self.addCleanup(again.close)
        again.waitFor("> ")
        again.type("# 출석\n")
        again.waitFor("홍길동님은 오늘 이미 출석했습니다.")
        again.type("/quit\n")
        self.assertEqual(again.proc.wait(timeout=20), 0)
