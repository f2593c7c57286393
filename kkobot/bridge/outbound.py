"""Messages the bot sends on its own (schedules, the admin API): to a room, through its bot's connection."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from twisted.internet.defer import Deferred

from twisted.internet.interfaces import IReactorTime

from kkobot.chatlog.log import ChatRow
from kkobot.cluster.fired import resultNow
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
        # The server's one outbound path (an IOutboundRouter: queues for absent bots,
        # routes to other instances); None: write to a local connection or give up.
        self.router: Any = None

    def send(
        self,
        botName: str,
        room: str,
        text: str,
        channelId: str | None = None,
        isGroupChat: bool = True,
        scheduled: bool = False,
        mediaWaitTime: int | None = None,
        waitSeconds: float | None = None,
    ) -> bool:
        """
        Send one message. With a router, it is delivered, routed or queued for its
        bot (L{submit}; C{waitSeconds}: how long it may wait, default
        outbound.wait_seconds); False only when it was refused at once (queue
        full, or expired). Without one, L{write}.
        """
        if self.router is None:
            return self.write(botName, room, text, channelId, isGroupChat, scheduled, mediaWaitTime)
        d = self.submit(botName, room, text, channelId, isGroupChat, scheduled, mediaWaitTime,
                        waitSeconds=waitSeconds)
        ok, result = resultNow(d)
        if not ok:
            d.addErrback(lambda f: log.failure("[MSG] message to {room} of {bot} failed", f,
                                               room=room, bot=botName))
            return True
        return result.accepted

    def submit(
        self,
        botName: str,
        room: str,
        text: str,
        channelId: str | None = None,
        isGroupChat: bool = True,
        scheduled: bool = False,
        mediaWaitTime: int | None = None,
        messageId: str | None = None,
        waitSeconds: float | None = None,
    ) -> Deferred[Any]:
        """Send through the router: a Deferred L{kkobot.cluster.message.SendResult} with the id."""
        return self.router.send(botName, room, text, channelId, isGroupChat=isGroupChat,
                                scheduled=scheduled, mediaWaitTime=mediaWaitTime,
                                messageId=messageId, waitSeconds=waitSeconds)

    def deliver(self, message: Any) -> bool:
        """The router's local send (IDeliver): a RoutedMessage to a connection here."""
        return self.write(message.botName, message.room, message.text, message.channelId,
                          message.isGroupChat, message.scheduled, message.mediaWaitTime)

    def write(
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
            if self.router is None:
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
