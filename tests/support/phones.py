"""Signing phones over real TCP, and the real service in-process with HMAC auth on a given database."""

from __future__ import annotations

import json
import tempfile
import time
from typing import Any, Callable

from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.protocols.basic import LineReceiver

from kkobot.bridge.auth import UNVERIFIED
from kkobot.service import KkobotService, Resolved, Settings
from tests.support import analyze, line, sign

SECRET = "phones-secret-Qv8xL2"
SALT = "phones-salt-4e1d"
BOT = "kkobot"


def authConfig(autoApprove: bool = True, **sections: Any) -> dict[str, Any]:
    """A config with HMAC auth for bot "kkobot", fast device refreshes and batches."""
    cfg: dict[str, Any] = {
        "auth": {"required": True, "auto_approve": autoApprove, "device_refresh_interval": 0.1},
        "bots": {BOT: {"secret": SECRET, "salt": SALT}},
        "chatlog": {"flush_interval": 0.01},
    }
    for name, values in sections.items():
        cfg.setdefault(name, {}).update(values)
    return cfg


def startService(db: Any, varDir: str, cfg: dict[str, Any]) -> KkobotService:
    """The whole server on a free loopback port, SIGTERM-like stop left to the caller."""
    endpoint = "tcp:0:interface=127.0.0.1"
    settings = Settings(port=endpoint, logDir=None, varDir=varDir)
    resolved = Resolved(
        settings=settings, cfg=cfg, endpoint=endpoint, db=db,
        dropinDir=tempfile.mkdtemp(prefix="kkobot-dropin-"), authRequired=True,
    )
    service = KkobotService(resolved, reactor=reactor)
    service.startService()
    return service


async def portOf(service: KkobotService) -> int:
    listening = await service.server.whenListening()
    return listening.getHost().port


class Phone(LineReceiver):
    """
    A 3.2.0 bridge: handshakes, signs every event, answers the server's pings with
    a ping carrying `server_timestamp` and `monitoring` (so the server measures RTT).
    """

    delimiter = b"\n"

    def __init__(self, device: str, bot: str = BOT, answerPings: bool = True) -> None:
        self.device = device
        self.bot = bot
        self.answerPings = answerPings
        self.events: list[dict[str, Any]] = []
        self.pingsAnswered = 0
        self._waiters: list[tuple[Callable[[dict], bool], defer.Deferred]] = []
        self.lost: defer.Deferred[None] = defer.Deferred()
        self.connected = False

    def connectionMade(self) -> None:
        self.connected = True

    def connectionLost(self, reason: Any = None) -> None:
        self.connected = False
        for _, d in self._waiters:
            d.errback(AssertionError(f"connection of {self.device} lost while waiting"))
        self._waiters = []
        self.lost.callback(None)

    def lineReceived(self, raw: bytes) -> None:
        event = json.loads(raw)
        self.events.append(event)
        if event.get("event") == "ping" and self.answerPings:
            self.send({"event": "ping", "data": {
                "bot_name": self.bot,
                "server_timestamp": event["data"]["server_timestamp"],
                "monitoring": {"total_memory": 6028, "memory_usage": 81, "memory_percent": 1.3,
                               "message_queue_size": 0, "active_rooms": 2},
                "auth": self.auth(),
            }})
            self.pingsAnswered += 1
        for waiter in list(self._waiters):
            if waiter[0](event):
                self._waiters.remove(waiter)
                waiter[1].callback(event)

    def send(self, obj: dict[str, Any]) -> None:
        self.transport.write(line(obj))

    def hello(self) -> dict[str, Any]:
        return {"clientType": "MessengerBotR", "botName": self.bot, "version": "3.2.0",
                "deviceID": self.device, "deviceIP": "127.0.0.1",
                "deviceInfo": "samsung SM-S911N (Android 14, API 34)"}

    def auth(self) -> dict[str, Any]:
        auth = {
            "clientType": "MessengerBotR", "botName": self.bot, "deviceUUID": self.device,
            "deviceID": self.device, "macAddress": "02:00:00:00:00:00",
            "ipAddress": "127.0.0.1", "timestamp": int(time.time() * 1000),
            "version": "3.2.0",
        }
        auth["signature"] = sign(SECRET, SALT, auth)
        return auth

    def waitFor(self, predicate: Callable[[dict], bool], timeout: float = 30.0) -> defer.Deferred:
        for event in self.events:
            if predicate(event):
                return defer.succeed(event)
        d: defer.Deferred = defer.Deferred()
        self._waiters.append((predicate, d))
        d.addTimeout(timeout, reactor)
        return d

    async def handshake(self) -> dict[str, Any]:
        """The device's real state: the answer after the first signed event (our ping answer)."""
        self.send(self.hello())
        event = await self.waitFor(
            lambda e: e.get("event") == "handshakeComplete"
            and e["data"].get("message") != UNVERIFIED.message
        )
        return event["data"]

    def say(self, text: str, room: str = "테스트방") -> None:
        self.send(analyze(text, room=room, botName=self.bot, auth=self.auth()))

    def replies(self) -> list[str]:
        return [e["data"]["text"] for e in self.events if e.get("event") == "messageResponse"]

    def handshakes(self) -> list[dict[str, Any]]:
        return [e["data"] for e in self.events if e.get("event") == "handshakeComplete"]

    async def echo(self, text: str, timeout: float = 30.0) -> None:
        """Say `# echo text` and wait for its answer."""
        self.say("# echo " + text)
        want = "에코: " + text
        await self.waitFor(
            lambda e: e.get("event") == "messageResponse" and e["data"]["text"] == want, timeout)

    def close(self) -> defer.Deferred[None]:
        if self.connected:
            self.transport.loseConnection()
        return self.lost


async def connectPhone(testcase: Any, port: int, device: str, **kw: Any) -> Phone:
    phone = await connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", port), Phone(device, **kw))
    testcase.addCleanup(phone.close)
    return phone


async def stopService(service: KkobotService) -> None:
    if service.running:
        await service.stopService()


async def waitForRows(query: Callable[[], Any], what: str, timeout: float = 30.0) -> Any:
    """
    Until C{query()} (a blocking look at the database, from the test) is truthy;
    polled every 50 ms so the server, on the same reactor, keeps running.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = query()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        await task.deferLater(reactor, 0.05, lambda: None)
