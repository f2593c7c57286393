"""Sending one announcement's parts through the outbound entry point, paced, and the outcome for its log row."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

from twisted.internet import defer, task

from kkobot.announcements.content import Part


@dataclass
class Delivered:
    """What went out: the parts sent whole, the problems, and per-part details for api_response."""

    sent: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    details: list[dict[str, Any]] = field(default_factory=list)

    def status(self, wanted: int) -> str:
        """success (every wanted part), failed (none), partial (some)."""
        if self.sent and len(self.sent) == wanted and not self.errors:
            return "success"
        return "partial" if self.sent else "failed"


def reachable(outbound: Any, bot: str) -> bool:
    """
    True when the outbound entry point can take a message for C{bot} now: it says so
    itself (C{canSend}), it has a router (which routes to the bot's instance or queues
    for an absent bot), or one of the bot's connections here is verified and approved.
    """
    canSend = getattr(outbound, "canSend", None)
    if canSend is not None:
        return bool(canSend(bot))
    if getattr(outbound, "router", None) is not None:
        return True
    registry = getattr(outbound, "registry", None)
    if registry is None:
        return True
    return any(c.verified and c.approved and c.send for c in registry.forBot(bot))


@defer.inlineCallbacks
def deliver(
    outbound: Any,
    clock: Any,
    bot: str,
    room: str,
    channelId: str | None,
    parts: Sequence[Part],
    interval: float,
):
    """
    Send C{parts} in order, C{interval} seconds apart (send_interval_seconds), each
    through C{outbound.send} (the connection's own wire form; logged as scheduled).
    Stops at the first message the bot cannot take: the rest would not arrive either.
    """
    result = Delivered()
    first = True
    for number, part in enumerate(parts):
        ok = True
        for reply in part.replies:
            if not first and interval > 0:
                yield task.deferLater(clock, interval, lambda: None)
            first = False
            try:
                accepted = yield defer.maybeDeferred(
                    outbound.send, bot, room, reply.text, channelId,
                    isGroupChat=True, scheduled=True, mediaWaitTime=reply.mediaWaitTime,
                )
            except Exception as e:
                accepted = False
                result.errors.append(f"{part.name}: {e}")
            if not accepted:
                ok = False
                break
        result.details.append({"part": part.name, "sent": ok, "messages": len(part.replies)})
        if ok:
            result.sent.append(part.name)
            continue
        left = [p.name for p in parts[number:]]
        result.errors.append(f"bot {bot} took no message; not sent: {', '.join(left)}")
        for rest in parts[number + 1:]:
            result.details.append({"part": rest.name, "sent": False, "messages": len(rest.replies)})
        break
    return result
