"""Redis goes away and comes back: every part answers locally meanwhile, then the instances rejoin."""

from __future__ import annotations

from twisted.internet import defer

from kkobot.bridge.auth import ReplayGuard
from kkobot.commands.cooldowns import Cooldown
from tests.cluster.rig import ClusterCase
from tests.cluster.test_shared_state import context
from tests.support.redisrig import PrivateRedis, eventually


class OutageTests(ClusterCase):
    @defer.inlineCallbacks
    def setUp(self):
        yield ClusterCase.setUp(self)
        self.server = PrivateRedis()
        self.addCleanup(self.server.destroy)
        self.server.start()

    @defer.inlineCallbacks
    def startPrivate(self, name: str):
        node = yield self.startNode(name, address=self.server.address)
        node.link.maxRetryDelay = node.readerLink.maxRetryDelay = 0.2
        return node

    @defer.inlineCallbacks
    def redisDown(self, *nodes):
        self.server.stop()
        yield eventually(lambda: all(n.link.state == "down" for n in nodes))

    @defer.inlineCallbacks
    def test_localOnlyThenRejoin(self):
        """Local phones keep getting messages; others wait here; all of it goes out once Redis is back."""
        a = yield self.startPrivate("A")
        b = yield self.startPrivate("B")
        yield self.connect("A", "botA")
        yield self.connect("B", "botB")
        yield self.redisDown(a, b)
        self.assertEqual(a.status()["mode"], "local-only")
        self.assertEqual(a.status()["redis"]["state"], "down")

        here = yield a.router.send("botA", "방", "여기")
        self.assertEqual(here.outcome, "delivered")
        self.assertEqual(self.phones["A"].texts(), ["여기"])
        held = yield a.router.send("botB", "방", "저기")
        self.assertEqual((held.outcome, held.state), ("waiting", "queued"))
        self.assertEqual(a.status()["held_messages"], 1)
        status = yield a.router.status(held.id)
        self.assertEqual(status.state, "queued")
        views = yield a.presence.deployment()
        self.assertEqual([v.name for v in views], ["A"])  # only what it knows itself

        # A phone connecting meanwhile is noted, and written once Redis is back.
        yield self.connect("A", "botC")

        self.server.start()
        yield eventually(lambda: a.link.up and b.link.up)
        received = yield self.phones["B"].whenReceived(1)
        self.assertEqual(received[0].text, "저기")
        self.assertEqual(a.status()["mode"], "cluster")
        self.assertEqual(a.status()["held_messages"], 0)

        @defer.inlineCallbacks
        def registered():
            views = yield b.presence.deployment()
            byName = {v.name: sorted(c["bot_name"] for c in v.connections) for v in views}
            return byName == {"A": ["botA", "botC"], "B": ["botB"]}

        yield eventually(registered)
        # The inbox groups were lost with Redis's data and are back.
        after = yield a.router.send("botB", "방", "다시")
        self.assertEqual(after.instance, "B")
        yield self.phones["B"].whenReceived(2)

    @defer.inlineCallbacks
    def test_heldPastDeadlineIsUndelivered(self):
        reports = []
        a = yield self.startPrivate("A")
        a.router.onUndelivered = lambda message, reason: reports.append(reason)
        yield self.redisDown(a)
        yield a.router.send("botX", "방", "못감", waitSeconds=30)
        yield self.tick("A", seconds=31)
        self.assertEqual(len(reports), 1)
        self.assertIn("Redis was unreachable", reports[0])
        self.assertEqual(a.status()["held_messages"], 0)

    @defer.inlineCallbacks
    def test_heldMessageDeliveredWhenBotConnectsHere(self):
        a = yield self.startPrivate("A")
        yield self.redisDown(a)
        result = yield a.router.send("botLate", "방", "늦게")
        yield self.connect("A", "botLate")
        self.assertEqual(self.phones["A"].texts(), ["늦게"])
        status = yield a.router.status(result.id)
        self.assertEqual(status.state, "delivered")

    @defer.inlineCallbacks
    def test_sharedStateFallsBackToLocal(self):
        a = yield self.startPrivate("A")
        b = yield self.startPrivate("B")
        cooldowns = a.cooldownStore()
        replay = a.replayCheck(ReplayGuard(self.clock, 300), 300)
        bans = a.addressBans(maxFailures=2, failureWindow=60, banSeconds=60)
        self.assertIsNone((yield cooldowns.acquire("echo", Cooldown(user=10), context())))
        yield self.tick()  # both see each other alive
        yield self.redisDown(a, b)
        # The cooldown started through Redis is still known here.
        refused = yield cooldowns.acquire("echo", Cooldown(user=10), context())
        self.assertIsNotNone(refused)
        self.assertIsNone((yield cooldowns.acquire("dice", Cooldown(user=10), context())))
        self.assertTrue((yield replay.firstUse("aa" * 32, 1, self.clock.seconds())))
        self.assertFalse((yield replay.firstUse("aa" * 32, 2, self.clock.seconds())))
        self.assertFalse((yield bans.failed("192.0.2.1")))
        self.assertTrue((yield bans.failed("192.0.2.1")))
        self.assertIsNotNone(bans.refusal("192.0.2.1"))
        # Slots: the first name among the instances alive at the last beat fires.
        self.assertTrue((yield a.slots.claim("job", 1.0)))
        self.assertFalse((yield b.slots.claim("job", 1.0)))
