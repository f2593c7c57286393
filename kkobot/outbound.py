"""Messages the bot sends on its own (schedules, the admin API): to a room, through its bot's connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from twisted.internet.interfaces import IReactorTime

from kkobot import wire
from kkobot.chatlog import ChatRow
from kkobot.events import NO_EVENTS, IServerEvents
from kkobot.interfaces import IChatLog
from kkobot.logs import Logger
from kkobot.registry import ClientRegistry

log = Logger()


class Outbound:
    """Sends `messageResponse` lines not prompted by a message, and logs them."""

    def __init__(
        self,
        registry: ClientRegistry,
        chatlog: IChatLog,
        clock: IReactorTime,
        events: IServerEvents = NO_EVENTS,
    ):
        self.registry = registry
        self.chatlog = chatlog
        self.clock = clock
        self.events = events

    def send(
        self,
        botName: str,
        room: str,
        text: str,
        channelId: str | None = None,
        isGroupChat: bool = True,
        scheduled: bool = False,
        mediaWaitTime: int | None = None,
    ) -> bool:
        """
        Send through the newest approved connection of C{botName} that has proved it
        holds the bot's secret (a handshake alone proves nothing: it is not signed).

        @return: False when no connection serves that bot (nothing is sent or logged).
        """
        clients = [
            c for c in self.registry.forBot(botName) if c.verified and c.approved and c.send
        ]
        if not clients:
            log.info("[MSG] {bot} is not connected; message to {room} not sent", bot=botName, room=room)
            return False
        data: dict[str, Any] = {"room": room, "text": text, "channel_id": channelId}
        if mediaWaitTime is not None:
            data["media_wait_time"] = mediaWaitTime
        # The row first: it must be journaled before the message can leave.
        self.chatlog.log(
            ChatRow.forReply(
                text,
                botName=botName,
                room=room,
                channelId=channelId,
                isGroupChat=isGroupChat,
                directive=None,
                sent=datetime.fromtimestamp(self.clock.seconds()),
                scheduled=scheduled,
            )
        )
        clients[0].send(wire.encode("messageResponse", data))
        self.events.messageOut(botName, room, channelId, "scheduled" if scheduled else "outbound")
        return True
