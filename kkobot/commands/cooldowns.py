"""Per-user, per-room and overall cooldowns, timed by the service clock."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime

# The one reply a refused call gets; then silence until the cooldown ends.
COOLDOWN_REPLY = "잠시 후 다시 사용해 주세요. {seconds}초 남았습니다."


@dataclass(frozen=True)
class Cooldown:
    """Seconds between uses of a command: per user (in a room), per room, and overall."""

    user: float = 0
    room: float = 0
    overall: float = 0

    @classmethod
    def of(cls, value: Any) -> Cooldown | None:
        """A declaration as a L{Cooldown}: a plain number means per user."""
        if value is None or value == 0:
            return None
        if isinstance(value, Cooldown):
            return value if (value.user or value.room or value.overall) else None
        return cls(user=float(value))

    def describe(self) -> str:
        parts = []
        if self.user:
            parts.append(f"사용자별 {self.user:g}초")
        if self.room:
            parts.append(f"방별 {self.room:g}초")
        if self.overall:
            parts.append(f"전체 {self.overall:g}초")
        return ", ".join(parts)


@dataclass(frozen=True)
class Refusal:
    """A call refused by a cooldown: how long is left, and whether to say so."""

    secondsLeft: float
    notify: bool

    @property
    def reply(self) -> str:
        return COOLDOWN_REPLY.format(seconds=max(1, math.ceil(self.secondsLeft)))


class Cooldowns:
    """When each (command, scope) may next be used."""

    def __init__(self, clock: IReactorTime) -> None:
        self.clock = clock
        self._until: dict[tuple[str, ...], float] = {}
        # The `until` a refusal was already announced for: one notice per cooldown.
        self._announced: dict[tuple[str, ...], float] = {}

    def _keys(self, name: str, cooldown: Cooldown, context: Any) -> list[tuple[tuple[str, ...], float]]:
        room = str(context.channelId or context.room)
        user = str(context.userHash or context.sender)
        keys = []
        if cooldown.user:
            keys.append(((name, "user", room, user), cooldown.user))
        if cooldown.room:
            keys.append(((name, "room", room), cooldown.room))
        if cooldown.overall:
            keys.append(((name, "overall"), cooldown.overall))
        return keys

    def check(self, name: str, cooldown: Cooldown, context: Any) -> Refusal | None:
        """None when the call may go ahead, else a L{Refusal}."""
        now = self.clock.seconds()
        blocking = [(self._until[k], k) for k, _ in self._keys(name, cooldown, context)
                    if self._until.get(k, 0) > now]
        if not blocking:
            return None
        until, key = max(blocking)
        notify = self._announced.get(key) != until
        self._announced[key] = until
        return Refusal(until - now, notify)

    def use(self, name: str, cooldown: Cooldown, context: Any) -> None:
        """Start the cooldowns of one call that goes ahead."""
        now = self.clock.seconds()
        for key, seconds in self._keys(name, cooldown, context):
            self._until[key] = now + seconds
        if len(self._until) > 1000:
            self._forgetExpired(now)

    def _forgetExpired(self, now: float) -> None:
        for key in [k for k, until in self._until.items() if until <= now]:
            del self._until[key]
            self._announced.pop(key, None)
