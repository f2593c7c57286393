"""Device approval: pending devices get no replies, refused ones are closed, status changes apply live."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase, TestCase

from kkobot import config

from kkobot.admin import cli as admincli
from kkobot.db.pool import Database
from kkobot.bridge.devices import DeviceStore, applyDeviceStatus
from tests.support.authrig import DEVICE, NOW, MemoryDevices, Rig, errors, signedAuth
from tests.support import HELLO_320, ScratchMysql, analyze

KEY = ("kkobot", DEVICE)


class ApprovalOverTheWire(SynchronousTestCase):
    def rig(self, status: str | None, autoApprove: bool = False) -> Rig:
        statuses = {KEY: status} if status else {}
        rig = Rig(devices=MemoryDevices(autoApprove=autoApprove, statuses=statuses))
        self.addCleanup(rig.close)
        return rig

    def test_new_device_is_pending_logged_but_not_answered(self) -> None:
        rig = self.rig(None)
        conn = rig.connect(hello=HELLO_320)
        conn.received()
        conn.send(analyze("# echo 안녕하세요", auth=signedAuth()))
        events = conn.received()
        # The state is told once an event proved the connection, not at the handshake.
        (hello,) = [e["data"] for e in events if e["event"] == "handshakeComplete"]
        self.assertEqual(hello["success"], True)
        self.assertEqual(hello["approved"], False)
        self.assertIn(f"kkobot-admin devices approve kkobot {DEVICE}", hello["message"])
        self.assertEqual(conn.replies(events), [])
        self.assertEqual(errors(events), [])
        self.assertEqual([r.message for r in rig.chatlog.rows], ["# echo 안녕하세요"])
        self.assertEqual(rig.devices.statuses[KEY], "pending")

    def test_approval_reaches_the_open_connection(self) -> None:
        rig = self.rig("pending")
        conn = rig.connect(hello=HELLO_320)
        conn.send(analyze("# echo 1", auth=signedAuth()))
        conn.received()
        rig.devices.statuses[KEY] = "approved"
        applyDeviceStatus(rig.factory, "kkobot", DEVICE, "approved")
        (notice,) = conn.received()
        self.assertEqual(notice["event"], "handshakeComplete")
        self.assertTrue(notice["data"]["approved"])
        conn.send(analyze("# echo 2", auth=signedAuth(int(rig.clock.seconds() * 1000) + 1)))
        self.assertEqual(conn.replies(conn.received()), ["에코: 2"])

    def test_registry_listeners_hear_of_an_approval_when_it_happens(self) -> None:
        # What the cluster's presence and the outbound queue rely on to send the
        # messages waiting for a bot as soon as its device is approved.
        rig = self.rig("pending")
        heard: list[tuple[str, bool]] = []

        class Listener:
            def clientAdded(self, client) -> None:
                heard.append(("added", client.approved))

            def clientChanged(self, client) -> None:
                heard.append(("changed", client.approved))

            def clientRemoved(self, client) -> None:
                heard.append(("removed", client.approved))

        rig.factory.registry.listeners.append(Listener())
        conn = rig.connect(hello=HELLO_320)
        conn.send(analyze("# echo 1", auth=signedAuth()))
        rig.devices.statuses[KEY] = "approved"
        applyDeviceStatus(rig.factory, "kkobot", DEVICE, "approved")
        # A status the next signed event sees (no notice from the store) is heard too.
        rig.devices.statuses[KEY] = "pending"
        conn.send(analyze("# echo 2", auth=signedAuth(int(rig.clock.seconds() * 1000) + 1)))
        conn.send(analyze("# echo 3", auth=signedAuth(int(rig.clock.seconds() * 1000) + 2)))
        self.assertEqual(heard, [("added", False), ("changed", True), ("changed", False)])

    def test_auto_approve(self) -> None:
        rig = self.rig(None, autoApprove=True)
        conn = rig.connect(hello=HELLO_320)
        conn.received()
        conn.send(analyze("# echo 안녕하세요", auth=signedAuth()))
        events = conn.received()
        self.assertEqual(events[0]["event"], "handshakeComplete")
        self.assertTrue(events[0]["data"]["approved"])
        self.assertEqual(conn.replies(events), ["에코: 안녕하세요"])

    def test_denied_revoked_blocked_refused_and_closed_at_the_first_signed_event(self) -> None:
        for status in ("denied", "revoked", "blocked"):
            rig = self.rig(status)
            conn = rig.connect(hello=HELLO_320)
            conn.received()
            self.assertFalse(conn.closed)
            conn.send(analyze("# echo 안녕하세요", auth=signedAuth()))
            (answer,) = [e for e in conn.received() if e["event"] == "handshakeComplete"]
            self.assertFalse(answer["data"]["success"])
            self.assertIn(status, answer["data"]["message"])
            self.assertTrue(conn.closed)
            self.assertEqual(rig.chatlog.rows, [])

    def test_revoking_closes_the_live_connection(self) -> None:
        rig = self.rig("approved")
        conn = rig.verified()
        other = rig.verified(hello={**HELLO_320, "deviceID": "another-device"},
                             deviceUUID="another-device", deviceID="another-device")
        rig.devices.statuses[KEY] = "revoked"
        applyDeviceStatus(rig.factory, "kkobot", DEVICE, "revoked")
        (notice,) = conn.received()
        self.assertFalse(notice["data"]["success"])
        self.assertTrue(conn.closed)
        self.assertFalse(other.closed)

    def test_revoked_device_events_refused_before_the_close(self) -> None:
        # Between the database change and the refresh that closes the connection.
        rig = self.rig("approved")
        conn = rig.verified()
        rig.devices.statuses[KEY] = "revoked"
        conn.send(analyze("# echo 안녕하세요", auth=signedAuth(int(NOW * 1000) + 1)))
        events = conn.received()
        self.assertEqual(conn.replies(events), [])
        self.assertIn("revoked", errors(events, "AUTH_FAILED")[0]["message"])


class StoreTests:
    """DeviceStore against a real database; subclasses say which."""

    def makeDatabase(self) -> Database:
        raise NotImplementedError

    @defer.inlineCallbacks
    def setUp(self):
        self.db = self.makeDatabase()
        self.addCleanup(self.db.close)
        DeviceStore.addSchema(self.db)
        yield self.db.ensureSchema()

    @defer.inlineCallbacks
    def test_register_lookup_approve_refresh(self):
        from twisted.internet import reactor

        server = DeviceStore(self.db, reactor)
        changes = []
        server.onChange(lambda *change: changes.append(change))
        self.assertIsNone((yield server.lookup("kkobot", DEVICE)))
        status = yield server.register("kkobot", DEVICE, clientType="MessengerBotR",
                                       version="3.2.0", address="203.0.113.7")
        self.assertEqual(status, "pending")
        self.assertEqual(server.status("kkobot", DEVICE), "pending")
        # Seen again: still pending, not a second row.
        yield server.register("kkobot", DEVICE, version="3.2.1", address="203.0.113.8")
        (device,) = yield server.list()
        self.assertEqual((device.status, device.version, device.address),
                         ("pending", "3.2.1", "203.0.113.8"))
        # kkobot-admin, with its own connection pool, approves it.
        adminDb = Database(self.db.settings)
        self.addCleanup(adminDb.close)
        args = admincli.parser().parse_args(["devices", "approve", "kkobot", DEVICE])
        out = yield defer.ensureDeferred(admincli.run(args, adminDb, reactor))
        self.assertIn("approved", out)
        yield server.refresh()
        self.assertEqual(server.status("kkobot", DEVICE), "approved")
        self.assertEqual(changes[-1], ("kkobot", DEVICE, "approved"))
        args = admincli.parser().parse_args(["devices", "list", "--status", "approved"])
        listing = yield defer.ensureDeferred(admincli.run(args, adminDb, reactor))
        self.assertIn(DEVICE, listing)

    @defer.inlineCallbacks
    def test_auto_approve_and_unknown_device(self):
        from twisted.internet import reactor

        store = DeviceStore(self.db, reactor, autoApprove=True)
        self.assertEqual((yield store.register("kkobot", "d1")), "approved")
        args = admincli.parser().parse_args(["devices", "block", "kkobot", "nope"])
        with self.assertRaises(admincli.AdminError):
            yield defer.ensureDeferred(admincli.run(args, self.db, reactor))


class SqliteStoreTests(StoreTests, TestCase):
    def makeDatabase(self) -> Database:
        path = os.path.join(tempfile.mkdtemp(), "devices.sqlite3")
        return Database(config.DBSettings("sqlite", "", 0, "", "", "t", path=path))


class MysqlStoreTests(StoreTests, TestCase):
    def makeDatabase(self) -> Database:
        scratch = ScratchMysql()
        self.addCleanup(scratch.drop)
        return Database(scratch.settings())


class AdminCommandLine(SynchronousTestCase):
    def test_console_script_against_the_config_database(self) -> None:
        tmp = tempfile.mkdtemp()
        cfgDir = os.path.join(tmp, ".cfg")
        data = config.skeleton()
        data["DBs"]["kkobot_test"] = {"ENGINE": "sqlite", "PATH": os.path.join(tmp, "t.sqlite3")}
        config.init(cfgDir, data)
        bin = os.path.join(os.path.dirname(sys.executable), "kkobot-admin")

        def admin(*argv):
            return subprocess.run([bin, "--config", cfgDir, *argv], capture_output=True,
                                  text=True, timeout=60)

        listed = admin("devices", "list")
        self.assertEqual((listed.returncode, listed.stdout.strip()), (0, "no devices"))
        missing = admin("devices", "approve", "kkobot", DEVICE)
        self.assertEqual(missing.returncode, 1)
        self.assertIn("no device", missing.stderr)
        self.assertEqual(len(missing.stderr.strip().splitlines()), 1)
        noConfig = subprocess.run([bin, "--config", os.path.join(tmp, "none"), "devices", "list"],
                                  capture_output=True, text=True, timeout=60)
        self.assertEqual(noConfig.returncode, 1)
        self.assertIn("no config", noConfig.stderr)


class RefreshBeforeTheTablesExist(TestCase):
    @defer.inlineCallbacks
    def test_no_error_until_the_schema_is_ready_then_reads(self):
        from twisted.internet import reactor
        from twisted.logger import LogLevel, globalLogPublisher

        path = os.path.join(tempfile.mkdtemp(), "devices.sqlite3")
        db = Database(config.DBSettings("sqlite", "", 0, "", "", "t", path=path))
        self.addCleanup(db.close)
        DeviceStore.addSchema(db)
        store = DeviceStore(db, reactor)
        errors: list = []

        def observer(event: dict) -> None:
            if event.get("log_level") == LogLevel.error:
                errors.append(event)

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        # At startup the device loop may run before the chat log created the tables.
        yield store.refresh()
        self.assertEqual(errors, [])
        yield db.ensureSchema()
        yield store.register("kkobot", "d1")
        store.statuses.clear()
        yield store.refresh()
        self.assertEqual(store.status("kkobot", "d1"), "pending")
        self.assertEqual(errors, [])
