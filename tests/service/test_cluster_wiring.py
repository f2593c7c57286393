"""The cluster settings as the server reads them: --instance, KKOBOT_INSTANCE, cluster.*; kkobot-admin cluster."""

from __future__ import annotations

import argparse
import os
import socket

from twisted.internet import defer, reactor
from twisted.trial import unittest

from kkobot import config, tap
from kkobot.admin import cli
from kkobot.bridge.registry import ClientInfo, ClientRegistry
from kkobot.service import Settings, StartupError, resolve
from tests.cluster.rig import ClusterCase
from tests.support import tempDir


def configDir(testcase, **cluster) -> str:
    directory = os.path.join(tempDir(testcase), "cfg")
    data = config.skeleton()
    data["auth"] = {"required": False}
    if cluster:
        data["cluster"] = cluster
    config.init(directory, data)
    return directory


class InstanceNames(unittest.TestCase):
    def test_defaultIsHostNameAndPortAndNoRedis(self):
        resolved = resolve(Settings(port="1777", configDir=os.path.join(tempDir(self), "none"),
                                    logDir=None))
        self.assertFalse(resolved.cluster.enabled)
        self.assertEqual(resolved.cluster.instance, f"{socket.gethostname()}:1777")

    def test_commandLineWinsOverTheConfig(self):
        cfg = configDir(self, redis="redis://127.0.0.1:6379/0", instance="from-config")
        options = tap.Options()
        options.parseOptions(["--config", cfg, "--instance", "from-cli"])
        resolved = resolve(options.settings())
        self.assertTrue(resolved.cluster.enabled)
        self.assertEqual(resolved.cluster.instance, "from-cli")
        self.assertEqual(resolve(Settings(configDir=cfg, configGiven=True, logDir=None)).cluster.instance,
                         "from-config")

    def test_environment(self):
        self.assertEqual(Settings.fromEnvironment({"KKOBOT_INSTANCE": "env-1"}).instance, "env-1")
        os.environ["KKOBOT_INSTANCE"] = "env-2"
        self.addCleanup(os.environ.pop, "KKOBOT_INSTANCE")
        options = tap.Options()
        options.parseOptions([])
        self.assertEqual(options.settings().instance, "env-2")

    def test_aBadRedisUrlStopsTheStartWithItsFix(self):
        cfg = configDir(self, redis="http://127.0.0.1:6379")
        with self.assertRaises(StartupError) as caught:
            resolve(Settings(configDir=cfg, configGiven=True, logDir=None))
        self.assertIn("redis://", str(caught.exception))


class RegistryListeners(unittest.TestCase):
    def test_addedAndRemovedOnceEach(self):
        registry = ClientRegistry()
        seen = []
        registry.listeners.append(type("L", (), {
            "clientAdded": lambda self, c: seen.append(("added", c.connectionId)),
            "clientRemoved": lambda self, c: seen.append(("removed", c.connectionId)),
        })())
        client = ClientInfo(botName="b", version="3.2.0", clientType="MessengerBotR", deviceID="d",
                            address="127.0.0.1", connectedSince=0.0)
        registry.add(client)
        registry.remove(client)
        registry.remove(client)
        self.assertEqual(seen, [("added", client.connectionId), ("removed", client.connectionId)])


class AdminClusterStatus(ClusterCase):
    @defer.inlineCallbacks
    def test_statusListsTheInstancesAndTheirPhones(self):
        yield self.startNode("A")
        yield self.connect("A", "botA")
        cfg = configDir(self, redis=f"redis://{self.address.host}:{self.address.port}/0",
                        key_prefix=self.keys.prefix)
        args = argparse.Namespace(config=cfg, mode="test", area="cluster", action="status")
        text = yield defer.Deferred.fromCoroutine(cli.runCluster(args, reactor))
        self.assertIn(f"deployment {self.keys.prefix} on redis://", text)
        self.assertIn("A  alive", text)
        self.assertIn("    botA  dev-botA  v3.3.0", text)

    @defer.inlineCallbacks
    def test_oneProcessSaysSo(self):
        args = argparse.Namespace(config=configDir(self), mode="test", area="cluster", action="status")
        text = yield defer.Deferred.fromCoroutine(cli.runCluster(args, reactor))
        self.assertIn("one process", text)
