"""Several instances with the cluster's slot claims (real Redis) in front of the database's: each slot once."""

from __future__ import annotations

from datetime import timedelta

from twisted.internet import defer

from kkobot.announcements.claims import ClusterFirstClaims
from tests.announcements.rig import Rig
from tests.cluster.rig import ClusterCase
from tests.support.redisrig import deletePrefix


class ClusterClaims(ClusterCase):
    timeout = 120

    @defer.inlineCallbacks
    def test_each_slot_once_across_instances_and_after_redis_forgets(self):
        rig = Rig(self, "mysql", clock=self.clock)
        start = rig.now()
        nodes = []
        for name in "ABC":
            nodes.append((yield self.startNode(name)))
        runners = [rig.runner(rig.database(), slots=node.slots) for node in nodes]
        self.assertTrue(all(isinstance(r.claims, ClusterFirstClaims) for r in runners))
        for minute in (1, 2):
            at = (start + timedelta(minutes=minute)).time().replace(second=0)
            yield defer.ensureDeferred(rig.add(at=(at,), text=f"공지 {minute}"))
        self.clock.advance(180)
        yield defer.gatherResults([r.poll() for r in runners])
        for r in runners:
            yield defer.ensureDeferred(rig.settle(r))
        self.assertEqual(sorted(m["text"] for m in rig.bridge.messages()), ["공지 1", "공지 2"])
        self.assertEqual(len(rig.logs()), 2)

        # Redis forgets every claim (flushed, or a new deployment): the claim rows still decide.
        yield deletePrefix(self.admin, self.keys)
        fresh = [rig.runner(rig.database(), slots=node.slots) for node in nodes]
        self.clock.advance(5)
        yield defer.gatherResults([r.poll() for r in fresh])
        for r in fresh:
            yield defer.ensureDeferred(rig.settle(r))
        self.assertEqual(len(rig.bridge.messages()), 2)
        self.assertEqual(len(rig.logs()), 2)

    @defer.inlineCallbacks
    def test_slots_wired_in_after_construction(self):
        rig = Rig(self, "sqlite", clock=self.clock)
        node = yield self.startNode("A")
        runner = rig.runner()
        self.assertNotIsInstance(runner.claims, ClusterFirstClaims)
        runner.slots = node.slots
        self.assertIsInstance(runner.claims, ClusterFirstClaims)
        self.assertIs(runner.slots, node.slots)
