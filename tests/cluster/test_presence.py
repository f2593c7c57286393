"""Presence on the real Redis: who holds which phones, the deployment view, dead instances vanish."""

from __future__ import annotations

from twisted.internet import defer

from tests.cluster.rig import ClusterCase


class PresenceTests(ClusterCase):
    @defer.inlineCallbacks
    def test_deploymentShowsEveryInstanceAndItsPhones(self):
        a = yield self.startNode("A")
        yield self.startNode("B")
        yield self.connect("A", "bot1")
        yield self.connect("B", "bot2")
        yield self.connect("B", "bot3")
        views = yield a.presence.deployment()
        self.assertEqual(views[0].name, "A")
        self.assertTrue(views[0].local)
        byName = {v.name: v for v in views}
        self.assertEqual(sorted(byName), ["A", "B"])
        self.assertEqual([c["bot_name"] for c in byName["A"].connections], ["bot1"])
        self.assertEqual(sorted(c["bot_name"] for c in byName["B"].connections), ["bot2", "bot3"])
        self.assertTrue(byName["B"].alive)
        self.assertAlmostEqual(byName["B"].heartbeat, self.clock.seconds(), delta=1)
        self.assertEqual(byName["B"].info["pid"], str(__import__("os").getpid()))
        yield self.disconnect("B", "bot2")
        views = yield a.presence.deployment()
        b = [v for v in views if v.name == "B"][0]
        self.assertEqual([c["bot_name"] for c in b.connections], ["bot3"])

    @defer.inlineCallbacks
    def test_killedInstanceVanishesAfterTimeout(self):
        """No beat for instance_timeout seconds: its phones leave every view, its keys go."""
        a = yield self.startNode("A", heartbeatInterval=1.0, instanceTimeout=5.0)
        yield self.startNode("B")
        yield self.connect("B", "bot1")
        yield self.kill("B")
        for _ in range(4):
            yield self.tick("A")
        views = yield a.presence.deployment()
        self.assertIn("B", [v.name for v in views if v.alive])  # 4 s: still within the timeout
        yield self.tick("A", seconds=1.5)
        views = yield a.presence.deployment()
        self.assertEqual([v.name for v in views], ["A"])
        left = yield self.admin.execute("EXISTS", self.keys.instance("B"), self.keys.conns("B"),
                                        self.keys.bots("B"), self.keys.inbox("B"))
        self.assertEqual(left, 0)

    @defer.inlineCallbacks
    def test_sweptInstanceRegistersAgain(self):
        """An instance taken for dead (a long pause) writes its presence again at its next beat."""
        a = yield self.startNode("A")
        b = yield self.startNode("B")
        yield self.connect("B", "bot1")
        b._loop.stop()
        self.clock.advance(10)  # B misses its beats
        yield a.tick()
        views = yield a.presence.deployment()
        self.assertEqual([v.name for v in views], ["A"])
        yield b.tick()
        views = yield a.presence.deployment()
        b = [v for v in views if v.name == "B"]
        self.assertEqual([c["bot_name"] for c in b[0].connections], ["bot1"])

    @defer.inlineCallbacks
    def test_leavingDeregisters(self):
        a = yield self.startNode("A")
        yield self.startNode("B")
        yield self.connect("B", "bot1")
        yield self.stopNode("B")
        views = yield a.presence.deployment()
        self.assertEqual([v.name for v in views], ["A"])

    @defer.inlineCallbacks
    def test_liveInstancesFromHeartbeat(self):
        a = yield self.startNode("B")
        yield self.startNode("A")
        yield self.tick("B")
        self.assertEqual(a.presence.liveInstances(), ["A", "B"])
