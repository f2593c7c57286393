"""cluster.* settings: the Redis URL, the instance name, timings; one process when unset."""

from __future__ import annotations

import socket

from twisted.internet.task import Clock
from twisted.trial import unittest

from kkobot import config
from kkobot.cluster.node import ClusterNode
from kkobot.cluster.settings import ClusterConfigError, ClusterSettings, RedisAddress


class AddressTests(unittest.SynchronousTestCase):
    def test_parse(self):
        a = RedisAddress.parse("redis://127.0.0.1:6380/3")
        self.assertEqual((a.host, a.port, a.db, a.password, a.tls), ("127.0.0.1", 6380, 3, None, False))
        b = RedisAddress.parse("rediss://kk:p%40ss@redis.example:6390")
        self.assertEqual((b.username, b.password, b.tls, b.db), ("kk", "p@ss", True, 0))
        self.assertEqual(RedisAddress.parse("redis://[::1]").display(), "redis://[::1]:6379/0")

    def test_passwordNeverShown(self):
        a = RedisAddress.parse("redis://:hunter2@127.0.0.1/0")
        for text in (a.display(), repr(a), str(a)):
            self.assertNotIn("hunter2", text)
        self.assertEqual(a.display(), "redis://:****@127.0.0.1:6379/0")

    def test_configShowMasksThePassword(self):
        shown = config.masked({"cluster": {"redis": "redis://kk:hunter2@127.0.0.1:6379/0"}})
        self.assertEqual(shown["cluster"]["redis"], f"redis://kk:{config.MASK}@127.0.0.1:6379/0")
        plain = config.masked({"cluster": {"redis": "redis://127.0.0.1:6379/0"}})
        self.assertEqual(plain["cluster"]["redis"], "redis://127.0.0.1:6379/0")

    def test_badUrlsSayWhatToDo(self):
        for url, words in [
            ("http://127.0.0.1", "redis://"),
            ("127.0.0.1:6379", "redis://"),
            ("redis://", "no host"),
            ("redis://127.0.0.1/cache", "number"),
            ("redis://127.0.0.1:99999", "not a URL"),
        ]:
            with self.assertRaises(ClusterConfigError) as e:
                RedisAddress.parse(url)
            self.assertIn(words, str(e.exception))


class SettingsTests(unittest.SynchronousTestCase):
    def test_noConfigIsOneProcess(self):
        s = ClusterSettings.fromConfig(None, "1490", "test")
        self.assertFalse(s.enabled)
        self.assertEqual(s.instance, f"{socket.gethostname()}:1490")
        self.assertEqual(s.keyPrefix, "kkobot:test")
        self.assertEqual(s.outboundWait, 60.0)

    def test_fromConfig(self):
        cfg = {"cluster": {"redis": "redis://127.0.0.1:6379/0", "outbound_wait_seconds": 90,
                           "key_prefix": "kk"}}
        s = ClusterSettings.fromConfig(cfg, "tcp:1491:interface=0.0.0.0", "prod")
        self.assertTrue(s.enabled)
        self.assertEqual(s.instance, f"{socket.gethostname()}:1491")
        self.assertEqual((s.keyPrefix, s.outboundWait), ("kk", 90.0))
        cfg["cluster"]["instance"] = "phone-gw-1"
        self.assertEqual(ClusterSettings.fromConfig(cfg, "1490", "prod").instance, "phone-gw-1")
        # --instance wins over the config
        self.assertEqual(ClusterSettings.fromConfig(cfg, "1490", "prod", "gw-2").instance, "gw-2")

    def test_badValues(self):
        with self.assertRaises(ClusterConfigError):
            ClusterSettings.fromConfig(None, "1490", "test", instance="has space")
        cfg = {"cluster": {"heartbeat_interval": 2, "instance_timeout": 3}}
        with self.assertRaises(ClusterConfigError) as e:
            ClusterSettings.fromConfig(cfg, "1490", "test")
        self.assertIn("at least twice", str(e.exception))
        with self.assertRaises(config.ConfigError):
            config.validate({"cluster": {"redis": 6379}})
        with self.assertRaises(config.ConfigError):
            config.validate({"cluster": {"outbound_wait_seconds": "60"}})


class OneProcessTests(unittest.SynchronousTestCase):
    """Without cluster.redis the same objects work without Redis."""

    def test_singleNode(self):
        clock = Clock()
        sent = []
        settings = ClusterSettings.fromConfig(None, "1490", "test")
        node = ClusterNode(settings, lambda m: sent.append(m) or m.botName == "bot1", clock=clock)
        self.assertIsNone(node.link)
        self.assertEqual(node.status()["mode"], "single")
        result = self.successResultOf(node.router.send("bot1", "방", "하나"))
        self.assertEqual(result.outcome, "delivered")
        waiting = self.successResultOf(node.router.send("bot2", "방", "둘", waitSeconds=5))
        self.assertEqual(waiting.outcome, "waiting")
        self.assertTrue(self.successResultOf(node.slots.claim("job", 1.0)))
        views = self.successResultOf(node.presence.deployment())
        self.assertEqual([v.name for v in views], [settings.instance])
        clock.advance(6)
        self.successResultOf(node.router.pump())
        status = self.successResultOf(node.router.status(waiting.id))
        self.assertEqual(status.state, "undelivered")
        self.assertIn("not connected before the deadline", status.reason)

