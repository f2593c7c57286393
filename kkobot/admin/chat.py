"""kkobot-chat: talk to the bot in a terminal, with the real router, plugins, storage and schedules on a local SQLite."""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any, Sequence

from twisted.application.service import MultiService, Service
from twisted.internet import defer, stdio
from twisted.logger import globalLogBeginner, textFileLogObserver
from twisted.internet.interfaces import IHalfCloseableProtocol
from twisted.protocols.basic import LineReceiver
from zope.interface import implementer

from kkobot import config, logs
from kkobot.chatlog.log import ChatLog
from kkobot.commands.assembly import buildCommandParts
from kkobot.commands.registry import CommandRegistry
from kkobot.db.pool import Database
from kkobot.chatlog.journal import Journal
from kkobot.bridge.outbound import Outbound
from kkobot.bridge.registry import ClientInfo, ClientRegistry
from kkobot.bridge.wire import ChatMessage

PROG = "kkobot-chat"

HELP = """/room 이름 [채널ID]   방 바꾸기            /sender 이름   보낸 사람 이름 바꾸기
/user 해시           userHash 바꾸기      /admin on|off  관리자 켜기/끄기
/mention 내용        봇을 멘션한 메시지   /help          이 도움말
/quit                끝내기 (Ctrl-D도 됩니다)"""


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Chat with kkobot in a terminal: the real router, plugins, storage and "
                    "schedules on a local SQLite, no phone and no TCP connection.",
    )
    p.add_argument("--room", default="테스트방", help="room name (default 테스트방)")
    p.add_argument("--channel", default=None, help="channel id (default: derived from the room name)")
    p.add_argument("--sender", default="홍길동", help="your display name (default 홍길동)")
    p.add_argument("--user", default="chat-user", help="your userHash (default chat-user)")
    p.add_argument("--admin", action="store_true", help="you are an admin (# reload, adminOnly commands)")
    p.add_argument("--bot", default="kkobot", help="the bot's name (default kkobot)")
    p.add_argument("--dm", action="store_true", help="a one-to-one chat instead of a group chat")
    p.add_argument("--plugins", default=None,
                   help="drop-in plugin folder (default: plugins.dropin_dir of --config, else ./plugins)")
    p.add_argument("--var", default="var", help="directory of the SQLite file and journal (default var)")
    p.add_argument("--db", default=None,
                   help="SQLite file (default VAR/kkobot_test.sqlite3: the embedded server's, so "
                        "kkobot-admin store/triggers see the same data)")
    p.add_argument("--config", default=None,
                   help="a config directory for plugins.<name> settings, admins, rooms (optional)")
    p.add_argument("--log-level", default="info", help="level of VAR/kkobot-chat.log (default info)")
    return p


def channelFor(room: str) -> str:
    """A stable channel id for a room typed by name."""
    return f"chat:{room}"


class ChatSession:
    """The person at the terminal: who they are, where they talk, and the bot's side."""

    def __init__(self, args: argparse.Namespace, router: Any, client: ClientInfo, permissions: Any,
                 write: Any) -> None:
        self.room = args.room
        self.channelId = args.channel or channelFor(args.room)
        self.sender = args.sender
        self.user = args.user
        self.isGroupChat = not args.dm
        self.botName = args.bot
        self.router = router
        self.client = client
        self.permissions = permissions
        self.write = write
        self.admin = False
        self.setAdmin(args.admin)

    @property
    def prompt(self) -> str:
        return f"[{self.room}] {self.sender}{' (관리자)' if self.admin else ''}> "

    def setAdmin(self, on: bool) -> None:
        self.admin = on
        admins = set(self.permissions.globalAdmins)
        (admins.add if on else admins.discard)(self.user)
        self.permissions.globalAdmins = frozenset(admins)

    def say(self, text: str, isMention: bool = False) -> defer.Deferred[None]:
        message = ChatMessage(
            room=self.room, text=text, sender=self.sender, isGroupChat=self.isGroupChat,
            isMention=isMention, channelId=self.channelId, userHash=self.user, botName=self.botName,
        )
        d = self.router.handleMessage(self.client, message)
        d.addCallback(lambda replies: self.show(self.room, [r.text for r in replies]))
        return d

    def show(self, room: str, texts: list[str]) -> None:
        for text in texts:
            where = "" if room == self.room else f" [{room}]"
            lines = text.split("\n")
            out = f"{self.botName}{where}: {lines[0]}\n" + "".join(f"    {line}\n" for line in lines[1:])
            self.write(out)

    def pushed(self, line: bytes) -> None:
        """A line the server sends on its own (a question's follow-up, a schedule)."""
        event = json.loads(line)
        if event.get("event") == "messageResponse":
            self.show(event["data"]["room"], [event["data"]["text"]])
            self.write(self.prompt)

    def command(self, line: str) -> bool:
        """A `/...` line; False for /quit."""
        word, _, rest = line[1:].partition(" ")
        rest = rest.strip()
        if word in ("quit", "exit", "q"):
            return False
        if word == "room" and rest:
            name, _, channel = rest.partition(" ")
            self.room, self.channelId = name, channel.strip() or channelFor(name)
        elif word == "sender" and rest:
            self.sender = rest
        elif word == "user" and rest:
            admin = self.admin
            self.setAdmin(False)
            self.user = rest
            self.setAdmin(admin)
        elif word == "admin" and rest in ("on", "off"):
            self.setAdmin(rest == "on")
        elif word == "mention" and rest:
            self.say(rest, isMention=True)
            return True
        else:
            self.write(HELP + "\n")
        return True


@implementer(IHalfCloseableProtocol)
class Terminal(LineReceiver):
    """Lines typed at the terminal, UTF-8."""

    delimiter = b"\n"

    def __init__(self, setup: Any, done: defer.Deferred[None]) -> None:
        self.setup = setup
        self.done = done
        self.session: ChatSession | None = None
        # One line at a time, each after the bot answered the one before (as a person
        # would type; piped input then behaves like typed input).
        self.queue: list[str] = []
        self.busy = False
        self.closing = False

    def write(self, text: str) -> None:
        self.transport.write(text.encode("utf-8"))

    def connectionMade(self) -> None:
        self.session = self.setup(self.write)
        self.write(self.session.prompt)

    def lineReceived(self, line: bytes) -> None:
        self.queue.append(line.decode("utf-8", errors="replace").rstrip("\r"))
        if not self.busy:
            self._next()

    def _next(self, _: Any = None) -> None:
        assert self.session is not None
        self.busy = False
        while self.queue and not self.busy:
            text = self.queue.pop(0)
            if not text.strip():
                self.write(self.session.prompt)
            elif text.startswith("/"):
                if not self.session.command(text.strip()):
                    self.queue.clear()
                    self._finish()
                    return
                self.write(self.session.prompt)
            else:
                d = self.session.say(text)
                d.addCallback(lambda _: self.write(self.session.prompt))
                if not d.called:
                    self.busy = True
                    d.addBoth(self._next)
        if not self.busy and self.closing:
            self._finish()

    def _finish(self) -> None:
        if not self.done.called:
            self.done.callback(None)

    def readConnectionLost(self) -> None:
        # End of input (Ctrl-D, or the end of a pipe): answer what was typed first;
        # the output stays open until then.
        self.closing = True
        if not self.busy:
            self._finish()

    def writeConnectionLost(self) -> None:
        self._finish()

    def connectionLost(self, reason: Any) -> None:
        self._finish()


class InOrder(MultiService):
    """Stops its children one at a time, last started first (the pool closes after the chat log's flush)."""

    @defer.inlineCallbacks
    def stopService(self):
        Service.stopService(self)
        for child in reversed(list(self)):
            yield defer.maybeDeferred(child.stopService)


class DatabaseCloser(Service):
    def __init__(self, database: Database) -> None:
        self.database = database

    def stopService(self) -> None:
        Service.stopService(self)
        self.database.close()


def _utf8Terminal() -> None:
    """Let the terminal's line editing erase a whole Hangul syllable, not one byte of it."""
    try:
        import termios
    except ImportError:
        return
    try:
        # Python's termios names IUTF8 only from 3.12 on; Linux's value otherwise.
        flag = getattr(termios, "IUTF8", 0o40000 if sys.platform.startswith("linux") else 0)
        if flag and sys.stdin.isatty():
            attributes = termios.tcgetattr(sys.stdin.fileno())
            attributes[0] |= flag
            termios.tcsetattr(sys.stdin.fileno(), termios.TCSANOW, attributes)
    except (OSError, ValueError, termios.error):
        pass


def build(args: argparse.Namespace, reactor: Any) -> tuple[MultiService, Any, ClientRegistry, Any, CommandRegistry]:
    """The server's command side on a local SQLite; returns (root service, parts, clients, cfg, commands)."""
    cfg = None
    if args.config:
        cfg = config.load(args.config)
        config.validate(cfg)
    dropin = args.plugins or (config.setting(cfg, "plugins.dropin_dir") if cfg else "plugins")
    os.makedirs(args.var, exist_ok=True)
    path = args.db or os.path.join(args.var, "kkobot_test.sqlite3")
    database = Database(config.DBSettings("sqlite", "", 0, "", "", "kkobot_chat", path), reactor=reactor)
    root = InOrder()
    DatabaseCloser(database).setServiceParent(root)
    chatlog = ChatLog(database, reactor, Journal(os.path.join(args.var, "kkobot-chat-journal")))
    chatlog.setServiceParent(root)
    clients = ClientRegistry()
    commands = CommandRegistry(dropin)
    outbound = Outbound(clients, chatlog, reactor)

    def get(key: str, default: Any) -> Any:
        return default if cfg is None else config.setting(cfg, key, default)

    parts = buildCommandParts(commands=commands, chatlog=chatlog, clients=clients, outbound=outbound,
                              clock=reactor, cfg=cfg, get=get, database=database, sighup=False)
    parts.service.setServiceParent(root)
    return root, parts, clients, cfg, commands


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    from twisted.internet import task

    def run(reactor: Any) -> defer.Deferred[None]:
        return defer.ensureDeferred(_run(args, reactor))

    task.react(run)


async def _run(args: argparse.Namespace, reactor: Any) -> None:
    try:
        logs.setLevel(args.log_level)
        os.makedirs(args.var, exist_ok=True)
        logFile = open(os.path.join(args.var, "kkobot-chat.log"), "a", encoding="utf-8")
        globalLogBeginner.beginLoggingTo([textFileLogObserver(logFile)], redirectStandardIO=False)
        root, parts, clients, cfg, commands = build(args, reactor)
    except (config.ConfigError, ValueError, OSError) as e:
        sys.stderr.write(f"{PROG}: {e}\n")
        raise SystemExit(1)
    _utf8Terminal()
    root.startService()
    if parts.triggerTable is not None:
        # Operators' auto-replies are in place before the first line is read.
        await parts.triggerTable.loaded
    if parts.rooms is not None:
        await parts.rooms.whenLoaded()  # room settings (kb_room_settings) apply from the first line
    done: defer.Deferred[None] = defer.Deferred()

    def setup(write: Any) -> ChatSession:
        client = ClientInfo(botName=args.bot, version="3.2.0", clientType="kkobot-chat",
                            deviceID="kkobot-chat", address="terminal",
                            connectedSince=reactor.seconds())
        session = ChatSession(args, parts.router, client, parts.permissions, write)
        client.send = session.pushed
        clients.add(client)
        names = ", ".join(f"# {c.name}" for c in commands.commands())
        write(f"kkobot-chat: 명령 {len(commands.commands())}개 ({names})\n")
        for failure in commands.failures:
            write(f"불러오지 못한 플러그인: {failure.path}: {failure.summary}\n")
        write("/help 도움말, /quit 끝내기\n")
        return session

    stdio.StandardIO(Terminal(setup, done), reactor=reactor)
    await done
    await root.stopService()
