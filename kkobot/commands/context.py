"""The message that invoked a command, as the command sees it (L{ICommandContext})."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from zope.interface import implementer

from kkobot.commands.reply import Reply
from kkobot.interfaces import ICommandContext


@implementer(ICommandContext)
@dataclass
class CommandContext:
    """The message that invoked a command, as L{ICommandContext} describes it."""

    room: str
    channelId: str | None
    sender: str
    userHash: str | None
    botName: str
    isGroupChat: bool
    isMention: bool
    text: str
    command: str
    args: str
    now: float
    extra: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    rest: str | None = None
    match: re.Match[str] | None = None
    isAdmin: bool = False
    client: Any = None
    clients: Any = None
    commands: Any = None
    # Set by the dispatcher: how send() and canUse() reach the server.
    outbound: Any = field(default=None, repr=False)
    usable: Callable[[Any], bool] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.rest is None:
            self.rest = self.args

    def send(
        self,
        text: str | Reply,
        room: str | None = None,
        channelId: str | None = None,
        mediaWaitTime: int | None = None,
    ) -> bool:
        if self.outbound is None:
            return False
        if isinstance(text, Reply):
            text, mediaWaitTime = text.text, text.mediaWaitTime
        if room is None:
            room = self.room
            channelId = self.channelId if channelId is None else channelId
        return self.outbound.send(
            self.botName, room, text, channelId, self.isGroupChat, mediaWaitTime=mediaWaitTime
        )

    def canUse(self, command: Any) -> bool:
        return True if self.usable is None else self.usable(command)
