"""Cooldowns, the replay guard, auth-failure bans and schedule slots shared through the real Redis."""

from __future__ import annotations

import random
from types import SimpleNamespace

from twisted.internet import defer

from kkobot.bridge.auth import ReplayGuard
from kkobot.cluster.cooldowns import LocalCooldownStore
from kkobot.commands.cooldowns import Cooldown
from tests.cluster.rig import ClusterCase


def context(user: str = "u1", room: str = "방", channelId: str | None = "100") -> SimpleNamespace:
    return SimpleNamespace(userHash=user, sender=user, room=room, channelId=channelId)


class CooldownTests(ClusterCase):
    @defer.inlineCallbacks
    def test_setThroughAHoldsOnB(self):
        a = yield self.startNode("A")
        b = yield self.startNode("B")
        onA, onB = a.cooldownStore(), b.cooldownStore()
        cooldown = Cooldown(user=30)
        self.assertIsNone((yield onA.acquire("echo", cooldown, context())))
        refused = yield onB.acquire("echo", cooldown, context())
        self.assertEqual((refused.secondsLeft, refused.notify), (30.0, True))
        self.assertIn("30초", refused.reply)
        self.clock.advance(10)
        again = yield onA.acquire("echo", cooldown, context())
        self.assertEqual((again.secondsLeft, again.notify), (20.0, False))  # told once only
        other = yield onB.acquire("echo", cooldown, context(user="u2"))
        self.assertIsNone(other)  # per user
        self.clock.advance(20)
        self.assertIsNone((yield onB.acquire("echo", cooldown, context())))

    @defer.inlineCallbacks
    def test_sameAnswersAsTheInProcessCooldowns(self):
        """A random run of calls gets the same refusals from Redis as from kkobot.commands.cooldowns."""
        a = yield self.startNode("A")
        shared, reference = a.cooldownStore(), LocalCooldownStore(self.clock)
        rng = random.Random(1490)
        declared = [Cooldown(user=5), Cooldown(room=3), Cooldown(overall=2), Cooldown(user=4, room=7, overall=1)]
        for step in range(300):
            name = rng.choice(["echo", "dice"])
            cooldown = rng.choice(declared)
            ctx = context(user=rng.choice(["u1", "u2", "u3"]), room=rng.choice(["방", "다른방"]),
                          channelId=rng.choice([None, "100", "200"]))
            got = yield shared.acquire(name, cooldown, ctx)
            expected = yield reference.acquire(name, cooldown, ctx)
            self.assertEqual(got, expected, f"step {step}: {name} {cooldown} {ctx}")
            self.clock.advance(rng.choice([0, 0.25, 0.5, 1, 3]))

    @defer.inlineCallbacks
    def test_concurrentCallsOnTwoInstancesOneGoesAhead(self):
        a = yield self.startNode("A")
        b = yield self.startNode("B")
        stores = [a.cooldownStore(), b.cooldownStore()] * 5
        answers = yield defer.gatherResults(
            [s.acquire("dice", Cooldown(overall=60), context()) for s in stores]
        )
        self.assertEqual(sum(1 for r in answers if r is None), 1)
        self.assertEqual(sum(1 for r in answers if r is not None and r.notify), 1)


class ReplayTests(ClusterCase):
    @defer.inlineCallbacks
    def test_signatureReplayedToAnotherInstanceIsRefused(self):
        a = yield self.startNode("A")
        b = yield self.startNode("B")
        now = self.clock.seconds()
        onA = a.replayCheck(ReplayGuard(self.clock, 300), 300)
        onB = b.replayCheck(ReplayGuard(self.clock, 300), 300)
        sig = "ab" * 32
        self.assertTrue((yield onA.firstUse(sig, 1, now)))
        self.assertTrue((yield onA.firstUse(sig, 1, now)))  # same connection: normal
        self.assertFalse((yield onB.firstUse(sig, 1, now)))  # same id, other instance
        self.assertFalse((yield onA.firstUse(sig, 2, now)))  # other connection here
        self.assertTrue((yield onB.firstUse("cd" * 32, 1, now)))
        ttl = yield self.admin.execute("PTTL", self.keys.signature(sig))
        self.assertTrue(299_000 < ttl <= 300_000, ttl)

    @defer.inlineCallbacks
    def test_restartedInstanceDoesNotOwnOldSignatures(self):
        """Connection ids start again at 1 after a restart; the old run's signatures stay foreign."""
        yield self.startNode("A")
        old = self.nodes["A"].replayCheck(ReplayGuard(self.clock, 300), 300)
        now = self.clock.seconds()
        self.assertTrue((yield old.firstUse("ef" * 32, 1, now)))
        yield self.stopNode("A")
        del self.nodes["A"]
        again = yield self.startNode("A")
        fresh = again.replayCheck(ReplayGuard(self.clock, 300), 300)
        self.assertFalse((yield fresh.firstUse("ef" * 32, 1, now)))


class BanTests(ClusterCase):
    @defer.inlineCallbacks
    def test_failuresOnSeveralInstancesBanEverywhere(self):
        a = yield self.startNode("A")
        b = yield self.startNode("B")
        onA = a.addressBans(maxFailures=6, failureWindow=60, banSeconds=300)
        onB = b.addressBans(maxFailures=6, failureWindow=60, banSeconds=300)
        results = []
        for i in range(5):
            results.append((yield (onA if i % 2 else onB).failed("203.0.113.9")))
        self.assertEqual(results, [False] * 5)
        self.assertIsNone(onA.refusal("203.0.113.9"))
        self.assertTrue((yield onA.failed("203.0.113.9")))  # the sixth, wherever it happens
        self.assertIn("refused for 300 more s", onA.refusal("203.0.113.9"))
        self.assertIsNone(onB.refusal("203.0.113.9"))  # B learns it at its next beat
        yield self.tick("B")
        self.assertIn("too many auth failures from 203.0.113.9", onB.refusal("203.0.113.9"))
        self.assertIsNone(onB.refusal("203.0.113.10"))
        self.clock.advance(300)
        self.assertIsNone(onA.refusal("203.0.113.9"))
        self.assertIsNone(onB.refusal("203.0.113.9"))

    @defer.inlineCallbacks
    def test_failuresOutsideTheWindowDoNotCount(self):
        a = yield self.startNode("A")
        bans = a.addressBans(maxFailures=3, failureWindow=10, banSeconds=60)
        for _ in range(2):
            yield bans.failed("198.51.100.1")
        self.clock.advance(10)
        self.assertFalse((yield bans.failed("198.51.100.1")))
        self.assertFalse((yield bans.failed("198.51.100.1")))
        self.assertTrue((yield bans.failed("198.51.100.1")))


class SlotTests(ClusterCase):
    @defer.inlineCallbacks
    def test_slotFiresOncePerDeployment(self):
        nodes = []
        for name in "ABC":
            nodes.append((yield self.startNode(name)))
        slot = 1_800_000_000.0
        answers = yield defer.gatherResults([n.slots.claim("bot1|방|morning", slot) for n in nodes] * 3)
        self.assertEqual(sum(answers), 3)  # one instance, asked three times (a retry is fine)
        winners = {n.instance for n, won in zip(nodes * 3, answers) if won}
        self.assertEqual(len(winners), 1)
        following = yield defer.gatherResults([n.slots.claim("bot1|방|morning", slot + 86400) for n in nodes])
        self.assertEqual(sum(following), 1)
        other = yield defer.gatherResults([n.slots.claim("bot1|방|evening", slot) for n in nodes])
        self.assertEqual(sum(other), 1)
