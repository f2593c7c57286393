"""Messages the bot sends on its own (schedules, the admin API): to a room, through its bot's connection."""

from __future__ import annotations

from datetime import datetime

from twisted.internet.interfaces import IReactorTime

from kkobot.chatlog.log import ChatRow
from kkobot.commands import Reply
from kkobot.events import NO_EVENTS, IServerEvents
from kkobot.interfaces import IChatLog
from kkobot.logs import Logger
from kkobot.bridge.registry import ClientRegistry

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
        client = clients[0]
        try:
            # In the client's own form; encoded before the row is logged, so a reply
            # the form cannot carry is neither sent nor logged as sent.
            line = client.form.encodeReply(room, channelId, Reply(text, mediaWaitTime))
        except ValueError as e:
            log.error("[MSG] message to {room} of {bot} not sent: {why}", room=room, bot=botName, why=str(e))
            return False
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
        client.send(line)
        self.events.messageOut(botName, room, channelId, "scheduled" if scheduled else "outbound")
        return True
