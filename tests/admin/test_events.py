"""The event fan-out: every sink hears every event, a failing sink stops none of the others."""

from __future__ import annotations

from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from kkobot.events import EventFanout, IServerEvents, NoEvents
from tests.support import captureLogs, logText


class Recorder(NoEvents):
    def __init__(self) -> None:
        self.heard: list[tuple[Any, ...]] = []

    def messageIn(self, botName: str, room: str, channelId: str | None, command: str | None) -> None:
        self.heard.append(("in", botName, room, channelId, command))

    def commandTimed(self, command: str, seconds: float) -> None:
        self.heard.append(("timed", command, seconds))

    def messageOut(self, botName: str, room: str, channelId: str | None, command: str | None) -> None:
        self.heard.append(("out", botName, room, channelId, command))


class Combined(NoEvents):
    """Counts an answered message in one call."""

    def __init__(self) -> None:
        self.answered: list[tuple[Any, ...]] = []

    def messageAnswered(self, botName, room, channelId, command, seconds, replies) -> None:
        self.answered.append((botName, room, channelId, command, seconds, replies))


class Broken(NoEvents):
    def messageIn(self, botName: str, room: str, channelId: str | None, command: str | None) -> None:
        raise ValueError("broken sink")


class EventFanoutTests(SynchronousTestCase):
    def test_everySinkHearsEveryEventInOrder(self) -> None:
        first, second = Recorder(), Recorder()
        fanout = EventFanout([first, second])
        fanout.messageIn("kkobot", "방", "1", "echo")
        fanout.commandTimed(command="echo", seconds=0.5)
        fanout.messageIn(botName="kkobot", room="방", channelId=None, command=None)
        expected = [("in", "kkobot", "방", "1", "echo"), ("timed", "echo", 0.5),
                    ("in", "kkobot", "방", None, None)]
        self.assertEqual(first.heard, expected)
        self.assertEqual(second.heard, expected)

    def test_aFailingSinkStopsNoneOfTheOthers(self) -> None:
        logs = captureLogs(self)
        after = Recorder()
        fanout = EventFanout([Broken(), after])
        fanout.messageIn("kkobot", "방", "1", "echo")
        self.assertEqual(after.heard, [("in", "kkobot", "방", "1", "echo")])
        self.assertIn("event hook messageIn failed", logText(logs))
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_everyHookIsThere(self) -> None:
        fanout = EventFanout([Recorder(), NoEvents()])
        self.assertTrue(IServerEvents.providedBy(fanout))
        for name in IServerEvents:
            getattr(fanout, name)  # hooks nobody overrides are still callable
        fanout.rowsWritten(3, 0.1)
        fanout.authFailed(None)

    def test_anInstanceLevelHookIsCalled(self) -> None:
        heard: list[float] = []
        sink = NoEvents()
        sink.commandTimed = lambda command, seconds: heard.append(seconds)  # type: ignore[method-assign]
        EventFanout([sink]).commandTimed("echo", 0.25)
        self.assertEqual(heard, [0.25])

    def test_anAnsweredMessageReachesSinksOfTheSingleEvents(self) -> None:
        """A sink counting messageIn, commandTimed and messageOut hears an answered message as those."""
        single, combined = Recorder(), Combined()
        fanout = EventFanout([single, combined, NoEvents()])
        fanout.messageAnswered("kkobot", "방", "1", "echo", 0.5, 2)
        fanout.messageAnswered("kkobot", "방", None, "help", None, 0)
        self.assertEqual(single.heard, [
            ("in", "kkobot", "방", "1", "echo"), ("timed", "echo", 0.5),
            ("out", "kkobot", "방", "1", "echo"), ("out", "kkobot", "방", "1", "echo"),
            ("in", "kkobot", "방", None, "help"),
        ])
        self.assertEqual(combined.answered, [("kkobot", "방", "1", "echo", 0.5, 2),
                                             ("kkobot", "방", None, "help", None, 0)])

