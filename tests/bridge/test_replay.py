"""Replay memory across restarts: a signature accepted before a restart is refused after it."""

from __future__ import annotations

import os

from twisted.internet import defer, task
from twisted.trial.unittest import SynchronousTestCase
from zope.interface.verify import verifyObject

from kkobot.bridge.auth import ReplayGuard
from kkobot.interfaces import IReplayGuard
from kkobot.bridge.replay import FLUSH_INTERVAL, MAGIC, RECORD, ReplayFile
from tests.support.authrig import NOW, MemoryDevices, Rig, errors, signedAuth
from tests.support import HELLO_320, analyze, tempDir

WINDOW = 300.0


def inline(func, *args):
    """Runs the writer's file work at once, instead of in a thread."""
    return defer.maybeDeferred(func, *args)


class Held:
    """Runs the writer's file work only when told to (a write still in its thread)."""

    def __init__(self) -> None:
        self.calls: list = []
        self.writes = 0

    def __call__(self, func, *args):
        d = defer.Deferred()
        self.calls.append((d, func, args))
        self.writes += 1
        return d

    def finish(self) -> None:
        while self.calls:
            d, func, args = self.calls.pop(0)
            func(*args)
            d.callback(None)


class ReplayFileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = os.path.join(tempDir(self), "replay", "test")
        self.clock = task.Clock()
        self.clock.advance(NOW)

    def guard(self, run=inline) -> ReplayFile:
        guard = ReplayFile(self.directory, self.clock, WINDOW, run=run)
        guard.startService()
        return guard

    def restart(self, guard: ReplayFile, run=inline) -> ReplayFile:
        self.successResultOf(guard.stopService())
        return self.guard(run)

    def test_provides_the_interface(self) -> None:
        verifyObject(IReplayGuard, self.guard())
        verifyObject(IReplayGuard, ReplayGuard(self.clock, WINDOW))

    def test_a_signature_of_the_last_run_is_a_replay_on_every_connection(self) -> None:
        guard = self.guard()
        self.assertTrue(guard.firstUse("ab" * 32, 1, NOW))
        self.clock.advance(FLUSH_INTERVAL)  # the batch goes to the writer
        guard = self.restart(guard)
        # Connection numbers start again at 1 in a new process: even "its own" is refused.
        self.assertFalse(guard.firstUse("ab" * 32, 1, NOW))
        self.assertFalse(guard.firstUse("ab" * 32, 7, NOW))
        self.assertTrue(guard.firstUse("cd" * 32, 1, NOW))

    def test_stopping_writes_what_the_last_turn_accepted(self) -> None:
        guard = self.guard()
        self.assertTrue(guard.firstUse("ab" * 32, 1, NOW))
        guard = self.restart(guard)  # before the batch was due
        self.assertFalse(guard.firstUse("ab" * 32, 2, NOW))

    def test_stopping_waits_for_the_write_in_flight(self) -> None:
        held = Held()
        guard = self.guard(held)
        guard.firstUse("ab" * 32, 1, NOW)
        self.clock.advance(FLUSH_INTERVAL)
        guard.firstUse("cd" * 32, 1, NOW)
        stopped = guard.stopService()
        self.assertNoResult(stopped)
        held.finish()
        self.successResultOf(stopped)
        restarted = self.guard()
        self.assertFalse(restarted.firstUse("ab" * 32, 2, NOW))
        self.assertFalse(restarted.firstUse("cd" * 32, 2, NOW))

    def test_one_write_per_interval_and_none_on_the_reactor(self) -> None:
        held = Held()
        guard = self.guard(held)
        for i in range(100):
            guard.firstUse(f"{i:032x}" + "0" * 32, 1, NOW)
        self.assertEqual(held.calls, [])  # nothing written inside the line's handling
        self.clock.advance(FLUSH_INTERVAL)
        self.assertEqual(len(held.calls), 1)
        (_, _, (path, data, _)) = held.calls[0]
        self.assertEqual(len(data), 100 * RECORD.size)
        held.finish()

    def test_repeats_on_their_own_connection_are_written_once(self) -> None:
        held = Held()
        guard = self.guard(held)
        for _ in range(5):
            self.assertTrue(guard.firstUse("ab" * 32, 1, NOW))
        self.clock.advance(FLUSH_INTERVAL)
        (_, _, (_, data, _)) = held.calls[0]
        self.assertEqual(len(data), RECORD.size)
        held.finish()

    def test_forgotten_after_the_window_and_files_removed(self) -> None:
        guard = self.guard()
        guard.firstUse("ab" * 32, 1, NOW)
        self.clock.advance(WINDOW + 1)
        guard = self.restart(guard)
        self.assertTrue(guard.firstUse("ab" * 32, 1, NOW + WINDOW))
        self.clock.advance(FLUSH_INTERVAL)
        # Segments are started every window and removed when nothing in them counts.
        for _ in range(4):
            self.clock.advance(WINDOW)
            guard.firstUse(os.urandom(32).hex(), 1, self.clock.seconds())
            self.clock.advance(FLUSH_INTERVAL)
        self.assertLessEqual(len(os.listdir(self.directory)), 3)
        guard = self.restart(guard)
        self.assertLessEqual(len(guard), 3)

    def test_a_batch_cut_short_by_a_crash_is_read_up_to_the_cut(self) -> None:
        guard = self.guard()
        guard.firstUse("ab" * 32, 1, NOW)
        guard.firstUse("cd" * 32, 1, NOW)
        self.successResultOf(guard.stopService())
        (name,) = os.listdir(self.directory)
        path = os.path.join(self.directory, name)
        with open(path, "rb") as f:
            data = f.read()
        self.assertTrue(data.startswith(MAGIC))
        with open(path, "wb") as f:
            f.write(data[:-3])
        restarted = self.guard()
        self.assertFalse(restarted.firstUse("ab" * 32, 2, NOW))
        self.assertTrue(restarted.firstUse("cd" * 32, 2, NOW))

    def test_a_foreign_file_is_ignored(self) -> None:
        os.makedirs(self.directory)
        with open(os.path.join(self.directory, f"replay-{int(NOW)}.bin"), "wb") as f:
            f.write(b"not ours" * 10)
        guard = self.guard()
        self.assertTrue(guard.firstUse("ab" * 32, 1, NOW))

    def test_a_write_that_fails_does_not_stop_the_guard(self) -> None:
        def failing(func, *args):
            return defer.fail(OSError(28, "No space left on device"))

        guard = self.guard(failing)
        self.assertTrue(guard.firstUse("ab" * 32, 1, NOW))
        self.clock.advance(FLUSH_INTERVAL)
        self.assertFalse(guard.firstUse("ab" * 32, 2, NOW))  # memory still guards
        self.assertTrue(guard.firstUse("cd" * 32, 2, NOW))
        self.clock.advance(FLUSH_INTERVAL)
        self.successResultOf(guard.stopService())
        self.flushLoggedErrors()


class AcrossARestartTests(SynchronousTestCase):
    """Finding 2: a signed line captured before a restart was accepted after it."""

    def setUp(self) -> None:
        self.directory = os.path.join(tempDir(self), "replay")

    def server(self) -> tuple[Rig, ReplayFile]:
        rig = Rig(devices=MemoryDevices())
        guard = ReplayFile(self.directory, rig.clock, WINDOW, run=inline)
        guard.startService()
        rig.auth.replays = guard
        self.addCleanup(rig.close)
        return rig, guard

    def test_captured_admin_command_refused_after_restart(self) -> None:
        captured = analyze("# echo 안녕", auth=signedAuth())
        before, guard = self.server()
        phone = before.connect(hello=HELLO_320)
        phone.send(captured)
        self.assertEqual(phone.replies(phone.received()), ["에코: 안녕"])
        self.successResultOf(guard.stopService())
        after, _ = self.server()
        after.clock.advance(60)  # restarted a minute later, well inside the window
        # The signature does not cover the text: the attacker's own words ride on it.
        forged = analyze("# reload", userHash="admin-hash", auth=captured["data"]["auth"])
        impostor = after.connect(hello=HELLO_320)
        impostor.send(forged)
        events = impostor.received()
        (refusal,) = errors(events, "AUTH_FAILED")
        self.assertIn("replayed", refusal["message"])
        self.assertEqual(after.chatlog.rows, [])
        # The phone itself goes on with fresh signatures.
        phone = after.connect(hello=HELLO_320)
        phone.send(analyze("# echo 다시", auth=signedAuth(int(after.clock.seconds() * 1000))))
        self.assertEqual(phone.replies(phone.received()), ["에코: 다시"])


class WriteRateTests(SynchronousTestCase):
    def test_signatures_during_a_write_wait_for_the_next_interval(self) -> None:
        # Writing again as soon as a write finished was a write per reactor turn
        # under load: a thread hop and three system calls per message.
        clock = task.Clock()
        clock.advance(NOW)
        held = Held()
        guard = ReplayFile(os.path.join(tempDir(self), "replay"), clock, WINDOW, run=held)
        guard.startService()
        # A signature every tenth of the interval; each write takes three of those.
        for turn in range(50):
            guard.firstUse(f"{turn:032x}" + "0" * 32, 1, NOW)
            clock.advance(FLUSH_INTERVAL / 10)
            if turn % 3 == 2:
                held.finish()
        self.assertLessEqual(held.writes, 5)
        stopped = guard.stopService()
        held.finish()
        self.successResultOf(stopped)
