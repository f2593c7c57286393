"""The status page's message rates: per-minute counts, busiest rooms, room names by channel."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kkobot.admin.rates import WINDOW_BUCKETS, MessageRates


class MessageRatesTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.clock.advance(1_800_000_000)  # a minute boundary
        self.rates = MessageRates(self.clock, maxRooms=3)

    def exchange(self, room: str, channelId: str | None, replies: int = 1, bot: str = "kkobot") -> None:
        self.rates.messageIn(bot, room, channelId, "echo")
        for _ in range(replies):
            self.rates.messageOut(bot, room, channelId, "echo")

    def test_countsLandInTheirMinute(self) -> None:
        self.exchange("방", "1")
        self.exchange("방", "1")
        self.clock.advance(60)
        self.exchange("방", "1", replies=0)
        minutes = self.rates.perMinute()
        self.assertEqual(len(minutes), WINDOW_BUCKETS)
        self.assertEqual(minutes[-2:], [(2, 2), (1, 0)])
        self.assertEqual(sum(a + b for a, b in minutes), 5)

    def test_anAnsweredMessageCountsAsInAndOut(self) -> None:
        self.exchange("방", "1", replies=2)
        self.rates.messageAnswered("kkobot", "방", "1", "echo", 0.01, 2)
        self.rates.messageAnswered("kkobot", "방", "1", None, None, 0)
        self.assertEqual(self.rates.perMinute()[-1], (3, 4))
        [room] = self.rates.rooms()
        self.assertEqual((room.room, room.received, room.sent), ("방", 3, 4))

    def test_anHourLaterTheCountsAreGone(self) -> None:
        self.exchange("방", "1")
        self.clock.advance(60 * WINDOW_BUCKETS)
        self.assertEqual(sum(a + b for a, b in self.rates.perMinute()), 0)
        self.assertEqual(self.rates.rooms(), [])

    def test_roomsBusiestFirstWithTheLatestName(self) -> None:
        self.exchange("조용한 방", "1")
        self.exchange("바쁜 방", "2", replies=3)
        self.clock.advance(61)
        self.exchange("이름 바뀐 방", "1")
        self.exchange("이름 바뀐 방", "1")
        rooms = self.rates.rooms()
        self.assertEqual([(r.room, r.channelId, r.received, r.sent) for r in rooms],
                         [("이름 바뀐 방", "1", 3, 3), ("바쁜 방", "2", 1, 3)])
        self.assertEqual(rooms[0].lastAt, self.clock.seconds())

    def test_roomNameIsTheLatestEvenWithinTheMinute(self) -> None:
        self.exchange("처음 이름", "7")
        self.clock.advance(61)
        self.assertEqual(self.rates.roomName("kkobot", "7"), "처음 이름")
        self.exchange("새 이름", "7")
        self.assertEqual(self.rates.roomName("kkobot", "7"), "새 이름")
        self.assertIsNone(self.rates.roomName("other-bot", "7"))
        self.assertIsNone(self.rates.roomName("kkobot", "8"))

    def test_roomsWithoutChannelIdAreKeyedByName(self) -> None:
        self.exchange("방", None)
        self.exchange("방", None)
        self.exchange("방", "1")
        rooms = {(r.room, r.channelId): r.received for r in self.rates.rooms()}
        self.assertEqual(rooms, {("방", None): 2, ("방", "1"): 1})

    def test_leastRecentlyActiveRoomsAreForgotten(self) -> None:
        for n in range(5):
            self.exchange(f"방{n}", str(n))
            self.clock.advance(1)
        self.exchange("방0", "0")  # active again: kept
        names = sorted(r.room for r in self.rates.rooms())
        self.assertEqual(names, ["방0", "방3", "방4"])
        # Every message still counts in the total, forgotten rooms too.
        self.assertEqual(sum(a for a, _ in self.rates.perMinute()), 6)

    def test_aFloodOfNewRoomsWithinOneMinuteStaysBounded(self) -> None:
        for n in range(1000):
            self.exchange(f"방{n}", str(n), replies=0)
        self.assertLessEqual(len(self.rates._pending) + len(self.rates._rooms), 2 * 3)
        self.assertEqual(sum(a for a, _ in self.rates.perMinute()), 1000)
