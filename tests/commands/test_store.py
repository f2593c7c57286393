"""context.store: the same answers from the in-memory store, SQLite and MariaDB."""

from __future__ import annotations

import os

from twisted.internet import defer, task
from twisted.trial.unittest import TestCase

from kkobot.commands.store import MemoryStorage, PluginStore, SqlStorage, StoreError
from kkobot.config import DBSettings
from kkobot.db.pool import Database
from tests.support import ScratchMysql, tempDir

START = 1_767_225_600.0


class StoreContract:
    """Behaviour every IPluginStorage must show; subclasses provide C{makeStorage}."""

    def makeStorage(self):
        raise NotImplementedError

    @defer.inlineCallbacks
    def setUp(self):
        self.clock = task.Clock()
        self.clock.advance(START)
        self.storage = yield self.makeStorage()

    def store(self, plugin="attendance", room="ch:1", user="u1"):
        return PluginStore(self.storage, plugin, room, user, self.clock)

    @defer.inlineCallbacks
    def test_values_come_back_as_json(self):
        s = self.store()
        self.assertIsNone((yield s.get("missing")))
        self.assertEqual((yield s.get("missing", default=7)), 7)
        value = {"이름": "홍길동", "점수": [1, 2.5, True, None], "emoji": "😀"}
        yield s.set("record", value)
        self.assertEqual((yield s.get("record")), value)
        yield s.set("record", ("a", "b"))  # a tuple is a JSON array
        self.assertEqual((yield s.get("record")), ["a", "b"])
        self.assertTrue((yield s.delete("record")))
        self.assertFalse((yield s.delete("record")))
        self.assertEqual((yield s.get("record", "gone")), "gone")

    @defer.inlineCallbacks
    def test_scopes_and_plugins_do_not_see_each_other(self):
        here, there = self.store(room="ch:1"), self.store(room="ch:2")
        other, otherPlugin = self.store(user="u2"), self.store(plugin="quiz")
        yield here.set("k", "room1")
        yield there.set("k", "room2")
        yield here.set("k", "u1-in-room1", scope="user")
        yield other.set("k", "u2-in-room1", scope="user")
        yield here.set("k", "everywhere", scope="global")
        self.assertEqual((yield here.get("k")), "room1")
        self.assertEqual((yield there.get("k")), "room2")
        self.assertEqual((yield here.get("k", scope="user")), "u1-in-room1")
        self.assertEqual((yield other.get("k", scope="user")), "u2-in-room1")
        self.assertIsNone((yield self.store(room="ch:2").get("k", scope="user")))
        self.assertEqual((yield there.get("k", scope="global")), "everywhere")
        self.assertIsNone((yield otherPlugin.get("k")))
        self.assertIsNone((yield otherPlugin.get("k", scope="global")))
        self.assertEqual((yield here.everyUser("k")), {"u1": "u1-in-room1", "u2": "u2-in-room1"})

    @defer.inlineCallbacks
    def test_incr_counts_from_zero_and_refuses_non_integers(self):
        s = self.store()
        self.assertEqual((yield s.incr("count")), 1)
        self.assertEqual((yield s.incr("count", by=5)), 6)
        self.assertEqual((yield s.incr("count", by=-10)), -4)
        self.assertEqual((yield s.get("count")), -4)
        yield s.set("name", "철수")
        yield self.assertFailure(s.incr("name"), StoreError)
        self.assertEqual((yield s.get("name")), "철수")
        yield s.set("half", 1.5)
        yield self.assertFailure(s.incr("half"), StoreError)
        self.assertEqual((yield s.get("half")), 1.5)

    @defer.inlineCallbacks
    def test_ttl_expires_values_and_incr_starts_over_after_expiry(self):
        s = self.store()
        yield s.set("today", {"n": 1}, ttl=60)
        self.clock.advance(59)
        self.assertEqual((yield s.get("today")), {"n": 1})
        self.clock.advance(1)
        self.assertIsNone((yield s.get("today")))
        yield s.set("streak", 5, ttl=10)
        self.assertEqual((yield s.incr("streak")), 6)  # the expiry is kept
        self.clock.advance(10)
        self.assertEqual((yield s.incr("streak")), 1)
        self.clock.advance(3600)
        self.assertEqual((yield s.get("streak")), 1)  # the fresh value never expires
        self.assertEqual((yield self.storage.purgeExpired(self.clock.seconds())), 1)
        self.assertEqual([i.key for i in (yield self.storage.items(plugin="attendance"))], ["streak"])

    @defer.inlineCallbacks
    def test_bad_keys_values_and_scopes_are_refused_before_anything_is_stored(self):
        s = self.store()
        yield self.assertFailure(s.set("k", {1, 2}), StoreError)
        yield self.assertFailure(s.set("k", float("nan")), StoreError)
        yield self.assertFailure(s.set("k", "가" * 30_000), StoreError)
        yield self.assertFailure(s.set("", 1), StoreError)
        yield self.assertFailure(s.set("k" * 192, 1), StoreError)
        yield self.assertFailure(s.get("k", scope="channel"), StoreError)
        yield self.assertFailure(s.set("k", 1, ttl=0), StoreError)
        yield self.assertFailure(s.incr("k", by=1.5), StoreError)
        yield self.assertFailure(PluginStore(self.storage, "p", None, None, self.clock).get("k"), StoreError)
        self.assertEqual((yield self.storage.items()), [])
        longest = "k" * 191
        yield s.set(longest, "가" * 20_000)
        self.assertEqual(len((yield s.get(longest))), 20_000)

    @defer.inlineCallbacks
    def test_admin_listing_and_clearing(self):
        yield self.store().set("a", 1)
        yield self.store().set("b", 2, scope="user")
        yield self.store(room="ch:2").set("a", 3)
        yield self.store(plugin="quiz").set("a", 4, scope="global")
        items = yield self.storage.items(plugin="attendance")
        self.assertEqual([(i.scope, i.roomId, i.userId, i.key, i.value) for i in items], [
            ("room", "ch:1", "", "a", 1), ("room", "ch:2", "", "a", 3), ("user", "ch:1", "u1", "b", 2)])
        self.assertEqual((yield self.storage.clear("attendance", roomId="ch:1")), 2)
        self.assertEqual([i.value for i in (yield self.storage.items(plugin="attendance"))], [3])
        self.assertEqual((yield self.storage.clear("attendance")), 1)
        self.assertEqual([i.plugin for i in (yield self.storage.items())], ["quiz"])


class MemoryStoreTests(StoreContract, TestCase):
    def makeStorage(self):
        return MemoryStorage()


class SqliteStoreTests(StoreContract, TestCase):
    def makeStorage(self):
        path = os.path.join(tempDir(self), "store.sqlite3")
        self.database = Database(DBSettings("sqlite", "", 0, "", "", "x", path))
        self.addCleanup(self.database.close)
        SqlStorage.addSchema(self.database)
        return SqlStorage(self.database)

    @defer.inlineCallbacks
    def test_values_survive_a_new_connection_pool(self):
        yield self.store().set("k", {"v": "유지"})
        again = Database(self.database.settings)
        self.addCleanup(again.close)
        found = yield PluginStore(SqlStorage(again), "attendance", "ch:1", "u1", self.clock).get("k")
        self.assertEqual(found, {"v": "유지"})


class MysqlStoreTests(StoreContract, TestCase):
    """On the chat log's own (transactional) pool, as kkobot-admin uses it."""

    ownPool = False

    def makeStorage(self):
        scratch = ScratchMysql()
        self.addCleanup(scratch.drop)
        self.scratch = scratch
        self.database = Database(scratch.settings())
        self.addCleanup(self.database.close)
        SqlStorage.addSchema(self.database)
        storage = SqlStorage(self.database, ownPool=self.ownPool)
        self.addCleanup(storage.close)
        return storage

    @defer.inlineCallbacks
    def test_concurrent_increments_from_many_pools_are_all_counted(self):
        # Five pools of three connections (five servers sharing one database), 400
        # increments in flight at once: the upsert must never lose one.
        pools = [Database(self.scratch.settings()) for _ in range(5)]
        for pool in pools:
            self.addCleanup(pool.close)
            SqlStorage.addSchema(pool)
        storages = [SqlStorage(p, ownPool=self.ownPool) for p in pools]
        for storage in storages:
            self.addCleanup(storage.close)
        stores = [PluginStore(s, "attendance", "ch:1", "u1", self.clock) for s in storages]
        results = yield defer.gatherResults(
            [stores[i % 5].incr("count", by=1) for i in range(400)], consumeErrors=True)
        self.assertEqual(sorted(results), list(range(1, 401)))
        self.assertEqual((yield self.store().get("count")), 400)
        rows = self.scratch.query("SELECT value FROM kb_plugin_store WHERE item_key = 'count'")
        self.assertEqual(rows, [("400",)])


    @defer.inlineCallbacks
    def test_connections_mysql_closed_are_replaced_for_reads_and_writes(self):
        s = self.store()
        yield s.set("k", "before")
        for (connection,) in self.scratch.query(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
                self.scratch.name):
            self.scratch.execute(None, f"KILL {int(connection)}")
        self.assertEqual((yield s.get("k")), "before")
        yield s.set("k", "after")
        self.assertEqual((yield s.get("k")), "after")
        import pymysql

        # adbapi logs the rollback it could not do on the dead connection.
        from twisted.enterprise.adbapi import ConnectionLost

        self.flushLoggedErrors(pymysql.err.OperationalError, pymysql.err.InterfaceError, ConnectionLost)


class MysqlOneStatementStoreTests(MysqlStoreTests):
    """On the store's own autocommit pool, as the server uses it: every call one statement."""

    ownPool = True

    @defer.inlineCallbacks
    def test_an_incr_after_idleness_gets_a_live_connection(self):
        from kkobot.commands import autocommit

        s = self.store()
        self.assertEqual((yield s.incr("n")), 1)
        for (connection,) in self.scratch.query(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE DB = %s AND ID <> CONNECTION_ID()",
                self.scratch.name):
            self.scratch.execute(None, f"KILL {int(connection)}")
        self.patch(autocommit, "IDLE_PING_SECONDS", 0.0)  # every connection counts as idle
        self.assertEqual((yield s.incr("n")), 2)

    def test_the_store_has_its_own_autocommit_pool(self):
        self.assertIsNotNone(self.storage.pool)
        self.assertIsNot(self.storage.pool, self.database.pool)
