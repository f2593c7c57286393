"""Messages per room over the last hour and per minute, in memory and bounded."""

from __future__ import annotations

from collections import OrderedDict, deque
from dataclasses import dataclass, field

from twisted.internet.interfaces import IReactorTime
from zope.interface import implementer

from kkobot.events import NoEvents, IServerEvents

BUCKET_SECONDS = 60
WINDOW_BUCKETS = 60  # one hour of minutes
# Rooms beyond this are forgotten least-recently-active first, so a flood of new
# rooms cannot grow memory without bound.
MAX_ROOMS = 1000


@dataclass
class _Series:
    """Per-minute (in, out) counts; old minutes fall off as new ones are recorded."""

    buckets: deque[list[int]] = field(default_factory=deque)  # [minute, in, out]

    def add(self, minute: int, inbound: int, outbound: int) -> None:
        buckets = self.buckets
        if buckets and buckets[-1][0] == minute:
            bucket = buckets[-1]
        else:
            bucket = [minute, 0, 0]
            buckets.append(bucket)
            # Old minutes can only fall off when a new one starts.
            self.trim(minute)
        bucket[1] += inbound
        bucket[2] += outbound

    def trim(self, minute: int) -> None:
        while self.buckets and self.buckets[0][0] <= minute - WINDOW_BUCKETS:
            self.buckets.popleft()

    def totals(self, minute: int) -> tuple[int, int]:
        self.trim(minute)
        return sum(b[1] for b in self.buckets), sum(b[2] for b in self.buckets)


@dataclass(frozen=True)
class RoomActivity:
    """One room's traffic in the last hour."""

    botName: str
    room: str
    channelId: str | None
    received: int
    sent: int
    lastAt: float


@dataclass
class _Room:
    name: str
    channelId: str | None
    series: _Series
    lastAt: float


@implementer(IServerEvents)
class MessageRates(NoEvents):
    """
    Listens to message events; answers "how busy is each room" for the status page,
    and "what is the room name of this channel id" for the outbound API.
    """

    def __init__(self, clock: IReactorTime, maxRooms: int = MAX_ROOMS) -> None:
        self.clock = clock
        self.maxRooms = maxRooms
        self._all = _Series()
        # (bot, True, channel id) or (bot, False, room name), least recently active first.
        self._rooms: OrderedDict[tuple[str, bool, str], _Room] = OrderedDict()
        # This minute's counts, [name, channel id, in, out, last at] by room: two
        # events per message only add here; they reach the series when the minute
        # ends or someone asks (a dict entry costs a third of the ordered update).
        self._pending: dict[tuple[str, bool, str], list] = {}
        self._pendingMinute = self._minute()

    def _minute(self) -> int:
        return int(self.clock.seconds() // BUCKET_SECONDS)

    def _roll(self, now: float) -> None:
        """A new minute began, or too many rooms wait: fold the pending counts."""
        self._fold()
        self._pendingMinute = int(now // BUCKET_SECONDS)

    def _fold(self) -> None:
        """Move the pending minute's counts into the per-room series."""
        pending, self._pending = self._pending, {}
        minute = self._pendingMinute
        rooms = self._rooms
        for key, (room, channelId, inbound, outbound, lastAt) in pending.items():
            self._all.add(minute, inbound, outbound)
            entry = rooms.get(key)
            if entry is None:
                entry = rooms[key] = _Room(room, channelId, _Series(), lastAt)
            else:
                rooms.move_to_end(key)
                entry.name = room
                entry.lastAt = lastAt
            entry.series.add(minute, inbound, outbound)
        while len(rooms) > self.maxRooms:
            rooms.popitem(last=False)

    def messageIn(self, botName: str, room: str, channelId: str | None, command: str | None) -> None:
        self._count(botName, room, channelId, 1, 0)

    def messageOut(self, botName: str, room: str, channelId: str | None, command: str | None) -> None:
        self._count(botName, room, channelId, 0, 1)

    def messageAnswered(self, botName: str, room: str, channelId: str | None, command: str | None,
                        seconds: float | None, replies: int) -> None:
        self._count(botName, room, channelId, 1, replies)

    def _count(self, botName: str, room: str, channelId: str | None, inbound: int, outbound: int) -> None:
        """Messages in and out of the room, in this minute's pending counts."""
        now = self.clock.seconds()
        if now // BUCKET_SECONDS != self._pendingMinute or len(self._pending) >= self.maxRooms:
            self._roll(now)
        # Keyed by channel id where the bridge sends one: room names can change.
        key = (botName, True, channelId) if channelId else (botName, False, room)
        counts = self._pending.get(key)
        if counts is None:
            counts = self._pending[key] = [room, channelId, 0, 0, now]
        else:
            counts[0] = room
            counts[4] = now
        counts[2] += inbound
        counts[3] += outbound

    def roomName(self, botName: str, channelId: str) -> str | None:
        """The latest name seen for a channel of this bot (the phone addresses rooms by name)."""
        key = (botName, True, channelId)
        counts = self._pending.get(key)
        if counts is not None:
            return counts[0]
        entry = self._rooms.get(key)
        return entry.name if entry is not None else None

    def perMinute(self) -> list[tuple[int, int]]:
        """(received, sent) for each of the last 60 minutes, oldest first; the last is now."""
        self._fold()
        minute = self._minute()
        self._all.trim(minute)
        byMinute = {b[0]: (b[1], b[2]) for b in self._all.buckets}
        return [byMinute.get(m, (0, 0)) for m in range(minute - WINDOW_BUCKETS + 1, minute + 1)]

    def rooms(self) -> list[RoomActivity]:
        """Rooms with traffic in the last hour, busiest first."""
        self._fold()
        minute = self._minute()
        out = []
        for (botName, _, _), entry in self._rooms.items():
            received, sent = entry.series.totals(minute)
            if received or sent:
                out.append(
                    RoomActivity(botName, entry.name, entry.channelId, received, sent, entry.lastAt)
                )
        out.sort(key=lambda r: (-(r.received + r.sent), r.botName, r.room))
        return out
