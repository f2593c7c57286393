"""The server's parts on the cluster's shared state: bans through the connection limits, schedules, cooldowns."""

from __future__ import annotations

from types import SimpleNamespace

from twisted.internet import defer

from kkobot.cluster.node import ClusterNode
from kkobot.commands.cooldowns import Cooldown
from kkobot.commands.dispatch import Dispatcher
from kkobot.commands.permissions import Permissions
from kkobot.commands.reply import Reply
from kkobot.commands.scheduler import Scheduler, every
from kkobot.service.sharedlimits import SharedBanLimits
from kkobot.service.coordination import shareState
from tests.cluster.rig import ClusterCase
from tests.support import HELLO_320, analyze, line
from tests.support.authrig import Rig, errors, signedAuth, signedPing
from tests.support.redisrig import eventually


class SharedBansThroughTheLimits(ClusterCase):
    @defer.inlineCallbacks
    def test_failuresOnTwoInstancesBanTheAddressOnBoth(self):
        limits = {}
        closed = []
        for name in "AB":
            node = yield self.startNode(name)
            limits[name] = SharedBanLimits(self.clock, node.addressBans(4, 60, 300), maxFailures=4,
                                           failureWindow=60, banSeconds=300)
            limits[name].closeAddress = closed.append
        answers = []
        for name in "ABAB":
            answers.append(limits[name].failed("203.0.113.9"))
        # Each answer takes a round trip: the connection is closed when the ban is known.
        self.assertEqual(answers, [False] * 4)
        yield eventually(lambda: closed == ["203.0.113.9"])
        yield self.tick()
        for name in "AB":
            self.assertIn("too many auth failures", limits[name].refusal("203.0.113.9", 0, 0))
        self.assertIsNone(limits["A"].refusal("203.0.113.10", 0, 0))


class Commands:
    """What the scheduler reads from the command registry: one job."""

    def __init__(self, job) -> None:
        self.job = job
        self.listeners = []

    def jobs(self):
        return [self.job]


class Sent:
    def __init__(self) -> None:
        self.texts = []

    def send(self, bot, room, text, channelId=None, **kw) -> bool:
        self.texts.append(text)
        return True


class SchedulesClaimTheirSlots(ClusterCase):
    @defer.inlineCallbacks
    def test_anEveryJobFiresOncePerSlotAcrossInstances(self):
        job = every(10, bot="kkobot", room="알림방")(lambda context: f"틱 {int(context.scheduledFor)}")
        sent = Sent()
        schedulers = []
        for i, name in enumerate("ABC"):
            node = yield self.startNode(name)
            scheduler = Scheduler(Commands(job), sent, self.clock)
            scheduler.slots = node.slots
            # Started at different moments: the slots still line up (a fixed origin).
            self.clock.advance(3 * i)
            scheduler.startService()
            self.addCleanup(scheduler.stopService)
            schedulers.append(scheduler)
        for _ in range(3):
            self.clock.advance(10)
        yield eventually(lambda: len(sent.texts) >= 3)
        # Replies come in order on each link: after a PING's, every claim has been answered.
        for node in self.nodes.values():
            yield node.link.execute("PING")
        self.assertEqual(len(sent.texts), len(set(sent.texts)), sent.texts)
        slots = sorted(int(t.split()[1]) for t in sent.texts)
        self.assertTrue(all(s % 10 == 0 for s in slots), slots)
        self.assertEqual(slots, list(range(slots[0], slots[0] + 10 * len(slots), 10)))


class CooldownsWaitForTheSharedStore(ClusterCase):
    @defer.inlineCallbacks
    def test_aCallOnBIsRefusedAfterACallOnA(self):
        command = SimpleNamespace(name="쿨", cooldown=Cooldown(room=600), options=(), rooms=None,
                                  permission=None, timeout=None, run=lambda context: [Reply("쿨 실행")])
        dispatchers = {}
        for name in "AB":
            node = yield self.startNode(name)
            registry = SimpleNamespace(pluginOf=lambda c: None)
            dispatchers[name] = Dispatcher(registry, Permissions(None), self.clock)
            dispatchers[name].cooldownStore = node.cooldownStore()

        def context():
            return SimpleNamespace(channelId="room-1", room="방", userHash="u1", sender="철수",
                                   match=None, args=[], extra={}, isAdmin=False)

        first = yield defer.maybeDeferred(dispatchers["A"].refusal, command, context())
        second = yield defer.maybeDeferred(dispatchers["B"].refusal, command, context())
        third = yield defer.maybeDeferred(dispatchers["B"].refusal, command, context())
        self.assertIsNone(first)
        self.assertTrue(second.startswith("잠시 후 다시 사용해 주세요."), second)
        self.assertEqual(third, "")  # refused silently once announced


class ReplayCheckPausesTheConnection(ClusterCase):
    """A signed event waits for the deployment's replay check; later lines wait behind it."""

    @defer.inlineCallbacks
    def rig(self, name: str):
        rig = Rig()
        node = ClusterNode(self.settings(name), lambda message: False, clock=rig.clock)
        node.startService()
        self.addCleanup(node.stopService)
        self.addCleanup(rig.close)
        yield node.link.whenUp()
        shareState(node, rig.auth, SimpleNamespace(), SimpleNamespace())
        return rig

    @defer.inlineCallbacks
    def test_aLineReplayedToAnotherInstanceIsRefused(self):
        first = yield self.rig("A")
        second = yield self.rig("B")
        conn = first.connect(hello=HELLO_320)
        stamp = int(first.clock.seconds() * 1000)
        event = analyze("# echo 하나", auth=signedAuth(stampMillis=stamp + 7))
        # The ping verifies the connection; the echo behind it waits for the ping's check.
        conn.proto.dataReceived(line(signedPing(stampMillis=stamp + 3)) + line(event))
        seen = conn.received()
        self.assertTrue(conn.proto.paused)
        self.assertEqual(conn.replies(seen), [])
        yield eventually(lambda: seen.extend(conn.received()) or conn.replies(seen) == ["에코: 하나"])
        self.assertFalse(conn.proto.paused)
        thief = second.connect(address="198.51.100.4", hello=HELLO_320)
        thief.send(event)
        refused = []
        yield eventually(lambda: refused.extend(errors(thief.received(), "AUTH_FAILED")) or refused)
        self.assertIn("replayed", refused[0]["message"])
        self.assertEqual(second.chatlog.rows, [])
