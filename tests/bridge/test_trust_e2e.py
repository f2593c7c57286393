"""End to end: an impostor over TCP gets nothing; a line captured before a twistd restart is refused after it."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import time
from typing import Any

from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from benchmarks import targets
from kkobot import config
from tests.support.adminhelpers import RunningServer
from tests.support import (
    HELLO_320, MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER, ScratchMysql, analyze,
    line, serverLog, startServerProcess, writeMysqlConfig,
)
from tests.bridge.test_auth_e2e import SALT, SECRET, bridgeAuth


def signedPing(serverTimestamp: int) -> dict[str, Any]:
    """A 3.2.0 bridge's answer to the server's ping."""
    return {"event": "ping", "data": {
        "bot_name": "kkobot", "server_timestamp": serverTimestamp,
        "monitoring": {"total_memory": 6028, "memory_usage": 8, "memory_percent": 0.1,
                       "message_queue_size": 0, "active_rooms": 1},
        "auth": bridgeAuth(HELLO_320),
    }}


class ImpostorOverTcpTests(TestCase):
    """Finding 1 on real sockets, with the admin API sending the message."""

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.server = RunningServer(self, authConfig={
            "auth": {"required": True, "auto_approve": True},
            "bots": {"kkobot": {"secret": SECRET, "salt": SALT}},
            # Pings soon (the phone proves itself by answering one); the phone does not
            # answer the later ones, so its idle timeout is long.
            "server": {"handshake_timeout": 2, "ping_interval": 0.5, "idle_timeout": 30},
            "chatlog": {"flush_interval": 0.01},
        })
        yield self.server.start()

    @defer.inlineCallbacks
    def test_impostor_gets_no_message_meant_for_the_phone(self):
        phone = yield self.server.connectClient()
        ping = yield phone.waitForEvent("ping")
        # The phone answers the server's ping as a bridge does: signed.
        captured = signedPing(ping["data"]["server_timestamp"])
        phone.send(captured)
        yield phone.waitFor(lambda e: e["event"] == "handshakeComplete" and e["data"]["approved"])

        # Newer than the phone's connection, the same handshake, and the phone's signed
        # line replayed: what an attacker on the same network can copy.
        impostor = yield self.server.connectClient()
        impostor.send(captured)
        refusal = yield impostor.waitForEvent("error")
        self.assertEqual(refusal["data"]["code"], "AUTH_FAILED")
        self.assertIn("replayed", refusal["data"]["message"])

        code, _, body = yield self.server.request(
            b"POST", "/api/messages",
            body={"bot": "kkobot", "room": "공지방", "channel_id": "777", "text": "점검 안내"},
        )
        self.assertEqual(code, 202, body)
        # (It went to the impostor before: the newest connection of the bot.)
        event = yield phone.waitForEvent("messageResponse", text="점검 안내").addTimeout(
            10, reactor)
        self.assertEqual(event["data"]["room"], "공지방")
        code, _, body = yield self.server.request(b"GET", "/api/clients")
        [entry] = json.loads(body)["clients"]
        self.assertEqual(entry["connection_id"], self.connectionOf(phone))

        # The impostor is closed at its deadline, having been sent nothing but refusals.
        yield impostor.lost
        kinds = {e["event"] for e in impostor.received}
        self.assertEqual(kinds, {"handshakeComplete", "ping", "error"})
        answers = [e["data"] for e in impostor.received if e["event"] == "handshakeComplete"]
        self.assertEqual([(a["success"], a["approved"]) for a in answers], [(True, False)])
        self.assertEqual(impostor.received[-1]["data"]["code"], "HANDSHAKE_TIMEOUT")

    def connectionOf(self, client) -> int:
        port = client.transport.getHost().port
        (proto,) = [p for p in self.server.service.factory.connections
                    if p.transport.getPeer().port == port]
        return proto.client.connectionId


class BridgeSocket:
    """A plain blocking socket speaking the bridge protocol (the server is another process)."""

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.buffer = b""

    def send(self, obj: dict[str, Any]) -> None:
        self.sock.sendall(line(obj))

    def next(self, *names: str, deadline: float = 20.0) -> dict[str, Any]:
        """The next event called one of C{names}, as {"event": ..., "data": ...}."""
        end = time.monotonic() + deadline
        while True:
            while b"\n" in self.buffer:
                raw, self.buffer = self.buffer.split(b"\n", 1)
                event = json.loads(raw)
                if event["event"] in names:
                    return event
            if time.monotonic() > end:
                raise AssertionError(f"no {names} event within {deadline} s")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise AssertionError(f"connection closed before a {names} event")
            self.buffer += chunk

    def close(self) -> None:
        self.sock.close()


class ReplayAfterRestartTests(SynchronousTestCase):
    """Finding 2 with a real `twistd -n kkobot`: SIGTERM, start again, replay refused."""

    def setUp(self) -> None:
        self.scratch = ScratchMysql()
        self.addCleanup(self.scratch.drop)
        self.workdir = tempfile.mkdtemp(prefix="kkobot-replay-")
        self.addCleanup(shutil.rmtree, self.workdir, True)
        self.cfgdir = os.path.join(self.workdir, "cfg")
        writeMysqlConfig(self.cfgdir, MYSQL_HOST, MYSQL_PORT, self.scratch.name,
                         os.path.join(self.workdir, "journal"), user=MYSQL_USER,
                         password=MYSQL_PASSWORD, flush_interval=0.01)
        data = config.load(self.cfgdir)
        data["auth"] = {"required": True, "auto_approve": True}
        data["bots"] = {"kkobot": {"secret": SECRET, "salt": SALT}}
        config.save(self.cfgdir, data)
        self.servers: list[targets.ProcessTarget] = []
        self.addCleanup(self.stopAll)

    def stopAll(self) -> None:
        for server in self.servers:
            if server.proc is not None and server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait(10)

    def bridge(self, server: targets.ProcessTarget) -> BridgeSocket:
        client = BridgeSocket(server.port)
        self.addCleanup(client.close)
        client.send(HELLO_320)
        client.next("handshakeComplete")
        return client

    def test_signed_line_captured_before_sigterm_is_refused_after_restart(self) -> None:
        server = startServerProcess(self.workdir, self.cfgdir, self.servers)
        phone = self.bridge(server)
        captured = analyze("# echo 재시작 전", auth=bridgeAuth(HELLO_320))
        phone.send(captured)
        self.assertEqual(phone.next("messageResponse")["data"]["text"], "에코: 재시작 전")
        phone.close()
        server.stop()
        self.assertIn(server.proc.returncode, (0, -15, 143))
        self.assertIn("[SHUTDOWN] done", serverLog(server))

        restarted = startServerProcess(self.workdir, self.cfgdir, self.servers)
        attacker = self.bridge(restarted)
        # The signature does not cover the text: any text could ride on it.
        forged = analyze("# echo 재시작 후", userHash="admin-hash", auth=captured["data"]["auth"])
        attacker.send(forged)
        answer = attacker.next("error", "messageResponse")
        self.assertEqual(answer["event"], "error", answer)
        self.assertEqual(answer["data"]["code"], "AUTH_FAILED")
        self.assertIn("replayed", answer["data"]["message"])
        self.assertIn("replay memory: 1 signature(s)", serverLog(restarted))
        # The phone itself, with a fresh signature, is served by the restarted server.
        again = self.bridge(restarted)
        again.send(analyze("# echo 다시", auth=bridgeAuth(HELLO_320)))
        self.assertEqual(again.next("messageResponse")["data"]["text"], "에코: 다시")
        restarted.stop()
        messages = [m for (m,) in self.scratch.query("SELECT message FROM kb_chat_logs")]
        self.assertIn("# echo 재시작 전", messages)
        self.assertIn("# echo 다시", messages)
        self.assertNotIn("# echo 재시작 후", messages)
