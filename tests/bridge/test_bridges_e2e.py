"""End to end: bridges of 3.3.3, 3.3.2 and 3.2.0 (JavaScript, tests/support/bridges/) against `twistd -n kkobot`, HMAC auth on, MariaDB."""

from __future__ import annotations

import json
import os
import shutil
from datetime import datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

from twisted.internet import defer, error, protocol, reactor
from twisted.trial.unittest import SkipTest, TestCase

from benchmarks import targets
from kkobot import config
from tests.support.paths import BRIDGES
from tests.support import (
    MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER, ScratchMysql, startServerProcess,
    tempDir, waitUntil, writeMysqlConfig,
)

SECRET = "bridge-e2e-Q7v2LmZx"
SALT = "bridge-e2e-salt-41"
ROOM = "테스트방"
CHANNEL = "18398338829933568"
DEADLINE = 20.0

# A command that answers with media: two images by URL, one inline.
PICTURES_PLUGIN = '''
"""`# pics`: images by URL and inline, for the bridge tests."""

from kkobot.command import Reply, command


@command("pics", "테스트 그림을 보냅니다.", usage="# pics")
def pics(context):
    return [Reply.media("https://img.example/a.png", "https://img.example/b.png?size=2", waitTime=1500),
            Reply.image(b"\\x89PNG\\r\\n\\x1a\\n")]
'''
MEDIA = [
    {"type": "media", "room": ROOM, "channelId": CHANNEL, "kind": "image", "waitTime": 1500,
     "sources": [{"url": "https://img.example/a.png"}, {"url": "https://img.example/b.png?size=2"}]},
    {"type": "media", "room": ROOM, "channelId": CHANNEL, "kind": "image",
     "sources": [{"base64": "iVBORw0KGgo="}]},
]


def nodePath() -> str:
    node = shutil.which("node") or ("/usr/bin/node" if os.path.exists("/usr/bin/node") else None)
    if node is None:
        raise SkipTest("node is not installed: the JavaScript bridge clients in tests/support/bridges/ need it")
    return node


class NodeBridge(protocol.ProcessProtocol):
    """One bridge process: commands on its stdin, its reports (JSON lines) collected from stdout."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.reports: list[dict[str, Any]] = []
        self.stderr = b""
        self._pending = b""
        self._waiters: list[tuple[Callable[[], Any], defer.Deferred]] = []
        self.ended: defer.Deferred = defer.Deferred()

    def outReceived(self, data: bytes) -> None:
        self._pending += data
        *lines, self._pending = self._pending.split(b"\n")
        for line in lines:
            if line.strip():
                self.reports.append(json.loads(line))
        for waiter in list(self._waiters):
            check, d = waiter
            value = check()
            if value:
                self._waiters.remove(waiter)
                d.callback(value)

    def errReceived(self, data: bytes) -> None:
        self.stderr += data

    def processEnded(self, reason: Any) -> None:
        self.ended.callback(None)

    def command(self, cmd: str, **fields: Any) -> None:
        self.transport.write(json.dumps({"cmd": cmd, **fields}, ensure_ascii=False).encode() + b"\n")

    def say(self, text: str, logId: str, **fields: Any) -> None:
        self.command("say", room=ROOM, text=text, channelId=CHANNEL, userHash="a1b2c3",
                     logId=logId, **fields)

    def of(self, kind: str) -> list[dict[str, Any]]:
        return [r for r in self.reports if r["type"] == kind]

    def until(self, check: Callable[[], Any], what: str) -> defer.Deferred:
        """Fires with C{check()} once it is truthy (checked on every report)."""
        value = check()
        if value:
            return defer.succeed(value)
        d: defer.Deferred = defer.Deferred()
        self._waiters.append((check, d))

        def timedOut(failure: Any) -> Any:
            failure.trap(defer.TimeoutError)
            raise AssertionError(f"{self.name}: timed out waiting for {what}; reports: "
                                 f"{self.reports[-12:]}; stderr: {self.stderr[-500:]!r}")

        d.addTimeout(DEADLINE, reactor)
        d.addErrback(timedOut)
        return d

    def count(self, kind: str, n: int) -> defer.Deferred:
        return self.until(lambda: len(self.of(kind)) >= n and self.of(kind), f"{n} {kind} report(s)")


class BridgeGenerationsEndToEnd(TestCase):
    timeout = 120

    def setUp(self) -> None:
        self.node = nodePath()
        self.scratch = ScratchMysql()
        self.addCleanup(self.scratch.drop)
        self.scratch.createOperatorTable()
        self.workdir = tempDir(self)
        cfgdir = os.path.join(self.workdir, "cfg")
        writeMysqlConfig(cfgdir, MYSQL_HOST, MYSQL_PORT, self.scratch.name,
                         os.path.join(self.workdir, "journal"), user=MYSQL_USER,
                         password=MYSQL_PASSWORD, flush_interval=0.01)
        data = config.load(cfgdir)
        data["auth"] = {"required": True, "auto_approve": True}
        data["bots"] = {"kkobot": {"secret": SECRET, "salt": SALT}}
        # Pings every second, so each bridge answers a few while the test runs.
        data["server"] = {"ping_interval": 1}
        config.save(cfgdir, data)
        os.makedirs(os.path.join(self.workdir, "plugins"))
        with open(os.path.join(self.workdir, "plugins", "kkobot_e2epics.py"), "w") as f:
            f.write(PICTURES_PLUGIN)
        self.servers: list[targets.ProcessTarget] = []
        self.addCleanup(self.stopServers)
        self.server = startServerProcess(self.workdir, cfgdir, self.servers)

    def stopServers(self) -> None:
        for server in self.servers:
            server.stop()

    def bridge(self, script: str, device: str, secret: str = SECRET, **args: str) -> NodeBridge:
        bridge = NodeBridge(f"{script} {args.get('version', '')}".strip())
        argv = [self.node, os.path.join(BRIDGES, script), "--port", str(self.server.port),
                "--secret", secret, "--salt", SALT, "--device", device]
        for name, value in args.items():
            argv += [f"--{name}", value]
        reactor.spawnProcess(bridge, self.node, argv, env=dict(os.environ))
        self.addCleanup(self.endBridge, bridge)
        return bridge

    def endBridge(self, bridge: NodeBridge) -> defer.Deferred:
        if not bridge.ended.called:
            try:
                bridge.transport.signalProcess("KILL")
            except error.ProcessExitedAlready:
                pass
        return bridge.ended

    async def test_every_generation_side_by_side(self) -> None:
        # 3.3.3: a burst produced while offline, flushed before its handshake.
        b333 = self.bridge("bridge33.js", "3333333333333333")
        burst = ["# echo 하나", "줄 서 있던 잡담", "# echo 😀 이모지 👍🏽", "# echo 첫 줄\n둘째 줄"]
        for i, text in enumerate(burst):
            b333.say(text, logId=f"33300{i}")
        await b333.count("message", len(burst))
        self.assertTrue(all(m["queued"] for m in b333.of("message")))
        b333.command("connect")
        sends = await b333.count("send", 3)
        self.assertEqual([s["text"] for s in sends],
                         ["에코: 하나", "에코: 😀 이모지 👍🏽", "에코: 첫 줄\n둘째 줄"])
        self.assertEqual({(s["room"], s["channelId"]) for s in sends}, {(ROOM, CHANNEL)})
        # The message introduced the connection; its handshake gets its answer too, and
        # the first signed event a fresh one with the device's real (approved) state.
        # How many answers arrive depends on whether the handshake line overtakes the
        # verification, so the test waits for the approved one rather than a count.
        await b333.until(
            lambda: any(a["data"].get("approved") for a in b333.of("handshakeComplete")),
            "an approved handshakeComplete")
        answers = b333.of("handshakeComplete")
        self.assertGreaterEqual(len(answers), 2)
        self.assertTrue(all(a["data"]["success"] for a in answers), answers)
        b333.say("# echo 연결된 뒤", logId="333010")
        b333.say("# pics", logId="333011")
        await b333.count("send", 4)
        self.assertEqual(b333.of("send")[3]["text"], "에코: 연결된 뒤")
        self.assertEqual(await b333.count("media", 2), MEDIA)
        await b333.count("ping", 1)

        # 3.3.2 answers the server's ping with a ping; 3.2.0 speaks JSON lines; both at once.
        b332 = self.bridge("bridge33.js", "3323323323323323", version="3.3.2")
        b320 = self.bridge("bridge32.js", "3203203203203203")
        for bridge in (b332, b320):
            bridge.command("connect")
            await bridge.count("handshakeComplete", 1)
        b332.say("# echo 3.3.2 에서", logId="332000")
        b320.say("# echo 3.2.0 에서 😀", logId="320000")
        b320.say("# pics", logId="320001")
        self.assertEqual([s["text"] for s in await b332.count("send", 1)], ["에코: 3.3.2 에서"])
        self.assertEqual([s["text"] for s in await b320.count("send", 1)], ["에코: 3.2.0 에서 😀"])
        self.assertEqual(await b320.count("media", 2), MEDIA)
        await b332.count("ping", 1)
        await b320.count("ping", 1)

        # A bridge with the wrong secret: its message is refused, in its own form.
        wrong = self.bridge("bridge33.js", "badbadbadbadbad0", secret="not-the-secret")
        wrong.command("connect")
        await wrong.count("handshakeComplete", 1)
        wrong.say("# echo 틀린 키", logId="999000")
        # Its message and its ping answers are each refused; the first is enough.
        refused = (await wrong.count("error", 1))[0]
        self.assertEqual(refused["data"]["code"], "AUTH_FAILED")
        self.assertEqual(refused["data"]["message_positions"], [0, 0])

        for bridge in (b333, b332, b320, wrong):
            self.assertEqual(bridge.of("dropped"), [], bridge.name)
            self.assertEqual([e for e in bridge.of("error") if bridge is not wrong], [], bridge.name)
        await self.rowsAreExact(b333, b332, b320)
        await self.pingsAreRecorded()

    async def rowsAreExact(self, *bridges: NodeBridge) -> None:
        """Every message as the phone saw it (decoded text, its wall-clock time), and every reply."""
        expected = []
        for bridge in bridges:
            for sent in bridge.of("message"):
                expected.append((ROOM, sent["text"], CHANNEL, "a1b2c3", sent["logId"],
                                 phoneTime(sent["timestamp"]), "홍길동", 0))
        replies = sorted(["에코: 하나", "에코: 😀 이모지 👍🏽", "에코: 첫 줄\n둘째 줄", "에코: 연결된 뒤",
                          "에코: 3.3.2 에서", "에코: 3.2.0 에서 😀"] + [
            "MEDIA_URL:https://img.example/a.png|||https://img.example/b.png?size=2",
            "IMAGE_BASE64:iVBORw0KGgo="] * 2)
        query = ("SELECT room_name, message, channel_id, user_hash, log_id, "
                 "DATE_FORMAT(client_timestamp, '%%Y-%%m-%%d %%H:%%i:%%s'), sender, is_our_bot_response "
                 "FROM kb_chat_logs WHERE is_our_bot_response = %s")
        await waitUntil(lambda: len(self.scratch.query(query, 0)) >= len(expected)
                        and len(self.scratch.query(query, 1)) >= len(replies), "every row")
        self.assertEqual(sorted(self.scratch.query(query, 0)), sorted(expected))
        self.assertEqual(sorted(row[1] for row in self.scratch.query(query, 1)), replies)
        self.assertEqual(self.scratch.query("SELECT COUNT(*) FROM kb_chat_logs WHERE message LIKE %s",
                                            "%틀린 키%"), [(0,)])

    async def pingsAreRecorded(self) -> None:
        """The 3.3.3 pong, the 3.3.2 ping and the 3.2.0 ping each give a round trip."""
        query = ("SELECT client_version, COUNT(*) FROM kb_ping_monitor "
                 "WHERE rtt_ms IS NOT NULL AND total_memory = 6028 GROUP BY client_version")
        await waitUntil(lambda: len(self.scratch.query(query)) == 3, "ping rows of three versions")
        self.assertEqual(sorted(version for version, _ in self.scratch.query(query)),
                         ["3.2.0", "3.3.2", "3.3.3"])


def phoneTime(sent: str) -> str:
    """What client_timestamp must hold: a 3.2 time as sent, a 3.3 ISO time on a Seoul wall clock."""
    if not sent.endswith("Z"):
        return sent
    return datetime.fromisoformat(sent).astimezone(ZoneInfo("Asia/Seoul")).strftime("%Y-%m-%d %H:%M:%S")
