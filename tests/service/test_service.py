"""The assembled server: settings and config resolution, and the real service over real TCP."""

from __future__ import annotations

import json
import os
import sqlite3
from typing import Any

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol
from twisted.internet.testing import MemoryReactorClock
from twisted.protocols.basic import LineReceiver
from twisted.trial.unittest import SynchronousTestCase, TestCase

from kkobot import __version__, config, logs
from kkobot.service import (
    DEFAULT_PORT,
    Settings,
    StartupError,
    endpointFor,
    makeService,
    refuseUnsafe,
    resolve,
)
from tests.support import (
    BRIDGE_LINES,
    ScratchMysql,
    forgetDropins,
    tempDir,
    waitUntil,
)

ECHO_REPLY = {
    "event": "messageResponse",
    "data": {"room": "테스트방", "text": "에코: 안녕하세요", "channel_id": "18398338829933568"},
}


class BridgeClient(LineReceiver):
    """A bridge as the server sees it: JSON lines both ways."""

    delimiter = b"\n"

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lost: defer.Deferred[None] = defer.Deferred()

    def lineReceived(self, line: bytes) -> None:
        self.events.append(json.loads(line.decode("utf-8")))

    def connectionLost(self, reason: Any = None) -> None:
        self.lost.callback(None)

    def waitForEvents(self, count: int) -> defer.Deferred[Any]:
        return waitUntil(lambda: len(self.events) >= count, f"{count} server line(s)")


def settingsFor(root: str, **kw: Any) -> Settings:
    values: dict[str, Any] = dict(
        port="tcp:0:interface=127.0.0.1",
        logDir=os.path.join(root, "logs"),
        varDir=os.path.join(root, "var"),
        configDir=os.path.join(root, "no-config"),
        dropinDir=os.path.join(root, "plugins"),
    )
    values.update(kw)
    return Settings(**values)


def writeConfig(directory: str, **dbs: dict[str, Any]) -> None:
    """A config as `kkobot-config init` writes it, for unsigned test bridges."""
    data = config.skeleton()
    data["SERVER"]["server_ip"] = "127.0.0.1"
    data["auth"]["required"] = False
    for mode, section in dbs.items():
        data["DBs"][f"kkobot_{mode}"].update(section)
    config.init(directory, data)


def listenEverywhere(directory: str) -> None:
    """SERVER.server_ip 0.0.0.0, which needs authentication (a bot's credentials)."""
    data = config.load(directory)
    data["SERVER"]["server_ip"] = "0.0.0.0"
    data["auth"]["required"] = True
    data["bots"] = {"kkobot": {"secret": "s" * 32, "salt": "t"}}
    config.save(directory, data)


class ResolveTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = tempDir(self)
        self.addCleanup(logs.setLevel, "info")

    def test_embeddedDefault(self) -> None:
        resolved = resolve(Settings(configDir=os.path.join(self.root, "none"),
                                    varDir=os.path.join(self.root, "var")))
        self.assertIsNone(resolved.cfg)
        self.assertEqual(resolved.endpoint, f"tcp:{DEFAULT_PORT}:interface=127.0.0.1")
        self.assertEqual(resolved.db.engine, "sqlite")
        self.assertEqual(resolved.db.path, os.path.join(self.root, "var", "kkobot_test.sqlite3"))
        self.assertFalse(resolved.authRequired)
        self.assertEqual(resolved.dropinDir, "plugins")
        self.assertIn("no authentication", " ".join(resolved.notes))

    def test_modePicksItsDatabase(self) -> None:
        cfg = os.path.join(self.root, "cfg")
        writeConfig(
            cfg,
            test={"HOST": "10.0.0.1", "PORT": 3307, "USER": "t", "PASSWORD": "tpw",
                  "NAME": "kb_test_db"},
            prod={"HOST": "10.0.0.2", "PORT": 3308, "USER": "p", "PASSWORD": "ppw",
                  "NAME": "kb_prod_db"},
        )
        test = resolve(Settings(configDir=cfg, mode="test"))
        self.assertEqual((test.db.engine, test.db.host, test.db.port, test.db.user,
                          test.db.password, test.db.name),
                         ("mysql", "10.0.0.1", 3307, "t", "tpw", "kb_test_db"))
        prod = resolve(Settings(configDir=cfg, mode="prod"))
        self.assertEqual((prod.db.host, prod.db.port, prod.db.name),
                         ("10.0.0.2", 3308, "kb_prod_db"))
        self.assertTrue(prod.authRequired)
        self.assertIsNotNone(prod.cfg)

    def test_portForms(self) -> None:
        self.assertEqual(endpointFor("1491", "127.0.0.1"), "tcp:1491:interface=127.0.0.1")
        self.assertEqual(endpointFor(" 1491 ", "0.0.0.0"), "tcp:1491:interface=0.0.0.0")
        self.assertEqual(endpointFor(None, "127.0.0.1"), "tcp:1490:interface=127.0.0.1")
        self.assertEqual(endpointFor("tcp:1492:interface=0.0.0.0", "127.0.0.1"),
                         "tcp:1492:interface=0.0.0.0")
        cfg = os.path.join(self.root, "cfg")
        writeConfig(cfg)
        listenEverywhere(cfg)
        self.assertEqual(resolve(Settings(configDir=cfg, port="1493")).endpoint,
                         "tcp:1493:interface=0.0.0.0")

    def test_prodWithoutConfigRefuses(self) -> None:
        missing = os.path.join(self.root, "missing-cfg")
        with self.assertRaises(StartupError) as cm:
            makeService(Settings(mode="prod", configDir=missing,
                                 varDir=os.path.join(self.root, "var"), logDir=None))
        message = str(cm.exception)
        self.assertIn("prod", message)
        self.assertIn(missing, message)
        self.assertIn(f"kkobot-config --dir {missing} init", message)
        self.assertNotIn("\n", message)
        self.assertFalse(os.path.exists(os.path.join(self.root, "var")))

    def test_unusableSettings(self) -> None:
        none = os.path.join(self.root, "none")
        with self.assertRaises(StartupError) as cm:
            resolve(Settings(mode="staging", configDir=none))
        self.assertIn("--mode test or --mode prod", str(cm.exception))
        with self.assertRaises(StartupError) as cm:
            resolve(Settings(logLevel="chatty", configDir=none))
        self.assertIn("chatty", str(cm.exception))

    def test_corruptConfigIsOneLine(self) -> None:
        cfg = os.path.join(self.root, "cfg")
        writeConfig(cfg)
        with open(os.path.join(cfg, config.ENC_FILE), "wb") as f:
            f.write(b"garbage")
        with self.assertRaises(StartupError) as cm:
            resolve(Settings(configDir=cfg))
        self.assertIn(cfg, str(cm.exception))
        self.assertNotIn("\n", str(cm.exception))


class NoAuthStaysOnLoopbackTests(SynchronousTestCase):
    """Without authentication only this machine may connect; a named config must exist."""

    def setUp(self) -> None:
        self.root = tempDir(self)
        self.addCleanup(logs.setLevel, "info")
        self.missing = os.path.join(self.root, "no-config")

    def refusal(self, **kw: Any) -> str:
        with self.assertRaises(StartupError) as cm:
            refuseUnsafe(resolve(Settings(**kw)))
        message = str(cm.exception)
        self.assertNotIn("\n", message)
        return message

    def test_noConfigOnEveryInterfaceRefuses(self) -> None:
        for port in ("tcp:1490:interface=0.0.0.0", "tcp:1490", "tcp6:1490:interface=\\:\\:",
                     "tcp:1490:192.168.0.7", "systemd:domain=INET:index=0"):
            message = self.refusal(configDir=self.missing, port=port)
            self.assertIn(f"refusing to listen on {port} without authentication", message)
            self.assertIn(f"kkobot-config --dir {self.missing} init", message)

    def test_authOffInAConfigOnEveryInterfaceRefuses(self) -> None:
        cfg = os.path.join(self.root, "cfg")
        writeConfig(cfg)
        data = config.load(cfg)
        data["SERVER"]["server_ip"] = "0.0.0.0"
        config.save(cfg, data)
        message = self.refusal(configDir=cfg, port="1490")
        self.assertIn("tcp:1490:interface=0.0.0.0", message)
        self.assertIn(f"kkobot-config --dir {cfg} set auth.required true", message)
        # Tools that only read the settings (kkobot-admin) still can; the server cannot.
        self.assertEqual(resolve(Settings(configDir=cfg, port="1490")).db.name, "kkobot_test")
        with self.assertRaises(StartupError):
            makeService(Settings(configDir=cfg, port="1490"), reactor=MemoryReactorClock())

    def test_loopbackEndpointsNeedNoAuth(self) -> None:
        for port in ("1490", "tcp:1490:interface=127.0.0.1", "tcp:1490:127.0.0.1",
                     "tcp6:1490:interface=\\:\\:1", "tcp:1490:interface=localhost",
                     f"unix:{os.path.join(self.root, 'sock')}"):
            resolved = resolve(Settings(configDir=self.missing, port=port))
            self.assertFalse(resolved.authRequired)
            refuseUnsafe(resolved)

    def test_namedConfigThatIsMissingRefuses(self) -> None:
        message = self.refusal(configDir=self.missing, configGiven=True)
        self.assertIn(f"no config in {self.missing}/", message)
        self.assertIn(f"kkobot-config --dir {self.missing} init", message)
        self.assertIn("leave out --config", message)
        # The same directory, not named, is the embedded default.
        self.assertIsNone(resolve(Settings(configDir=self.missing)).cfg)

    def test_kkobotConfigVariableNamesTheConfig(self) -> None:
        self.assertTrue(Settings.fromEnvironment({"KKOBOT_CONFIG": self.missing}).configGiven)
        self.assertFalse(Settings.fromEnvironment({}).configGiven)
        self.assertIn("KKOBOT_CONFIG", self.refusal(
            **vars(Settings.fromEnvironment({"KKOBOT_CONFIG": self.missing}))))

    def test_halfAConfigIsNotTheEmbeddedDefault(self) -> None:
        # Only the encrypted config left (the key lost): say so instead of running open.
        cfg = os.path.join(self.root, "cfg")
        writeConfig(cfg)
        os.remove(os.path.join(cfg, config.KEY_FILE))
        message = self.refusal(configDir=cfg)
        self.assertIn("is missing; restore it from your backup", message)


class UntrustedPluginsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = tempDir(self)
        self.addCleanup(logs.setLevel, "info")

    def test_pluginFolderOthersCanWriteStopsTheStart(self) -> None:
        plugins = os.path.join(self.root, "plugins")
        os.mkdir(plugins)
        for name in ("kkobot_a.py", "kkobot_b.py"):
            with open(os.path.join(plugins, name), "w") as f:
                f.write("X = 1\n")
            os.chmod(os.path.join(plugins, name), 0o666)
        with self.assertRaises(StartupError) as cm:
            makeService(settingsFor(self.root), reactor=MemoryReactorClock())
        self.assertEqual(
            str(cm.exception),
            f"refusing to run plugins: plugin file {plugins}/kkobot_a.py is writable by group "
            f"or others (mode 0666); fix it with: chmod go-w {plugins}/kkobot_a.py "
            "(and 1 more)")
        os.chmod(plugins, 0o777)
        with self.assertRaises(StartupError) as cm:
            makeService(settingsFor(self.root), reactor=MemoryReactorClock())
        self.assertIn(f"plugin folder {plugins} is writable by group or others (mode 0777)",
                      str(cm.exception))


class ListenTests(SynchronousTestCase):
    """What makeService listens on, checked without a real socket."""

    def setUp(self) -> None:
        self.root = tempDir(self)
        self.addCleanup(logs.setLevel, "info")
        forgetDropins(self, os.path.join(self.root, "plugins"))

    def listen(self, **kw: Any) -> tuple[Any, ...]:
        memory = MemoryReactorClock()
        service = makeService(settingsFor(self.root, logDir=None, **kw), reactor=memory)
        service.startService()
        self.addCleanup(service.stopService)
        [(port, factory, backlog, interface)] = memory.tcpServers
        self.assertIs(factory, service.factory)
        return port, interface

    def test_portNumberIsLoopbackWithoutConfig(self) -> None:
        self.assertEqual(self.listen(port="1491"), (1491, "127.0.0.1"))

    def test_defaultPort(self) -> None:
        self.assertEqual(self.listen(port=None), (1490, "127.0.0.1"))

    def test_endpointString(self) -> None:
        self.assertEqual(self.listen(port="tcp:1494:interface=127.0.0.2"), (1494, "127.0.0.2"))
        cfg = os.path.join(self.root, "cfg")
        writeConfig(cfg)
        listenEverywhere(cfg)
        self.assertEqual(self.listen(port="tcp:1494:interface=0.0.0.0", configDir=cfg),
                         (1494, "0.0.0.0"))

    def test_configuredInterface(self) -> None:
        cfg = os.path.join(self.root, "cfg")
        writeConfig(cfg)
        listenEverywhere(cfg)
        self.assertEqual(self.listen(port="1495", configDir=cfg), (1495, "0.0.0.0"))

    def test_configuredTimings(self) -> None:
        cfg = os.path.join(self.root, "cfg")
        writeConfig(cfg)
        data = config.load(cfg)
        data["server"] = {"ping_interval": 10, "max_line_bytes": 4096, "handshake_timeout": 7}
        config.save(cfg, data)
        service = makeService(settingsFor(self.root, configDir=cfg, logDir=None),
                              reactor=MemoryReactorClock())
        self.addCleanup(service.database.close)
        factory = service.factory
        self.assertEqual((factory.pingInterval, factory.idleTimeout, factory.handshakeTimeout,
                          factory.maxLineBytes), (10, 30, 7, 4096))


class RunningServiceMixin:
    """The whole server on the real reactor, and a real TCP client."""

    settings: Settings

    @defer.inlineCallbacks
    def startServer(self, settings: Settings) -> Any:
        self.addCleanup(logs.setLevel, "info")
        forgetDropins(self, settings.dropinDir)
        self.service = makeService(settings)
        self.service.startService()
        self.addCleanup(self._stopIfRunning)
        port = yield self.service.server.whenListening()
        self.port = port.getHost().port
        yield waitUntil(lambda: self.service.chatlog.ready, "the chat log to be ready")

    def _stopIfRunning(self) -> Any:
        if self.service.running:
            return self.service.stopService()
        return None

    @defer.inlineCallbacks
    def connect(self) -> Any:
        client = BridgeClient()
        yield connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.port), client)
        return client

    @defer.inlineCallbacks
    def echoRoundTrip(self) -> Any:
        client = yield self.connect()
        client.transport.write(BRIDGE_LINES)
        yield client.waitForEvents(3)
        handshake, reply, ping = client.events
        self.assertEqual(handshake["event"], "handshakeComplete")
        self.assertEqual(handshake["data"]["success"], True)
        self.assertEqual(handshake["data"]["server_version"], __version__)
        self.assertEqual(reply, ECHO_REPLY)
        # The bridge's ping carries a timestamp this server never sent: answered.
        self.assertEqual(ping["event"], "ping")
        [registered] = list(self.service.registry)
        self.assertEqual((registered.botName, registered.version, registered.address),
                         ("kkobot", "3.2.0", "127.0.0.1"))
        return client

    @defer.inlineCallbacks
    def stopServer(self) -> Any:
        yield self.service.stopService()
        yield waitUntil(lambda: not self.service.factory.connections,
                        "the server side of the connections to close")


class SqliteServiceTests(RunningServiceMixin, TestCase):
    def setUp(self) -> None:
        self.root = tempDir(self)

    def serverLog(self) -> str:
        with open(os.path.join(self.root, "logs", "server.log"), encoding="utf-8") as f:
            return f.read()

    def sqliteRows(self) -> list[tuple]:
        conn = sqlite3.connect(os.path.join(self.root, "var", "kkobot_test.sqlite3"))
        try:
            return conn.execute(
                "SELECT message, directive, message_type, is_our_bot_response, room_name "
                "FROM kb_chat_logs ORDER BY id"
            ).fetchall()
        finally:
            conn.close()

    @defer.inlineCallbacks
    def test_echoAndRows(self) -> Any:
        yield self.startServer(settingsFor(self.root))
        client = yield self.echoRoundTrip()
        client.transport.loseConnection()
        yield client.lost
        yield waitUntil(lambda: not self.service.registry, "the client to be unregistered")
        yield self.stopServer()
        self.assertEqual(
            self.sqliteRows(),
            [("# echo 안녕하세요", "# echo", "command", 0, "테스트방"),
             ("에코: 안녕하세요", "# echo", "bot_response", 1, "테스트방")],
        )

    @defer.inlineCallbacks
    def test_stopClosesClientsAndFlushes(self) -> Any:
        yield self.startServer(settingsFor(self.root))
        client = yield self.echoRoundTrip()
        second = yield self.connect()
        second.transport.write(b'{"botName":"kkobot","version":"2.9.0c"}\n')
        yield second.waitForEvents(1)
        yield self.stopServer()
        yield client.lost
        yield second.lost
        self.assertEqual(len(self.sqliteRows()), 2)
        # The port is closed: a new connection is refused.
        from twisted.internet.error import ConnectionRefusedError

        yield self.assertFailure(self.connect(), ConnectionRefusedError)

    @defer.inlineCallbacks
    def test_serverLogAtInfo(self) -> Any:
        yield self.startServer(settingsFor(self.root))
        client = yield self.echoRoundTrip()
        client.transport.loseConnection()
        yield client.lost
        yield self.stopServer()
        text = self.serverLog()
        lines = text.splitlines()
        self.assertTrue(any("[STARTUP] kkobot" in l and "mode test" in l for l in lines), text)
        self.assertIn("[STARTUP] authentication is OFF", text)
        self.assertIn("[CONFIG] no config in", text)
        self.assertIn("[STARTUP] loaded 4 command(s): echo, help, ping, reload", text)
        self.assertIn("[SERVER] listening on tcp:0:interface=127.0.0.1", text)
        self.assertIn("[DB] chat log ready at sqlite:", text)
        self.assertIn("[CLIENT] kkobot v3.2.0 (5f3c2a1b9d8e7f60) from 127.0.0.1 handshake ok",
                      text)
        self.assertIn("[SHUTDOWN] done: 2 chat row(s) written this run", lines[-1])
        # Chat text is debug only.
        self.assertNotIn("안녕하세요", text)
        self.assertNotIn("[PING]", text)

    @defer.inlineCallbacks
    def test_serverLogAtDebug(self) -> Any:
        yield self.startServer(settingsFor(self.root, logLevel="debug"))
        client = yield self.echoRoundTrip()
        client.transport.loseConnection()
        yield client.lost
        yield self.stopServer()
        text = self.serverLog()
        self.assertIn("[MSG] kkobot | 테스트방 | 홍길동 | # echo", text)
        self.assertIn("[MSG] text: # echo 안녕하세요", text)
        self.assertIn("[ECHO] 테스트방: 안녕하세요", text)
        self.assertIn("[PING] kkobot from 127.0.0.1", text)
        self.assertNotIn('"signature"', text)

    @defer.inlineCallbacks
    def test_badClientDoesNotDisturbAGoodOne(self) -> Any:
        yield self.startServer(settingsFor(self.root))
        bad = yield self.connect()
        bad.transport.write(b"\xff\xfe garbage\n[1]\n" + b"[" * 50_000 + b"\n")
        yield bad.waitForEvents(3)
        self.assertEqual([e["data"]["code"] for e in bad.events],
                         ["BAD_ENCODING", "BAD_JSON", "BAD_JSON"])
        good = yield self.echoRoundTrip()
        for c in (bad, good):
            c.transport.loseConnection()
            yield c.lost
        yield self.stopServer()

    @defer.inlineCallbacks
    def test_dropinCommand(self) -> Any:
        plugins = os.path.join(self.root, "plugins")
        os.makedirs(plugins)
        with open(os.path.join(plugins, "kkobot_service_hello.py"), "w", encoding="utf-8") as f:
            f.write(
                "from twisted.plugin import IPlugin\n"
                "from zope.interface import implementer\n"
                "from kkobot.interfaces import ICommand\n\n"
                "@implementer(IPlugin, ICommand)\n"
                "class Hello:\n"
                "    name = 'svchello'\n"
                "    aliases = ()\n"
                "    description = 'hello'\n"
                "    usage = '# svchello'\n"
                "    def run(self, context):\n"
                "        return f'안녕, {context.sender}'\n\n"
                "hello = Hello()\n"
            )
        yield self.startServer(settingsFor(self.root))
        client = yield self.connect()
        client.transport.write(
            b'{"botName":"kkobot","version":"3.1.4"}\n'
            + json.dumps({"event": "analyze", "data": {
                "room": "방", "text": "# svchello", "sender": "철수"}}).encode() + b"\n"
        )
        yield client.waitForEvents(2)
        self.assertEqual(client.events[1]["data"]["text"], "안녕, 철수")
        client.transport.loseConnection()
        yield client.lost
        yield self.stopServer()
        self.assertIn("svchello", self.serverLog())


class MysqlServiceTests(RunningServiceMixin, TestCase):
    def setUp(self) -> None:
        self.root = tempDir(self)
        self.scratch = ScratchMysql()
        self.addCleanup(self.scratch.drop)
        self.scratch.createOperatorTable()

    @defer.inlineCallbacks
    def test_echoAndRowsInOperatorTable(self) -> Any:
        cfg = os.path.join(self.root, ".cfg")
        s = self.scratch.settings()
        writeConfig(cfg, test={"HOST": s.host, "PORT": s.port, "USER": s.user,
                               "PASSWORD": s.password, "NAME": s.name})
        yield self.startServer(settingsFor(self.root, configDir=cfg, mode="test"))
        self.assertEqual(self.service.database.engine, "mysql")
        client = yield self.echoRoundTrip()
        client.transport.loseConnection()
        yield client.lost
        yield self.stopServer()
        self.assertEqual(
            self.scratch.query(
                "SELECT channel_id, user_hash, message, directive, message_type, "
                "is_our_bot_response, is_group_chat, log_id, "
                "DATE_FORMAT(client_timestamp, '%Y-%m-%d %H:%i:%s') FROM kb_chat_logs ORDER BY id"
            ),
            [("18398338829933568", "a1b2c3", "# echo 안녕하세요", "# echo", "command", 0, 1,
              "3371984461207437313", "2026-11-25 19:25:10"),
             ("18398338829933568", "bot:kkobot", "에코: 안녕하세요", "# echo", "bot_response", 1,
              1, None, None)],
        )
        with open(os.path.join(self.root, "logs", "server.log"), encoding="utf-8") as f:
            text = f.read()
        self.assertIn(f"[CONFIG] loaded {os.path.abspath(cfg)}", text)
        self.assertIn(f"mysql://{s.user}@{s.host}:{s.port}/{s.name}", text)
        if s.password:
            self.assertNotIn(s.password, text)
