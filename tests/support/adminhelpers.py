"""A running server with its admin web on real TCP ports, a bridge test client, and HTTP calls."""

from __future__ import annotations

import json
import os
from typing import Any

from twisted.internet import defer, endpoints, reactor, task
from twisted.protocols.basic import LineReceiver
from twisted.web.client import Agent, HTTPConnectionPool, readBody
from twisted.web.http_headers import Headers
from twisted.web.iweb import IBodyProducer
from twisted.web.client import FileBodyProducer
from io import BytesIO

from kkobot.service import KkobotService, Settings, resolve
from kkobot.admin.web.settings import AdminSettings
from tests.support import HELLO_320, line, tempDir

TOKEN = "test-admin-token-0123456789"
LOOPBACK0 = "tcp:0:interface=127.0.0.1"


class BridgeClient(LineReceiver):
    """A test bridge: records every server line; tests wait for the one they expect."""

    delimiter = b"\n"

    def connectionMade(self) -> None:
        self.received: list[dict[str, Any]] = []
        self._waiters: list[tuple[Any, defer.Deferred]] = []
        self.lost = defer.Deferred()

    def lineReceived(self, raw: bytes) -> None:
        event = json.loads(raw)
        self.received.append(event)
        for waiter in list(self._waiters):
            if waiter[0](event):
                self._waiters.remove(waiter)
                waiter[1].callback(event)

    def connectionLost(self, reason: Any = None) -> None:
        self.lost.callback(None)

    def send(self, obj: dict[str, Any]) -> None:
        self.transport.write(line(obj))

    def waitFor(self, predicate: Any) -> defer.Deferred:
        for event in self.received:
            if predicate(event):
                return defer.succeed(event)
        d: defer.Deferred = defer.Deferred()
        self._waiters.append((predicate, d))
        return d

    def waitForEvent(self, name: str, **data: Any) -> defer.Deferred:
        return self.waitFor(
            lambda e: e.get("event") == name
            and all(e.get("data", {}).get(k) == v for k, v in data.items())
        )


class RunningServer:
    """KkobotService on the real reactor: bridge and admin web on ephemeral loopback ports."""

    def __init__(self, testCase: Any, authConfig: dict[str, Any] | None = None,
                 cfg: dict[str, Any] | None = None, db: Any = None) -> None:
        self.testCase = testCase
        base = tempDir(testCase)
        settings = Settings(
            port=LOOPBACK0, configDir=os.path.join(base, "no-config"), logDir=None,
            varDir=os.path.join(base, "var"), dropinDir=os.path.join(base, "plugins"),
        )
        resolved = resolve(settings)
        resolved.admin = AdminSettings(LOOPBACK0, TOKEN)
        if authConfig is not None:
            # The embedded SQLite database, but with the config of a deployment: auth on.
            resolved.cfg = authConfig
            resolved.authRequired = True
        elif cfg is not None:
            # The embedded default's open access, with these settings (rooms.*, retention.*).
            resolved.cfg = cfg
        if db is not None:
            resolved.db = db
        # The embedded default writes every 50 ms; tests flush explicitly anyway.
        self.service = KkobotService(resolved, reactor=reactor)
        self.pool = HTTPConnectionPool(reactor, persistent=False)
        self.agent = Agent(reactor, pool=self.pool)
        self.clients: list[BridgeClient] = []

    @defer.inlineCallbacks
    def start(self):
        self.service.startService()
        self.testCase.addCleanup(self.stop)
        bridgePort = yield self.service.server.whenListening()
        adminPort = yield self.service.admin.whenListening()
        self.bridgePort = bridgePort.getHost().port
        self.adminPort = adminPort.getHost().port
        self.base = f"http://127.0.0.1:{self.adminPort}"
        # The chat log prepares its table in a pool thread and offers no Deferred for
        # it: let the reactor turn until it is ready (bounded by the test's timeout).
        while not self.service.chatlog.ready:
            yield task.deferLater(reactor, 0.005, lambda: None)

    @defer.inlineCallbacks
    def stop(self):
        for client in self.clients:
            if client.transport is not None and client.transport.connected:
                client.transport.loseConnection()
                yield client.lost
        yield self.service.stopService()
        yield self.pool.closeCachedConnections()

    @defer.inlineCallbacks
    def connectClient(self, hello: dict[str, Any] | None = None):
        endpoint = endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", self.bridgePort)
        client = yield endpoints.connectProtocol(endpoint, BridgeClient())
        self.clients.append(client)
        client.send(hello or HELLO_320)
        yield client.waitForEvent("handshakeComplete")
        return client

    @defer.inlineCallbacks
    def request(
        self, method: bytes, path: str, token: str | None = TOKEN, body: Any = None,
        contentType: bytes = b"application/json", headers: dict[bytes, bytes] | None = None,
    ):
        """(status, headers, body bytes) of one HTTP request over TCP."""
        h = Headers()
        if token is not None:
            h.addRawHeader(b"authorization", b"Bearer " + token.encode())
        producer: IBodyProducer | None = None
        if body is not None:
            raw = body if isinstance(body, bytes) else json.dumps(body).encode("utf-8")
            producer = FileBodyProducer(BytesIO(raw))
            h.addRawHeader(b"content-type", contentType)
        for k, v in (headers or {}).items():
            h.addRawHeader(k, v)
        response = yield self.agent.request(method, (self.base + path).encode(), h, producer)
        content = yield readBody(response)
        return response.code, response.headers, content

    @defer.inlineCallbacks
    def rows(self, where: str = "1=1"):
        yield self.service.chatlog.flush()
        rows = yield self.service.database.runQuery(
            f"SELECT room_name, channel_id, message, is_our_bot_response, bot_name "
            f"FROM kb_chat_logs WHERE {where} ORDER BY id"
        )
        return list(rows)


def metricValue(text: bytes, name: str, **labels: str) -> float | None:
    """One sample of a Prometheus text exposition, parsed by prometheus_client."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text.decode("utf-8")):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return None
