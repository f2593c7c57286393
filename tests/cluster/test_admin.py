"""The deployment as kkobot-admin reads it: straight from Redis, no instance of its own."""

from __future__ import annotations

from twisted.internet import defer, reactor

from kkobot.cluster.admin import fetchDeployment, formatDeployment
from kkobot.cluster.link import RedisUnavailable
from kkobot.cluster.settings import ClusterSettings, RedisAddress
from tests.cluster.rig import ClusterCase
from tests.support.redisrig import _freePort


class AdminViewTests(ClusterCase):
    @defer.inlineCallbacks
    def test_everyInstanceAndPhone(self):
        yield self.startNode("A")
        yield self.startNode("B")
        yield self.connect("A", "botA")
        yield self.connect("B", "botB")
        settings = self.settings("admin")
        views = yield defer.Deferred.fromCoroutine(fetchDeployment(settings, reactor))
        self.assertEqual(sorted(v.name for v in views), ["A", "B"])
        text = formatDeployment(views, now=self.clock.seconds() + 2)
        self.assertIn("A  alive  last heartbeat 2.0 s ago", text)
        self.assertIn("    botB  dev-botB  v3.3.0  127.0.0.1", text)

    @defer.inlineCallbacks
    def test_unreachableRedisSaysSo(self):
        settings = ClusterSettings(redis=RedisAddress("127.0.0.1", _freePort()), instance="admin",
                                   keyPrefix=self.keys.prefix)
        d = defer.Deferred.fromCoroutine(fetchDeployment(settings, reactor, wait=0.5))
        failure = yield self.assertFailure(d, RedisUnavailable)
        self.assertIn("did not answer within 0.5 s", str(failure))
