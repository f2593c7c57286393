"""End to end over real sockets: signing bridges get their echo, wrong secrets get nothing (MariaDB; TLS)."""

from __future__ import annotations

import datetime
import json
import os
import tempfile
import time

from twisted.internet import defer, endpoints, reactor, ssl
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver
from twisted.trial.unittest import TestCase

from kkobot import config

from kkobot.admin import cli as admincli
from kkobot.db.pool import Database
from kkobot.service import KkobotService, Resolved, Settings
from tests.support import HELLO_314, HELLO_320, ScratchMysql, analyze, line, sign

SECRET = "e2e-secret-Vn3xQpL0"
SALT = "e2e-salt-9f2c"
DEADLINE = 10.0


def bridgeAuth(hello: dict, secret: str = SECRET, salt: str = SALT) -> dict:
    """`auth` as the 3.2.0 / 3.1.4 bridge builds it, signed now."""
    device = hello["deviceID"]
    auth = {
        "clientType": "MessengerBotR",
        "botName": hello["botName"],
        "deviceUUID": device,
        "deviceID": device,
        "macAddress": "02:00:00:00:00:00",
        "ipAddress": "127.0.0.1",
        "timestamp": int(time.time() * 1000),
        "version": hello["version"],
    }
    auth["signature"] = sign(secret, salt, auth)
    return auth


class BridgeClient(LineReceiver):
    """Stands in for the phone: writes lines, queues what the server sends."""

    delimiter = b"\n"

    def __init__(self) -> None:
        self.events: defer.DeferredQueue = defer.DeferredQueue()
        self.lost: defer.Deferred = defer.Deferred()

    def lineReceived(self, data: bytes) -> None:
        self.events.put(json.loads(data))

    def connectionLost(self, reason=None) -> None:
        self.lost.callback(None)

    def send(self, obj: dict) -> None:
        self.transport.write(line(obj))

    async def next(self, name: str) -> dict:
        """The next event called C{name} (pings are skipped)."""
        while True:
            d = self.events.get()
            d.addTimeout(DEADLINE, reactor)
            event = await d
            if event["event"] == name:
                return event["data"]


class E2EMixin:
    def startServer(self, endpoint: str, db: config.DBSettings, cfg: dict) -> KkobotService:
        settings = Settings(port=endpoint, logDir=None, varDir=tempfile.mkdtemp())
        resolved = Resolved(
            settings=settings, cfg=cfg, endpoint=endpoint, db=db,
            dropinDir=tempfile.mkdtemp(), authRequired=True,
        )
        service = KkobotService(resolved, reactor=reactor)
        service.startService()
        self.addCleanup(self.stopServer, service)
        return service

    def stopServer(self, service: KkobotService):
        if service.running:
            return service.stopService()

    async def connect(self, service, clientEndpoint) -> BridgeClient:
        port = await service.server.whenListening()
        client = await clientEndpoint(port.getHost().port).connect(Factory.forProtocol(BridgeClient))
        self.addCleanup(lambda: client.lost)
        self.addCleanup(client.transport.loseConnection)
        return client


def authConfig(autoApprove: bool = True) -> dict:
    return {
        "auth": {"required": True, "auto_approve": autoApprove},
        "bots": {"kkobot": {"secret": SECRET, "salt": SALT}},
        "chatlog": {"flush_interval": 0.01},
    }


class MariaDBEndToEnd(E2EMixin, TestCase):
    def tcp(self, port):
        return endpoints.TCP4ClientEndpoint(reactor, "127.0.0.1", port)

    async def exchange(self, service, hello, secret, text):
        client = await self.connect(service, self.tcp)
        client.send(hello)
        self.assertTrue((await client.next("handshakeComplete"))["success"])
        client.send(analyze(text, auth=bridgeAuth(hello, secret=secret)))
        return client

    async def test_right_secret_echo_wrong_secret_auth_failed_and_no_row(self):
        scratch = ScratchMysql()
        self.addCleanup(scratch.drop)
        service = self.startServer("tcp:0:interface=127.0.0.1", scratch.settings(), authConfig())
        wrong314 = {**HELLO_314, "deviceID": "0badc0de0badc0de"}
        for hello in (HELLO_320, HELLO_314):
            client = await self.exchange(service, hello, SECRET, f"# echo 안녕 {hello['version']}")
            reply = await client.next("messageResponse")
            self.assertEqual(reply["text"], f"에코: 안녕 {hello['version']}")
            self.assertEqual(reply["room"], "테스트방")
        for hello in ({**HELLO_320, "deviceID": "feedfacefeedface"}, wrong314):
            client = await self.exchange(service, hello, "not-the-secret", "# echo 틀린 키")
            error = await client.next("error")
            self.assertEqual(error["code"], "AUTH_FAILED")
            # The connection stays usable: a correct event right after is answered,
            # which also proves nothing was sent for the refused one.
            client.send(analyze("# echo 다음", auth=bridgeAuth(hello)))
            self.assertEqual((await client.next("messageResponse"))["text"], "에코: 다음")
        await service.stopService()
        messages = [m for (m,) in scratch.query("SELECT message FROM kb_chat_logs")]
        self.assertIn("# echo 안녕 3.2.0", messages)
        self.assertIn("에코: 안녕 3.1.4", messages)
        self.assertNotIn("# echo 틀린 키", messages)
        devices = dict(scratch.query("SELECT device_id, status FROM kb_bot_devices"))
        self.assertEqual(devices[HELLO_320["deviceID"]], "approved")

    async def test_pending_device_gets_no_reply_until_approved(self):
        scratch = ScratchMysql()
        self.addCleanup(scratch.drop)
        cfg = authConfig(autoApprove=False)
        cfg["auth"]["device_refresh_interval"] = 0.1
        service = self.startServer("tcp:0:interface=127.0.0.1", scratch.settings(), cfg)
        client = await self.connect(service, self.tcp)
        client.send(HELLO_320)
        answer = await client.next("handshakeComplete")
        self.assertEqual((answer["success"], answer["approved"]), (True, False))
        client.send(analyze("# echo 하나", auth=bridgeAuth(HELLO_320)))
        # The first signed event proves the connection: now it learns the real state.
        notice = await client.next("handshakeComplete")
        self.assertEqual((notice["success"], notice["approved"]), (True, False))
        self.assertIn("kkobot-admin devices approve", notice["message"])
        # The device row appears with the first signed event; approve it as an operator would.
        while not service.chatlog.ready:  # the tables exist once the chat log is ready
            await deferLater(0.05)
        while not scratch.query("SELECT 1 FROM kb_bot_devices"):
            await deferLater(0.05)
        adminDb = Database(scratch.settings())
        self.addCleanup(adminDb.close)
        args = admincli.parser().parse_args(
            ["devices", "approve", "kkobot", HELLO_320["deviceID"]])
        await admincli.run(args, adminDb, reactor)
        notice = await client.next("handshakeComplete")
        self.assertTrue(notice["approved"])
        client.send(analyze("# echo 둘", auth=bridgeAuth(HELLO_320)))
        self.assertEqual((await client.next("messageResponse"))["text"], "에코: 둘")
        await service.stopService()
        messages = [m for (m,) in scratch.query("SELECT message FROM kb_chat_logs")]
        self.assertIn("# echo 하나", messages)  # logged though not answered
        self.assertNotIn("에코: 하나", messages)


def deferLater(seconds: float) -> defer.Deferred:
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)


def selfSignedCert(directory: str) -> tuple[str, str]:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([
            x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False)
        .sign(key, hashes.SHA256())
    )
    keyPath, certPath = os.path.join(directory, "key.pem"), os.path.join(directory, "cert.pem")
    with open(keyPath, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    with open(certPath, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    return keyPath, certPath


class TLSEndToEnd(E2EMixin, TestCase):
    async def test_ssl_endpoint_serves_signed_bridge(self):
        directory = tempfile.mkdtemp()
        keyPath, certPath = selfSignedCert(directory)
        db = config.DBSettings("sqlite", "", 0, "", "", "t",
                               path=os.path.join(directory, "t.sqlite3"))
        service = self.startServer(
            f"ssl:0:interface=127.0.0.1:privateKey={keyPath}:certKey={certPath}", db,
            authConfig())
        with open(certPath, "rb") as f:
            trust = ssl.Certificate.loadPEM(f.read())
        options = ssl.optionsForClientTLS("localhost", trustRoot=trust)
        client = await self.connect(
            service, lambda port: endpoints.SSL4ClientEndpoint(reactor, "127.0.0.1", port, options))
        client.send(HELLO_320)
        self.assertTrue((await client.next("handshakeComplete"))["success"])
        client.send(analyze("# echo 안전하게", auth=bridgeAuth(HELLO_320)))
        self.assertEqual((await client.next("messageResponse"))["text"], "에코: 안전하게")
