"""Test harness for command plugins: feed messages, assert replies, advance a clock; no sockets, no DB."""

from __future__ import annotations

import json
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from twisted.internet import defer, task
from zope.interface import implementer

from kkobot.chatlog.log import ChatRow
from kkobot.commands.assembly import buildCommandParts
from kkobot.commands.history import MemoryChatHistory
from kkobot.commands.registry import CommandRegistry
from kkobot.commands.reply import Reply
from kkobot.commands.store import MemoryStorage
from kkobot.config import get_dotted
from kkobot.interfaces import IChatLog
from kkobot.bridge.outbound import Outbound
from kkobot.commands.permissions import Permissions
from kkobot.bridge.registry import ClientInfo, ClientRegistry
from kkobot.bridge.wire import ChatMessage

__all__ = ["CommandTester", "Replies", "Sent", "MemoryChatLog"]


@implementer(IChatLog)
class MemoryChatLog:
    """Keeps the chat-log rows in a list (C{rows})."""

    def __init__(self) -> None:
        self.rows: list[ChatRow] = []

    def log(self, row: ChatRow) -> None:
        self.rows.append(row)

    def flush(self) -> defer.Deferred[None]:
        return defer.succeed(None)


class Replies(list):
    """The replies to one message; filled in when the command finishes (see C{done}, L{wait})."""

    done = False
    _finished: Any = None

    def wait(self) -> defer.Deferred[Replies]:
        """A Deferred firing with these replies once the command answered (for slow commands)."""
        d: defer.Deferred[Replies] = defer.Deferred()

        def fire(result: Any) -> Any:
            d.callback(self)
            return result

        if self._finished is None:
            d.callback(self)
        else:
            self._finished.addBoth(fire)
        return d

    @property
    def texts(self) -> list[str]:
        return [reply.text for reply in self]

    @property
    def text(self) -> str:
        """All reply texts joined by newlines ('' for no reply)."""
        return "\n".join(self.texts)


@dataclass(frozen=True)
class Sent:
    """A message the server pushed to a bot on its own (a schedule, C{context.send})."""

    botName: str
    room: str
    text: str
    channelId: str | None
    mediaWaitTime: int | None


class CommandTester:
    """
    A server without sockets: the real router, dispatcher and scheduler, a
    C{task.Clock}, an in-memory chat log and one connected fake bot.

        t = CommandTester(kkobot_hello)          # a module, or command objects
        assert t.send("# hello 철수").texts == ["안녕하세요, 철수님!"]
        t.advance(30)                            # cooldowns, timeouts, schedules

    C{builtins} loads kkobot's own plugins (help, echo, ping, reload) too;
    C{dropinDir} loads a drop-in folder as the server would. C{admins} are userHash
    values (the C{user} of L{send}); C{config} is the server config (permissions,
    C{plugins.<name>} sections, C{triggers.*}, ...).
    The clock starts at C{start} (epoch seconds).

    C{context.store} keeps values in C{storage} (default: a L{MemoryStorage},
    C{self.storage}, with the database's semantics); C{context.history} reads the
    in-memory chat log; C{context.http} is C{http} (none by default).
    Plugin modules' C{activate(ctx)} hooks run at once, C{deactivate()} on L{stop}.
    """

    def __init__(
        self,
        *plugins: Any,
        builtins: bool = True,
        dropinDir: str | None = None,
        admins: tuple[str, ...] | list[str] = (),
        config: dict[str, Any] | None = None,
        botName: str = "kkobot",
        timeout: float = 10.0,
        exemptAdmins: bool = True,
        timezone: str = "Asia/Seoul",
        lateness: float = 300.0,
        start: float = 1_767_225_600.0,  # 2026-01-01 09:00 in Seoul
        storage: Any = None,
        http: Any = None,
    ) -> None:
        self.clock = task.Clock()
        self.clock.advance(start)
        self.botName = botName
        self.commands = CommandRegistry(dropinDir)
        if not builtins:
            self.commands.loader.directories = [self.commands.dropinDir] if dropinDir else []
        for plugin in plugins:
            if isinstance(plugin, ModuleType):
                self.commands.addModule(plugin)
            else:
                self.commands.add(plugin)
        self.chatlog = MemoryChatLog()
        self.clients = ClientRegistry()
        self.outbound = Outbound(self.clients, self.chatlog, self.clock)
        cfg = {**(config or {}), "admins": list(admins)}
        settings = {
            "commands.timeout": timeout,
            "commands.cooldown_exempt_admins": exemptAdmins,
            "schedules.timezone": timezone,
            "schedules.lateness": lateness,
        }

        def get(key: str, default: Any) -> Any:
            if key in settings:
                return settings[key]
            value = get_dotted(cfg, key)
            return default if value is None else value

        self.storage = storage if storage is not None else MemoryStorage()
        self.parts = buildCommandParts(
            commands=self.commands, chatlog=self.chatlog, clients=self.clients,
            outbound=self.outbound, clock=self.clock, cfg=cfg, get=get,
            storage=self.storage, history=MemoryChatHistory(self.chatlog), http=http or _NoHttp(),
            permissions=Permissions(cfg), sighup=False,
        )
        self.permissions = self.parts.permissions
        self.dispatcher = self.parts.dispatcher
        self.router = self.parts.router
        self.scheduler = self.parts.scheduler
        self.conversations = self.parts.plugins.conversations
        self.outbox: list[Sent] = []
        self.client = self.connect(botName)
        # Loads the plugins, runs activate() hooks, starts the scheduler.
        self.parts.service.startService()

    # -- the bot's connection

    def connect(self, botName: str | None = None) -> ClientInfo:
        """Connect a fake bridge for C{botName}; what the server pushes lands in C{outbox}."""
        name = botName or self.botName

        def receive(line: bytes) -> None:
            event = json.loads(line)
            data = event["data"]
            self.outbox.append(
                Sent(name, data["room"], data["text"], data.get("channel_id"), data.get("media_wait_time"))
            )

        client = ClientInfo(
            botName=name,
            version="3.2.0",
            clientType="MessengerBotR",
            deviceID="test-device",
            address="127.0.0.1",
            connectedSince=self.clock.seconds(),
            send=receive,
        )
        self.clients.add(client)
        return client

    def disconnect(self, botName: str | None = None) -> None:
        for client in self.clients.forBot(botName or self.botName):
            self.clients.remove(client)

    # -- messages

    def send(
        self,
        text: str,
        user: str = "user1",
        room: str = "테스트방",
        sender: str = "홍길동",
        channelId: str | None = None,
        isGroupChat: bool = True,
        isMention: bool = False,
        client: ClientInfo | None = None,
    ) -> Replies:
        """
        Feed one chat message, as C{user} (its userHash) in C{room}.

        C{channelId} defaults to C{"ch:" + room}. The returned L{Replies} is complete
        when the command answers at once; for a slow one, L{advance} the clock first.
        """
        message = ChatMessage(
            room=room,
            text=text,
            sender=sender,
            isGroupChat=isGroupChat,
            isMention=isMention,
            channelId=channelId if channelId is not None else f"ch:{room}",
            userHash=user,
            botName=self.botName,
        )
        replies = Replies()

        def fill(result: list[Reply]) -> None:
            replies.extend(result)
            replies.done = True

        d = self.router.handleMessage(client or self.client, message)
        d.addCallback(fill)
        replies._finished = d
        return replies

    def advance(self, seconds: float) -> None:
        """Move the clock on, firing what falls due (in steps, so chained timers fire too)."""
        target = self.clock.seconds() + seconds
        while True:
            due = [c.getTime() for c in self.clock.getDelayedCalls() if c.getTime() <= target]
            if not due:
                break
            self.clock.advance(max(0.0, min(due) - self.clock.seconds()))
        self.clock.advance(max(0.0, target - self.clock.seconds()))

    def setRtt(self, millis: float | None) -> None:
        """Pretend the bot answered a server ping with this round trip."""
        self.client.lastRttMillis = millis
        self.client.lastPingAt = self.clock.seconds()

    # -- assertions

    def assertReply(self, text: str, *expected: str, **kw: Any) -> Replies:
        """Send C{text}; fail unless the reply texts are exactly C{expected}."""
        replies = self.send(text, **kw)
        if not replies.done:
            raise AssertionError(f"{text!r} has not answered yet (advance the clock?)")
        if replies.texts != list(expected):
            raise AssertionError(f"{text!r} answered {replies.texts!r}, expected {list(expected)!r}")
        return replies

    def assertNoReply(self, text: str, **kw: Any) -> None:
        replies = self.send(text, **kw)
        if replies.texts:
            raise AssertionError(f"{text!r} answered {replies.texts!r}, expected silence")

    def checkExamples(self, command: Any, **kw: Any) -> None:
        """Every C{("# input", "expected reply")} example of C{command} must hold."""
        for example in getattr(command, "examples", ()):
            if isinstance(example, tuple):
                self.assertReply(example[0], example[1], **kw)

    def scheduledRows(self) -> list[ChatRow]:
        return [row for row in self.chatlog.rows if row.is_scheduled]

    def stop(self) -> None:
        """Stop the scheduler and run deactivate() hooks (call from tearDown / addCleanup)."""
        if self.parts.service.running:
            self.parts.service.stopService()


class _NoHttp:
    """C{context.http} in a tester given no C{http}: no network in unit tests."""

    def forPlugin(self, name: str, concurrency: Any = None) -> Any:
        raise RuntimeError("CommandTester has no HTTP: pass http=... (e.g. a PluginHttp on a local server)")
