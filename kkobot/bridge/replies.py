"""A bridge connection's chat messages to the handler, and their replies back in message order per room."""

from __future__ import annotations

from operator import itemgetter
from typing import TYPE_CHECKING

from twisted.internet import defer
from twisted.python.failure import Failure

from kkobot.bridge import wire
from kkobot.commands import Reply
from kkobot.logs import Logger

if TYPE_CHECKING:
    from kkobot.bridge.protocol import BridgeProtocol

log = Logger()


class RoomReplies:
    """
    Hands each verified chat message to the factory's handler and writes its replies;
    a room's replies leave in the order its messages came, however long each takes.
    """

    def __init__(self, proto: BridgeProtocol) -> None:
        self.proto = proto
        # Per room (channel id, else name): the last answer still pending.
        self._roomTails: dict[str, defer.Deferred[None]] = {}

    def chatMessage(self, message: wire.ChatMessage) -> None:
        client = self.proto.handshake.client
        assert client is not None
        handler = self.proto.factory.handler
        now = getattr(handler, "handleMessageNow", None)
        key = message.channelId or message.room
        if now is None:
            d = handler.handleMessage(client, message)
        else:
            result = now(client, message)
            # A list first: isinstance on Deferred goes through ABCMeta in Python.
            if type(result) is list or not isinstance(result, defer.Deferred):
                if key not in self._roomTails:
                    # Answered at once, with nothing of this room still pending:
                    # no Deferred chain needed to keep the order.
                    try:
                        self._sendReplies(result, message)
                    except Exception:
                        self._replyFailed(Failure(), message)
                    return
                d = defer.succeed(result)
            else:
                d = result
        # Replies leave in the order their messages came, per room.
        tail = self._roomTails.get(key)
        if tail is not None:
            d = defer.gatherResults([tail, d], consumeErrors=True)
            d.addCallback(itemgetter(1))
        d.addCallback(self._sendReplies, message)
        d.addErrback(self._replyFailed, message)
        if d.called:
            self._roomTails.pop(key, None)
        else:
            self._roomTails[key] = d
            d.addBoth(self._roomDone, key, d)

    def _roomDone(self, result: None, key: str, d: defer.Deferred[None]) -> None:
        if self._roomTails.get(key) is d:
            del self._roomTails[key]

    def _sendReplies(self, replies: list[Reply], message: wire.ChatMessage) -> None:
        out = self.proto.out
        for reply in replies:
            try:
                out.sendReply(message.room, message.channelId, reply)
            except ValueError as e:
                # A reply this form cannot carry (a media payload that is not base64).
                log.error(
                    "[MSG] a reply to {room} was not sent to {address}: {why}",
                    room=message.room,
                    address=self.proto.address,
                    why=str(e),
                )

    def _replyFailed(self, failure: Failure, message: wire.ChatMessage) -> None:
        log.failure("[MSG] could not answer a message in {room}", failure, room=message.room)
