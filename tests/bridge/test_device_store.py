"""DeviceStore: lock conflicts retried, long ids, the local file, both table shapes, many new phones at once."""

from __future__ import annotations

import json
import os
import stat
import uuid

import pymysql
from twisted.internet import defer, reactor
from twisted.trial.unittest import SynchronousTestCase, TestCase

from kkobot.admin import cli as admincli
from kkobot.config import DBSettings
from kkobot.db.pool import Database
from kkobot.db.errors import isLockConflict
from kkobot.bridge.devices import DeviceStore, applyDeviceStatus
from tests.support import mariadb
from tests.support.authrig import DEVICE, Rig, signedPing
from tests.support.mariadb import privateMariaDB
from tests.support.phones import authConfig, connectPhone, portOf, startService, stopService, waitForRows
from tests.support import HELLO_320, ScratchMysql, captureLogs, logText, tempDir
from tests.chatlog.test_operator_tables import operatorDatabase

LONG_ID = "android-" + "7" * 112  # 120 characters: a handshake may name 128, the columns hold 100


def sqliteSettings(testcase: TestCase) -> DBSettings:
    return DBSettings("sqlite", "", 0, "", "", "t", path=os.path.join(tempDir(testcase), "d.sqlite3"))


async def openStore(testcase: TestCase, settings: DBSettings, **kw) -> DeviceStore:
    db = Database(settings)
    testcase.addCleanup(db.close)
    DeviceStore.addSchema(db)
    await db.ensureSchema()
    return DeviceStore(db, reactor, **kw)


class Classification(SynchronousTestCase):
    def test_deadlock_and_lock_wait_are_retried_nothing_else(self) -> None:
        self.assertTrue(isLockConflict(pymysql.err.OperationalError(1213, "Deadlock found")))
        self.assertTrue(isLockConflict(pymysql.err.OperationalError(1205, "Lock wait timeout")))
        for code in (1062, 1364, 2003, 2013, 1146):
            self.assertFalse(isLockConflict(pymysql.err.OperationalError(code, "x")), code)
        self.assertFalse(isLockConflict(ValueError("no code")))


class DeadlocksOnSqlite(TestCase):
    """A real SQLite table; the first attempts of each registration meet a deadlock."""

    async def storeWithDeadlocks(self, failures: int, **kw) -> tuple[DeviceStore, list]:
        store = await openStore(self, sqliteSettings(self), **kw)
        real = store.database.runInteraction
        attempts: list[str] = []

        def runInteraction(func, *args, **kwargs):
            attempts.append(func.__name__)
            if func.__name__ == "registerDevice" and len(attempts) <= failures:
                return defer.fail(pymysql.err.OperationalError(1213, "Deadlock found when trying to get lock"))
            return real(func, *args, **kwargs)

        store.database.runInteraction = runInteraction  # type: ignore[method-assign]
        return store, attempts

    async def test_a_deadlock_is_retried_and_the_device_recorded(self) -> None:
        events = captureLogs(self)
        store, attempts = await self.storeWithDeadlocks(2, autoApprove=True)
        self.assertEqual(await store.register("kkobot", "d1"), "approved")
        self.assertEqual(attempts, ["registerDevice"] * 3)
        self.assertEqual([(d.device, d.status) for d in await store.list()], [("d1", "approved")])
        self.assertIn("met error 1213 (OperationalError); trying again (1/6)", logText(events))
        self.assertNotIn("could not record", logText(events))

    async def test_past_the_retries_the_device_waits_and_is_recorded_by_the_next_refresh(self) -> None:
        store, attempts = await self.storeWithDeadlocks(7, autoApprove=False)
        self.assertEqual(await store.register("kkobot", "d1"), "pending")
        self.assertEqual(store.status("kkobot", "d1"), "pending")
        self.assertEqual(store.report()["waiting"], 1)
        self.assertEqual(await store.list(), [])
        await store.refresh()
        self.assertEqual([(d.device, d.status) for d in await store.list()], [("d1", "pending")])
        self.assertEqual(store.report()["waiting"], 0)


class LockWaitOnMariaDB(TestCase):
    """A real lock wait timeout (1205): another connection holds the table's gap locks."""

    timeout = 120

    async def test_the_registration_waits_out_the_lock(self) -> None:
        server = privateMariaDB()
        name = f"kkobot_l_{uuid.uuid4().hex[:10]}"
        admin = server.connect()
        with admin.cursor() as cur:
            cur.execute(f"CREATE DATABASE `{name}`")
            cur.execute("SET GLOBAL innodb_lock_wait_timeout = 1")
        self.addCleanup(admin.close)
        self.addCleanup(lambda: admin.cursor().execute("SET GLOBAL innodb_lock_wait_timeout = 50"))
        settings = DBSettings("mysql", "127.0.0.1", server.port, "root", "", name)
        store = await openStore(self, settings, autoApprove=True)
        holder = server.connect(name)
        self.addCleanup(holder.close)
        holder.autocommit(False)
        with holder.cursor() as cur:
            cur.execute("SELECT * FROM kb_bot_devices FOR UPDATE")  # locks every gap
        events = captureLogs(self)
        releaser = reactor.callLater(2.5, holder.commit)
        self.addCleanup(lambda: releaser.cancel() if releaser.active() else None)
        self.assertEqual(await store.register("kkobot", "waited"), "approved")
        self.assertFalse(releaser.active(), "the registration finished before the lock was released")
        self.assertEqual(server.query(name, "SELECT device_id, status FROM kb_bot_devices"),
                         [("waited", "approved")])
        text = logText(events)
        self.assertIn("met error 1205 (OperationalError); trying again", text)
        self.assertNotIn("could not record", text)


class LongDeviceIds(TestCase):
    async def check(self, settings: DBSettings) -> None:
        store = await openStore(self, settings)
        changes: list = []
        store.onChange(lambda *change: changes.append(change))
        self.assertEqual(await store.register("kkobot", LONG_ID, version="3.2.0"), "pending")
        (device,) = await store.list()
        self.assertEqual(device.device, LONG_ID[:100])
        # kkobot-admin with the id as the phone sends it.
        admin = Database(settings)
        self.addCleanup(admin.close)
        args = admincli.parser().parse_args(["devices", "approve", "kkobot", LONG_ID])
        self.assertIn("approved", await admincli.run(args, admin, reactor))
        await store.refresh()
        self.assertEqual(store.status("kkobot", LONG_ID), "approved")
        self.assertEqual(changes[-1][2], "approved")
        # The change reaches an open connection of that phone.
        rig = Rig(devices=store)
        self.addCleanup(rig.close)
        conn = rig.connect(hello={**HELLO_320, "deviceID": LONG_ID})
        conn.send(signedPing(deviceUUID=LONG_ID, deviceID=LONG_ID))
        answers = [e["data"] for e in conn.received() if e["event"] == "handshakeComplete"]
        self.assertTrue(answers[-1]["approved"], answers)
        args = admincli.parser().parse_args(["devices", "revoke", "kkobot", LONG_ID])
        await admincli.run(args, admin, reactor)
        await store.refresh()
        self.assertEqual(store.status("kkobot", LONG_ID), "revoked")
        bot, device, status = changes[-1]
        applyDeviceStatus(rig.factory, bot, device, status, keyOf=store.key)
        self.assertTrue(conn.closed)

    async def test_sqlite(self) -> None:
        await self.check(sqliteSettings(self))

    async def test_mariadb_kkobot_table(self) -> None:
        scratch = ScratchMysql()
        self.addCleanup(scratch.drop)
        await self.check(scratch.settings())

    async def test_mariadb_operator_table(self) -> None:
        await self.check(operatorDatabase(self).settings())


class LocalFile(TestCase):
    async def test_statuses_survive_a_restart_with_the_database_gone(self) -> None:
        path = os.path.join(tempDir(self), "devices", "test.json")
        settings = sqliteSettings(self)
        store = await openStore(self, settings, statePath=path)
        store.startService()
        await store.register("kkobot", "a")
        await store.register("kkobot", LONG_ID)
        admin = Database(settings)
        self.addCleanup(admin.close)
        for device, action in (("a", "approve"), (LONG_ID, "block")):
            args = admincli.parser().parse_args(["devices", action, "kkobot", device])
            await admincli.run(args, admin, reactor)
        await store.refresh()
        await store.stopService()
        self.assertEqual(stat.S_IMODE(os.stat(path).st_mode), 0o600)
        with open(path, encoding="utf-8") as f:
            state = json.load(f)
        self.assertEqual(sorted(map(tuple, state["devices"])),
                         [("kkobot", "a", "approved"), ("kkobot", LONG_ID[:100], "blocked")])
        # A server started while the database is unreachable knows them.
        gone = DBSettings("mysql", "127.0.0.1", 9, "root", "", "nowhere")
        offline = DeviceStore(Database(gone), reactor, statePath=path)
        self.addCleanup(offline.database.close)
        offline.startService()
        self.addCleanup(offline.stopService)
        self.assertEqual(offline.status("kkobot", "a"), "approved")
        self.assertEqual(offline.status("kkobot", LONG_ID), "blocked")
        self.assertIsNone(offline.status("kkobot", "never-seen"))

    async def test_a_damaged_file_is_ignored(self) -> None:
        path = os.path.join(tempDir(self), "test.json")
        with open(path, "w") as f:
            f.write('{"version": 1, "keys": ')
        events = captureLogs(self)
        store = await openStore(self, sqliteSettings(self), statePath=path)
        store.startService()
        self.addCleanup(store.stopService)
        self.assertIsNone(store.status("kkobot", "a"))
        self.assertIn("ignoring the device file", logText(events))


class OperatorShapeAdmin(TestCase):
    async def test_list_approve_block_on_the_earlier_servers_table(self) -> None:
        scratch = operatorDatabase(self)
        store = await openStore(self, scratch.settings())
        await store.register("kkobot", DEVICE, clientType="MessengerBotR", version="3.2.0-beta.20261125.long",
                             address="2001:db8::1", deviceInfo="samsung SM-S911N")
        # One row per device: the same phone under another bot is the same device.
        await store.register("other-bot", DEVICE)
        self.assertEqual(scratch.query(
            "SELECT bot_name, device_id, status, ip_address, client_version, approved_at "
            "FROM kb_bot_devices"), [("kkobot", DEVICE, "pending", "2001:db8::1", "3.2.0-beta.20261125.long"[:20], None)])
        admin = Database(scratch.settings())
        self.addCleanup(admin.close)
        args = admincli.parser().parse_args(["devices", "approve", "kkobot", DEVICE])
        await admincli.run(args, admin, reactor)
        (row,) = scratch.query("SELECT status, approved_at IS NOT NULL FROM kb_bot_devices")
        self.assertEqual(row, ("approved", 1))
        args = admincli.parser().parse_args(["devices", "list", "--status", "approved"])
        listing = await admincli.run(args, admin, reactor)
        self.assertIn(DEVICE, listing)
        self.assertIn("2001:db8::1", listing)
        await store.refresh()
        self.assertEqual(store.status("other-bot", DEVICE), "approved")
        args = admincli.parser().parse_args(["devices", "block", "kkobot", DEVICE])
        await admincli.run(args, admin, reactor)
        self.assertEqual(scratch.query("SELECT status FROM kb_bot_devices"), [("blocked",)])


class TwentyNewPhonesAtOnce(TestCase):
    timeout = 120

    async def test_every_one_recorded_and_answered(self) -> None:
        scratch = operatorDatabase(self)
        events = captureLogs(self)
        service = startService(scratch.settings(), tempDir(self), authConfig(autoApprove=True))
        self.addCleanup(stopService, service)
        port = await portOf(service)
        devices = [f"burst-{i:02d}-{uuid.uuid4().hex[:6]}" for i in range(20)]
        phones = await defer.gatherResults(
            [defer.ensureDeferred(connectPhone(self, port, device)) for device in devices])
        for phone in phones:
            phone.send(phone.hello())
            phone.say("# echo 처음")  # the first signed event registers the device
        await defer.gatherResults([
            phone.waitFor(lambda e: e["event"] == "messageResponse") for phone in phones])
        await waitForRows(lambda: scratch.query("SELECT COUNT(*) FROM kb_bot_devices")[0][0] == 20,
                          "20 devices recorded")
        self.assertEqual(sorted(d for (d,) in scratch.query("SELECT device_id FROM kb_bot_devices")),
                         sorted(devices))
        self.assertNotIn("could not record", logText(events))
        self.assertEqual({t["kind"]: t["waiting"] for t in service.chatlog.tables()}["device"], 0)


def tearDownModule() -> None:
    mariadb.shutdown()
