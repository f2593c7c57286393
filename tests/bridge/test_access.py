"""Command permissions, connection limits, timeouts, and when auth is on."""

from __future__ import annotations

import os
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from kkobot import config
from kkobot.bridge.auth import HmacAuthenticator, OpenAuthenticator
from kkobot.commands.permissions import ADMIN_ONLY_REPLY, DISABLED_REPLY, Permissions
from kkobot.service import KkobotService, Settings, StartupError, resolve
from tests.support.authrig import Rig, errors, signedAuth
from tests.support import HELLO_320, analyze

ROOM = "18398338829933568"


class Shutdown:
    name = "shutdown"
    aliases = ()
    description = "관리자 전용"
    usage = "# shutdown"
    adminOnly = True

    def run(self, context):
        return "종료합니다"


class OneCommand:
    """Only what the router asks of a CommandRegistry."""

    def __init__(self, *commands):
        self.byName = {c.name: c for c in commands}

    def lookup(self, name):
        return self.byName.get(name)


class PermissionTests(SynchronousTestCase):
    def setUp(self) -> None:
        permissions = Permissions({
            "rooms": {ROOM: {"admins": ["admin-hash"], "disabled_commands": ["echo"]}},
        })

        class Echo:
            name, aliases, adminOnly = "echo", (), False

            def run(self, context):
                return f"에코: {context.args}"

        self.rig = Rig(commands=OneCommand(Shutdown(), Echo()), permissions=permissions)
        self.addCleanup(self.rig.close)
        self.conn = self.rig.connect(hello=HELLO_320)
        self.conn.received()
        self.stamp = int(self.rig.clock.seconds() * 1000)

    def say(self, text, userHash, sender="홍길동", channelId=ROOM):
        self.stamp += 1
        self.conn.send(analyze(text, userHash=userHash, sender=sender, channelId=channelId,
                               auth=signedAuth(self.stamp)))
        return self.conn.replies(self.conn.received())

    def test_admin_only_command_by_non_admin_gets_korean_refusal(self) -> None:
        self.assertEqual(self.say("# shutdown", "someone"), [ADMIN_ONLY_REPLY])

    def test_spoofed_display_name_does_not_make_an_admin(self) -> None:
        self.assertEqual(self.say("# shutdown", "someone", sender="관리자"), [ADMIN_ONLY_REPLY])

    def test_admin_by_user_hash_runs_it(self) -> None:
        self.assertEqual(self.say("# shutdown", "admin-hash"), ["종료합니다"])

    def test_admin_of_one_room_is_not_admin_elsewhere(self) -> None:
        self.assertEqual(self.say("# shutdown", "admin-hash", channelId="999"),
                         [ADMIN_ONLY_REPLY])

    def test_disabled_command_in_room(self) -> None:
        self.assertEqual(self.say("# echo 안녕", "someone"), [DISABLED_REPLY])
        self.assertEqual(self.say("# echo 안녕", "someone", channelId="999"), ["에코: 안녕"])


class ConnectionLimitTests(SynchronousTestCase):
    def test_per_address_default_allows_a_shared_router(self) -> None:
        rig = Rig()
        self.addCleanup(rig.close)
        phones = [rig.connect(address="192.0.2.1") for _ in range(100)]
        self.assertFalse(any(p.closed for p in phones))
        extra = rig.connect(address="192.0.2.1")
        (refusal,) = errors(extra.received(), "TOO_MANY_CONNECTIONS")
        self.assertIn("192.0.2.1", refusal["message"])
        self.assertTrue(extra.closed)
        self.assertFalse(rig.connect(address="192.0.2.2").closed)
        # A phone hangs up: its place is free again.
        phones[0].proto.connectionLost(None)
        self.assertFalse(rig.connect(address="192.0.2.1").closed)

    def test_total_limit(self) -> None:
        rig = Rig(limits={"maxConnections": 3})
        self.addCleanup(rig.close)
        for i in range(3):
            self.assertFalse(rig.connect(address=f"192.0.2.{i}").closed)
        extra = rig.connect(address="192.0.2.99")
        (refusal,) = errors(extra.received(), "TOO_MANY_CONNECTIONS")
        self.assertIn("full", refusal["message"])

    def test_handshake_and_idle_timeouts_answered_with_error(self) -> None:
        rig = Rig()
        self.addCleanup(rig.close)
        silent = rig.connect()
        rig.clock.advance(31)
        self.assertEqual(len(errors(silent.received(), "HANDSHAKE_TIMEOUT")), 1)
        self.assertTrue(silent.closed)
        idle = rig.verified()
        rig.clock.advance(91)
        self.assertEqual(len(errors(idle.received(), "IDLE_TIMEOUT")), 1)
        self.assertTrue(idle.closed)

    def test_line_too_long(self) -> None:
        rig = Rig()
        self.addCleanup(rig.close)
        conn = rig.connect(hello=HELLO_320)
        conn.proto.dataReceived(b"{" + b" " * (rig.factory.maxLineBytes + 10))
        self.assertEqual(len(errors(conn.received(), "LINE_TOO_LONG")), 1)
        self.assertTrue(conn.closed)


def makeConfig(mode: int = 0o600, **auth) -> str:
    directory = os.path.join(tempfile.mkdtemp(), ".cfg")
    data = config.skeleton()
    data["auth"].update(auth)
    data["bots"] = {"kkobot": {"secret": "s" * 32, "salt": "t"}}
    config.init(directory, data)
    os.chmod(os.path.join(directory, config.KEY_FILE), mode)
    return directory


class WhenAuthIsOn(SynchronousTestCase):
    def test_world_readable_key_refuses_to_start(self) -> None:
        directory = makeConfig(mode=0o644)
        with self.assertRaises(StartupError) as caught:
            resolve(Settings(configDir=directory, logDir=None))
        message = str(caught.exception)
        self.assertIn("chmod 600", message)
        self.assertNotIn("s" * 32, message)

    def test_auth_is_on_whenever_a_config_exists(self) -> None:
        self.assertTrue(resolve(Settings(configDir=makeConfig(), logDir=None)).authRequired)

    def test_cannot_be_switched_off_in_prod(self) -> None:
        directory = makeConfig(required=False)
        # Without auth, only loopback is allowed (the skeleton listens on 0.0.0.0).
        loopback = "tcp:1490:interface=127.0.0.1"
        self.assertFalse(resolve(Settings(configDir=directory, logDir=None,
                                          port=loopback)).authRequired)
        prod = resolve(Settings(configDir=directory, mode="prod", logDir=None))
        self.assertTrue(prod.authRequired)
        self.assertTrue(any("ignored in prod" in n for n in prod.notes))

    def test_service_uses_hmac_with_config_and_open_without(self) -> None:
        withConfig = KkobotService(resolve(Settings(configDir=makeConfig(), logDir=None,
                                                    varDir=tempfile.mkdtemp())))
        self.addCleanup(withConfig.database.close)
        self.assertIsInstance(withConfig.factory.authenticator, HmacAuthenticator)
        embedded = resolve(Settings(configDir=os.path.join(tempfile.mkdtemp(), "none"),
                                    logDir=None, varDir=tempfile.mkdtemp()))
        self.assertFalse(embedded.authRequired)
        self.assertIn("127.0.0.1", embedded.endpoint)
        self.assertTrue(any("no authentication" in n for n in embedded.notes))
        service = KkobotService(embedded)
        self.addCleanup(service.database.close)
        self.assertIsInstance(service.factory.authenticator, OpenAuthenticator)

    def test_secrets_stay_out_of_repr(self) -> None:
        resolved = resolve(Settings(configDir=makeConfig(), logDir=None))
        self.assertNotIn("s" * 32, repr(resolved))
        self.assertNotIn("s" * 32, repr(config.db_settings(resolved.cfg, "test")))
