"""Where a chat message goes next: into the chat log, to its command, and its replies back."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.logger import LogLevel

from kkobot import logs
from kkobot.logs import Logger
from zope.interface import implementer

from kkobot.chatlog.log import CLIENT_TIME_FORMAT, ChatRow
from kkobot.commands.context import CommandContext
from kkobot.commands.conversations import conversationKey
from kkobot.commands.registry import CommandRegistry, directiveFor, matchCommand
from kkobot.commands.reply import Reply
from kkobot.commands.dispatch import Dispatcher
from kkobot.events import NO_EVENTS, IServerEvents
from kkobot.interfaces import IChatLog, IMessageHandler
from kkobot.commands.permissions import Permissions
from kkobot.chatlog.pings import PingRow
from kkobot.bridge.registry import ClientInfo
from kkobot.bridge.wire import ChatMessage, Ping

log = Logger()


@implementer(IMessageHandler)
class MessageRouter:
    """Logs every message, runs the command it names, and logs the bot's replies."""

    def __init__(
        self,
        commands: CommandRegistry,
        chatlog: IChatLog,
        clock: IReactorTime,
        permissions: Permissions | None = None,
        events: IServerEvents = NO_EVENTS,
        dispatcher: Dispatcher | None = None,
        conversations: Any = None,
        triggers: Any = None,
        rooms: Any = None,
    ):
        self.commands = commands
        self.chatlog = chatlog
        self.clock = clock
        self.permissions = permissions or Permissions()
        self.messagesSeen = 0
        self.repliesSent = 0
        self._summarized = (0, 0)
        self.events = events
        self.dispatcher = dispatcher or Dispatcher(commands, self.permissions, clock)
        self._second: tuple[int, str] = (-1, "")
        # "# name" by command name: the directive column of every command's rows.
        self._directives: dict[str, str] = {}
        # Questions waiting for an answer (conversations.py) and the passive answers
        # beyond the registry's patterns (triggers.py); either may be None.
        services = self.dispatcher.services
        self.conversations = conversations or (services.conversations if services is not None else None)
        self.triggers = triggers
        # An IRoomDirectory (kkobot.rooms): new rooms are recorded, and with
        # rooms.approval on only approved rooms are answered; None: every room is.
        self.rooms = rooms
        # The registry's own match, bound once (matchCommand covers lookup-only registries).
        match = getattr(commands, "match", None)
        self._match = match if match is not None else lambda text: matchCommand(commands, text)

    def _now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.seconds())

    def _nowText(self) -> str:
        """The server time column's text; formatted once a second, not per row."""
        return self._textAt(self.clock.seconds())

    def _textAt(self, now: float) -> str:
        """L{_nowText} for a clock reading the caller already has."""
        second = int(now)
        if second != self._second[0]:
            self._second = (second, datetime.fromtimestamp(second).strftime(CLIENT_TIME_FORMAT))
        return self._second[1]

    def handleMessage(self, client: ClientInfo, message: ChatMessage) -> defer.Deferred[list[Reply]]:
        result = self.handleMessageNow(client, message)
        return result if isinstance(result, defer.Deferred) else defer.succeed(result)

    def handleMessageNow(
        self, client: ClientInfo, message: ChatMessage
    ) -> list[Reply] | defer.Deferred[list[Reply]]:
        """L{handleMessage}; replies known at once come as a list (already logged)."""
        invocation = self._match(message.text)
        conversations = self.conversations
        if (
            conversations is not None
            and conversations.active
            and (invocation is None or invocation.match is not None)
            and client.approved
            and conversations.waitingFor(conversationKey(client.botName, message))
        ):
            # An answer to a question (context.ask): logged like any message (before
            # the command goes on and says more), and it is the asking command, not
            # this message, that replies.
            self._answered(client, message)
            conversations.offer(client.botName, message)
            return []
        if invocation is None and self.triggers is not None:
            invocation = self.triggers.match(message)
        command = invocation.command if invocation else None
        if command is None:
            directive = name = None
        else:
            name = command.name
            directive = self._directives.get(name)
            if directive is None:
                if len(self._directives) >= 1000:
                    self._directives.clear()  # operators' triggers come and go: stays bounded
                directive = self._directives[name] = directiveFor(name)
        # One clock reading for the row, the command's context and its timing.
        now = self.clock.seconds()
        self.chatlog.log(ChatRow.fromMessage(message, client.botName, directive, self._textAt(now)))
        self.messagesSeen += 1
        # messageIn is reported below: with the replies in one event when answered at once.
        # Per message at debug: formatting a line per message would cost a third of
        # the server's CPU at load; logSummary() gives the info-level picture. The
        # level is checked first so the arguments are not even built.
        if logs.level() is LogLevel.debug:
            log.debug(
                "[MSG] {bot} | {room} | {sender}{command}",
                bot=client.botName,
                room=message.room,
                sender=message.sender,
                command=f" | {directive}" if directive else "",
            )
            log.debug("[MSG] text: {text}", text=message.text)
        if not client.approved:
            self._messageIn(client, message, name)
            return []
        rooms = self.rooms
        if rooms is not None:
            # Only approved devices' rooms are recorded: a pending phone cannot fill kb_rooms.
            rooms.seen(client.botName, message.channelId or message.room, message.room)
        if command is None:
            self._messageIn(client, message, name)
            return []
        assert invocation is not None
        if rooms is not None:
            allowed = rooms.answers(message.channelId or message.room)
            if allowed is not True:
                self._messageIn(client, message, name)
                if allowed is False:
                    return []
                # Only before the rooms' first read: the answer waits for it.
                return allowed.addCallback(
                    lambda ok: self._run(invocation, client, message, directive,
                                         self.clock.seconds(), True) if ok else [])
        return self._run(invocation, client, message, directive, now)

    def _run(self, invocation: Any, client: ClientInfo, message: ChatMessage,
             directive: str | None, now: float,
             reported: bool = False) -> list[Reply] | defer.Deferred[list[Reply]]:
        """The command's replies (logged); C{reported}: messageIn was reported already."""
        command = invocation.command
        name = command.name
        conversations = self.conversations
        args = invocation.args
        # Positional, in the dataclass's field order (room ... now, extra, options, rest,
        # match, isAdmin, client): a class called with keywords costs about three times
        # as much, its keywords going through a dict on the way to __init__.
        context = CommandContext(
            message.room, message.channelId, message.sender, message.userHash, client.botName,
            message.isGroupChat, message.isMention, message.text, invocation.trigger, args,
            now, {}, {}, args, invocation.match, False, client,
        )
        try:
            result = self.dispatcher.invokeNow(command, context)
        except BaseException:
            if not reported:
                self._messageIn(client, message, name)
            raise
        ran = context.extra.get("ran")
        # A list first: isinstance on Deferred goes through ABCMeta in Python.
        if type(result) is not list and isinstance(result, defer.Deferred):
            if not reported:
                self._messageIn(client, message, name)
            if conversations is not None:
                result = conversations.detachable(result, context)
            if ran:
                result.addCallback(self._timed, name, now)
            result.addCallback(self._logReplies, client, message, directive, name)
            return result
        # The reading that times the call also dates its replies' rows.
        done = self.clock.seconds()
        if not reported:
            self.events.messageAnswered(client.botName, message.room, message.channelId, name,
                                        done - now if ran else None, len(result))
            return self._logReplies(result, client, message, directive, name, self._textAt(done),
                                    False)
        if ran:
            self.events.commandTimed(name, done - now)
        return self._logReplies(result, client, message, directive, name, self._textAt(done))

    def _messageIn(self, client: ClientInfo, message: ChatMessage, name: str | None) -> None:
        """The message arrived, reported alone (not answered at once: L{_run} reports both)."""
        self.events.messageIn(client.botName, message.room, message.channelId, name)

    def _answered(self, client: ClientInfo, message: ChatMessage) -> None:
        self.chatlog.log(ChatRow.fromMessage(message, client.botName, None, self._nowText()))
        self.messagesSeen += 1
        self._messageIn(client, message, None)
        if logs.level() is LogLevel.debug:
            log.debug("[MSG] {bot} | {room} | {sender} | an answer to a question",
                      bot=client.botName, room=message.room, sender=message.sender)

    def logSummary(self) -> None:
        """One info line with the traffic since the last summary (if there was any)."""
        messages = self.messagesSeen - self._summarized[0]
        replies = self.repliesSent - self._summarized[1]
        self._summarized = (self.messagesSeen, self.repliesSent)
        if messages or replies:
            log.info(
                "[MSG] {messages} message(s) in, {replies} repl(ies) out since the last summary",
                messages=messages,
                replies=replies,
            )

    def _timed(self, replies: list[Reply], name: str, started: float) -> list[Reply]:
        self.events.commandTimed(name, self.clock.seconds() - started)
        return replies

    def _logReplies(
        self,
        replies: list[Reply],
        client: ClientInfo,
        message: ChatMessage,
        directive: str | None,
        name: str | None = None,
        sent: str | None = None,
        report: bool = True,
    ) -> list[Reply]:
        """Each reply's row; C{report}: a messageOut event for each (not yet reported)."""
        self.repliesSent += len(replies)
        if sent is None:
            sent = self._nowText()
        for reply in replies:
            # Positional (text, botName, room, channelId, isGroupChat, directive, sent):
            # keywords cost a dict per call.
            self.chatlog.log(ChatRow.forReply(
                reply.text, client.botName, message.room, message.channelId,
                message.isGroupChat, directive, sent))
            if report:
                self.events.messageOut(client.botName, message.room, message.channelId, name)
        return replies

    def handlePing(self, client: ClientInfo, ping: Ping, rttMillis: Any) -> None:
        self.chatlog.log(PingRow.fromPing(client, ping, rttMillis, self._now()))
