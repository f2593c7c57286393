"""An outbound message as it travels between instances, and what became of it."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict, dataclass
from typing import Any, Mapping

# A message's life: queued (in an inbox or waiting for its bot), then delivered (to
# a phone, once) or undelivered (with a reason).
QUEUED = "queued"
DELIVERED = "delivered"
UNDELIVERED = "undelivered"


def newMessageId() -> str:
    return uuid.uuid4().hex


@dataclass(frozen=True)
class RoutedMessage:
    """What the delivering instance needs to write one `messageResponse` line."""

    id: str
    botName: str
    room: str
    text: str
    channelId: str | None = None
    isGroupChat: bool = True
    scheduled: bool = False
    mediaWaitTime: int | None = None
    origin: str = ""
    created: float = 0.0
    deadline: float = 0.0

    def toJSON(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, separators=(",", ":"))

    @classmethod
    def fromJSON(cls, text: str) -> RoutedMessage:
        data = json.loads(text)
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


@dataclass(frozen=True)
class SendResult:
    """
    The sender's answer. C{outcome}: 'delivered' (here, at once), 'routed' (to
    C{instance}'s inbox), 'waiting' (no instance holds the bot yet), 'undelivered'
    (C{reason}), or 'duplicate' (this id was sent before; C{state} is its state).
    """

    id: str
    outcome: str
    state: str
    instance: str | None = None
    reason: str | None = None

    @property
    def accepted(self) -> bool:
        """The message is (or will be) delivered, unless its bot stays away."""
        return self.state != UNDELIVERED


@dataclass(frozen=True)
class MessageStatus:
    """A message's state, readable by id from any instance."""

    id: str
    state: str
    botName: str
    room: str
    created: float
    deadline: float
    origin: str
    target: str | None = None
    deliveredBy: str | None = None
    deliveredAt: float | None = None
    reason: str | None = None

    @classmethod
    def fromHash(cls, messageId: str, fields: Mapping[str, Any]) -> MessageStatus:
        payload = RoutedMessage.fromJSON(fields["payload"])

        def ms(name: str) -> float | None:
            value = fields.get(name)
            return int(value) / 1000.0 if value not in (None, "") else None

        return cls(
            id=messageId,
            state=fields.get("state", QUEUED),
            botName=payload.botName,
            room=payload.room,
            created=payload.created,
            deadline=ms("deadline") or 0.0,
            origin=payload.origin,
            target=fields.get("target") or None,
            # `by` is instance#boot: the process, so restarts are told apart.
            deliveredBy=(fields.get("by") or "").rpartition("#")[0] or fields.get("by") or None,
            deliveredAt=ms("at"),
            reason=fields.get("reason") or None,
        )

    def asDict(self) -> dict[str, Any]:
        return asdict(self)
