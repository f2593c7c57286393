"""Three real servers (twistd) on one scratch MariaDB and a private Redis, and blocking phones to drive them."""

from __future__ import annotations

import json
import os
import shutil
import socket
import tempfile
import threading
import time
import urllib.error
import urllib.request
from typing import Any

from benchmarks import targets
from kkobot import config
from tests.support import ScratchMysql, MYSQL_HOST, MYSQL_PASSWORD, MYSQL_PORT, MYSQL_USER, analyze, line, pollUntil, serverLog, sign
from tests.support.redisrig import PrivateRedis

SECRET = "deployment-secret-7Hq2"
SALT = "deployment-salt-k3"
BOT = "kkobot"
TOKEN = "deployment-admin-token-0123456789"

COOLDOWN_PLUGIN = '''
from kkobot.command import Cooldown, command

@command("쿨", "한 방에서 10분에 한 번", cooldown=Cooldown(room=600))
def cool(context):
    return "쿨 실행"
'''

SCHEDULE_PLUGIN = '''
from kkobot.command import every

@every(1, bot="kkobot", room="알림방")
def tick(context):
    return f"틱 {int(context.scheduledFor)}"
'''


class Phone:
    """A signing 3.2.0 bridge on a blocking socket; a thread collects what the server writes."""

    def __init__(self, device: str) -> None:
        self.device = device
        self.events: list[dict[str, Any]] = []
        self.sock: socket.socket | None = None
        self.lock = threading.Condition()
        self.replyCount = 0

    def auth(self) -> dict[str, Any]:
        auth = {
            "clientType": "MessengerBotR", "botName": BOT, "deviceUUID": self.device,
            "deviceID": self.device, "macAddress": "02:00:00:00:00:00",
            "ipAddress": "127.0.0.1", "timestamp": int(time.time() * 1000), "version": "3.2.0",
        }
        auth["signature"] = sign(SECRET, SALT, auth)
        return auth

    def connect(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock = self.sock
        threading.Thread(target=self._read, args=(sock,), daemon=True).start()
        self.write({"clientType": "MessengerBotR", "botName": BOT, "version": "3.2.0",
                    "deviceID": self.device, "deviceIP": "127.0.0.1", "deviceInfo": "test"})
        # The first signed event verifies the connection (and registers the phone).
        self.write({"event": "ping", "data": {"bot_name": BOT, "server_timestamp": 0,
                                              "monitoring": {}, "auth": self.auth()}})
        self.waitFor(lambda e: e.get("event") == "handshakeComplete" and e["data"].get("approved"),
                     "an approved handshake")

    def connectAny(self, ports: list[int], timeout: float = 30.0) -> int:
        """The bridge's SERVER_LIST: the first port that answers, retried until one does."""
        deadline = time.monotonic() + timeout
        while True:
            for port in ports:
                try:
                    self.connect(port)
                    return port
                except (OSError, AssertionError):
                    self.close()
            if time.monotonic() > deadline:
                raise AssertionError(f"no server of {ports} took the phone")
            time.sleep(0.2)

    def _read(self, sock: socket.socket) -> None:
        buffer = b""
        sock.settimeout(None)
        while True:
            try:
                data = sock.recv(65536)
            except OSError:
                return
            if not data:
                return
            buffer += data
            while b"\n" in buffer:
                raw, buffer = buffer.split(b"\n", 1)
                if raw.strip():
                    event = json.loads(raw)
                    with self.lock:
                        self.events.append(event)
                        if event.get("event") == "messageResponse":
                            self.replyCount += 1
                        self.lock.notify_all()
                    if event.get("event") == "ping" and sock is self.sock:
                        try:
                            self.write({"event": "ping", "data": {
                                "bot_name": BOT, "server_timestamp": event["data"]["server_timestamp"],
                                "monitoring": {}, "auth": self.auth()}})
                        except OSError:
                            pass

    def write(self, obj: dict[str, Any]) -> None:
        assert self.sock is not None
        self.sock.sendall(line(obj))

    def say(self, text: str, room: str = "테스트방") -> dict[str, Any]:
        event = analyze(text, room=room, botName=BOT, auth=self.auth())
        self.write(event)
        return event

    def replies(self, room: str | None = None) -> list[str]:
        with self.lock:
            return [e["data"]["text"] for e in self.events if e.get("event") == "messageResponse"
                    and (room is None or e["data"]["room"] == room)]

    def errors(self) -> list[dict[str, Any]]:
        with self.lock:
            return [e["data"] for e in self.events if e.get("event") == "error"]

    def waitReplies(self, count: int, timeout: float = 30.0) -> None:
        """Until C{count} messageResponse lines have arrived (woken by each line, no polling)."""
        with self.lock:
            done = self.lock.wait_for(lambda: self.replyCount >= count, timeout)
        if not done:
            raise AssertionError(f"{count} replies did not arrive within {timeout} s")

    def waitFor(self, predicate: Any, what: str, timeout: float = 30.0) -> dict[str, Any]:
        def found() -> Any:
            with self.lock:
                return next((e for e in self.events if predicate(e)), None)

        return pollUntil(found, what, timeout)

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


class Deployment:
    """Instances A, B, C: one config, one scratch database, one private Redis."""

    def __init__(self, testcase: Any, plugin: str | None = None) -> None:
        self.testcase = testcase
        self.scratch = ScratchMysql()
        testcase.addCleanup(self.scratch.drop)
        self.scratch.createOperatorTable()
        self.redis = PrivateRedis()
        self.redis.start()
        testcase.addCleanup(self.redis.destroy)
        self.workdir = tempfile.mkdtemp(prefix="kkobot-deployment-")
        testcase.addCleanup(shutil.rmtree, self.workdir, True)
        self.cfgdir = os.path.join(self.workdir, "cfg")
        self.plugins = os.path.join(self.workdir, "plugins")
        os.makedirs(self.plugins, mode=0o700)
        if plugin:
            with open(os.path.join(self.plugins, "kkobot_deployment_test.py"), "w") as f:
                f.write(plugin)
        data = config.skeleton()
        data["DBs"]["kkobot_test"] = {"HOST": MYSQL_HOST, "PORT": MYSQL_PORT, "USER": MYSQL_USER,
                                      "PASSWORD": MYSQL_PASSWORD, "NAME": self.scratch.name}
        data["auth"] = {"required": True, "auto_approve": True, "device_refresh_interval": 0.2}
        data["bots"] = {BOT: {"secret": SECRET, "salt": SALT}}
        data["chatlog"] = {"flush_interval": 0.01}
        data["admin"] = {"token": TOKEN}
        data["cluster"] = {"redis": f"redis://127.0.0.1:{self.redis.port}/0",
                           # Short, to keep the tests short; long enough that a loaded
                           # 2-core machine does not make a live instance look dead.
                           "heartbeat_interval": 0.5, "instance_timeout": 3.0}
        data["outbound"] = {"wait_seconds": 60.0}
        config.init(self.cfgdir, data)
        self.servers: dict[str, Any] = {}
        self.adminPorts: dict[str, int] = {}
        testcase.addCleanup(self.stopAll)

    def start(self, name: str) -> Any:
        port = self.servers[name].port if name in self.servers else targets.free_port()
        admin = self.adminPorts.setdefault(name, targets.free_port())
        var = os.path.join(self.workdir, f"var-{name}")
        argv = [
            targets.twistd_path(), "-n", "--pidfile=", "kkobot",
            "--port", f"tcp:{port}:interface=127.0.0.1", "--config", self.cfgdir,
            "--var", var, "--logs", "", "--plugins", self.plugins,
            "--admin-port", f"tcp:{admin}:interface=127.0.0.1", "--instance", name,
        ]
        server = targets.ProcessTarget(name, argv, port=port, cwd=self.workdir,
                                       log_dir=os.path.join(self.workdir, f"log-{name}-{time.monotonic_ns()}"),
                                       remove_log_dir=False)
        os.makedirs(server.log_dir, exist_ok=True)
        self.servers[name] = server
        server.start()
        pollUntil(lambda: "registered in Redis" in serverLog(server), f"{name} to join the cluster")
        return server

    def startAll(self) -> None:
        for name in "ABC":
            self.start(name)

    def port(self, name: str) -> int:
        return self.servers[name].port

    def kill9(self, name: str) -> None:
        proc = self.servers[name].proc
        proc.kill()
        proc.wait(10)

    def stopAll(self) -> None:
        for server in self.servers.values():
            if server.proc is not None and server.proc.poll() is None:
                server.proc.kill()
                server.proc.wait(10)

    def api(self, name: str, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.adminPorts[name]}{path}", data=data, method=method,
            headers={"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                return answer.status, json.loads(answer.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read() or b"null")

    def page(self, name: str, path: str) -> str:
        request = urllib.request.Request(f"http://127.0.0.1:{self.adminPorts[name]}{path}",
                                         headers={"Authorization": f"Bearer {TOKEN}"})
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.read().decode("utf-8")

    def holders(self, name: str) -> dict[str, list[str]]:
        """Instance -> devices, as /api/clients of C{name} shows the deployment."""
        _, body = self.api(name, "GET", "/api/clients")
        return {v["instance"]: sorted(c["device_id"] for c in v["clients"])
                for v in body["instances"] if v["alive"]}

    def rows(self, where: str, *args: Any) -> list[tuple]:
        return self.scratch.query(f"SELECT message, is_our_bot_response FROM kb_chat_logs WHERE {where}", *args)
