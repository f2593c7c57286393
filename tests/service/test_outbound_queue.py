"""One process, no Redis: a message for a bot connected nowhere waits for it, survives a restart, or expires."""

from __future__ import annotations

import json
import os

from twisted.internet import defer, reactor, task
from twisted.internet.task import Clock
from twisted.trial import unittest

from kkobot.bridge.outbound import Outbound
from kkobot.bridge.registry import ClientInfo, ClientRegistry
from kkobot.cluster.message import RoutedMessage
from kkobot.cluster.node import ClusterNode
from kkobot.cluster.settings import ClusterSettings
from tests.support import tempDir
from tests.support.adminhelpers import RunningServer


def singleSettings() -> ClusterSettings:
    return ClusterSettings.fromConfig(None, 1490, "test", "solo")


@defer.inlineCallbacks
def eventually(check, timeout: float = 10.0):
    waited = 0.0
    while not check():
        if waited > timeout:
            raise AssertionError("condition not reached in time")
        yield task.deferLater(reactor, 0.01, lambda: None)
        waited += 0.01


class QueueThroughTheAdminApi(unittest.TestCase):
    timeout = 60

    @defer.inlineCallbacks
    def setUp(self):
        self.server = RunningServer(self)
        yield self.server.start()

    @defer.inlineCallbacks
    def state(self, messageId: str):
        code, _, body = yield self.server.request(b"GET", f"/api/messages/{messageId}")
        return code, json.loads(body)

    @defer.inlineCallbacks
    def test_aMessageForAnAbsentBotIsDeliveredWhenItConnects(self):
        code, _, body = yield self.server.request(
            b"POST", "/api/messages", body={"bot": "kkobot", "room": "공지방", "text": "나중에 공지"})
        answer = json.loads(body)
        self.assertEqual((code, answer["state"], answer["outcome"]), (202, "queued", "waiting"))
        code, state = yield self.state(answer["id"])
        self.assertEqual((code, state["state"], state["bot"], state["room"]), (200, "queued", "kkobot", "공지방"))
        client = yield self.server.connectClient()
        event = yield client.waitForEvent("messageResponse", text="나중에 공지")
        self.assertEqual(event["data"]["room"], "공지방")
        # The handshake's answer comes first: the bridge learns it is connected, then hears.
        kinds = [e["event"] for e in client.received]
        self.assertLess(kinds.index("handshakeComplete"), kinds.index("messageResponse"))
        code, state = yield self.state(answer["id"])
        self.assertEqual(state["state"], "delivered")
        rows = yield self.server.rows("is_our_bot_response = 1")
        self.assertEqual(rows, [("공지방", "", "나중에 공지", 1, "kkobot")])

    @defer.inlineCallbacks
    def test_aMessageNobodyTakesExpiresWithItsReason(self):
        self.server.service.cluster.router.waitSeconds = 0.2
        _, _, body = yield self.server.request(
            b"POST", "/api/messages", body={"bot": "kkobot", "room": "공지방", "text": "못 받을 공지"})
        messageId = json.loads(body)["id"]
        states = []

        @defer.inlineCallbacks
        def expired():
            code, state = yield self.state(messageId)
            states.append(state)
            return state["state"] == "expired"

        while not (yield expired()):
            yield task.deferLater(reactor, 0.05, lambda: None)
        self.assertEqual(states[-1]["reason"], "bot kkobot was not connected before the deadline")
        client = yield self.server.connectClient()
        yield self.server.rows()
        self.assertNotIn("messageResponse", [e["event"] for e in client.received])

    @defer.inlineCallbacks
    def test_aCallersIdIsSentOnce(self):
        client = yield self.server.connectClient()
        body = {"bot": "kkobot", "room": "공지방", "text": "한 번만", "id": "notice-42"}
        code1, _, first = yield self.server.request(b"POST", "/api/messages", body=body)
        code2, _, second = yield self.server.request(b"POST", "/api/messages", body=body)
        self.assertEqual((code1, json.loads(first)["outcome"]), (202, "delivered"))
        self.assertEqual((code2, json.loads(second)["outcome"], json.loads(second)["state"]),
                         (202, "duplicate", "delivered"))
        yield client.waitForEvent("messageResponse", text="한 번만")
        rows = yield self.server.rows("is_our_bot_response = 1")
        self.assertEqual(len(rows), 1)

    @defer.inlineCallbacks
    def test_unknownIdsAndBadPaths(self):
        code, body = yield self.state("nothing-here")
        self.assertEqual(code, 404)
        code, _, _ = yield self.server.request(b"GET", "/api/messages")
        self.assertEqual(code, 404)
        code, _, _ = yield self.server.request(b"POST", "/api/messages", body={
            "bot": "kkobot", "room": "r", "text": "t", "id": "has space"})
        self.assertEqual(code, 400)

    @defer.inlineCallbacks
    def test_aFullQueueRefusesWith503(self):
        self.server.service.cluster.router.outbox.limit = 1
        code, _, _ = yield self.server.request(
            b"POST", "/api/messages", body={"bot": "kkobot", "room": "r", "text": "하나"})
        self.assertEqual(code, 202)
        code, _, body = yield self.server.request(
            b"POST", "/api/messages", body={"bot": "kkobot", "room": "r", "text": "둘"})
        answer = json.loads(body)
        self.assertEqual((code, answer["state"]), (503, "expired"))
        self.assertIn("queue is full", answer["reason"])


class QueueAcrossARestart(unittest.TestCase):
    """The node's queue file under var/: what waits is waiting again after a restart."""

    def setUp(self):
        self.dir = os.path.join(tempDir(self), "outbox")
        self.clock = Clock()
        self.clock.advance(1_800_000_000)
        self.delivered: list[RoutedMessage] = []
        self.online: set[str] = set()

    def deliver(self, message: RoutedMessage) -> bool:
        if message.botName not in self.online:
            return False
        self.delivered.append(message)
        return True

    def node(self) -> ClusterNode:
        node = ClusterNode(singleSettings(), self.deliver, clock=self.clock, reactor=self.clock,
                           outboxDir=self.dir)
        node.startService()
        return node

    def test_waitingMessagesSurviveARestartAndGoOutOnConnect(self):
        first = self.node()
        results = [self.successResultOf(first.router.send("kkobot", "방", f"공지 {i}")) for i in range(3)]
        self.assertEqual({r.state for r in results}, {"queued"})
        self.successResultOf(first.stopService())
        second = self.node()
        self.assertEqual(self.successResultOf(second.router.status(results[0].id)).state, "queued")
        self.online.add("kkobot")
        second.router.botArrived("kkobot")
        self.assertEqual([m.text for m in self.delivered], ["공지 0", "공지 1", "공지 2"])
        self.successResultOf(second.stopService())
        # Delivered ones are not delivered again by a third run.
        self.delivered.clear()
        third = self.node()
        third.router.botArrived("kkobot")
        self.assertEqual(self.delivered, [])
        self.assertEqual(self.successResultOf(third.router.status(results[1].id)).state, "delivered")
        self.successResultOf(third.stopService())

    def test_aMessageThatExpiredWhileStoppedIsReportedExpired(self):
        first = self.node()
        result = self.successResultOf(first.router.send("kkobot", "방", "오래된 공지"))
        self.successResultOf(first.stopService())
        self.clock.advance(120)
        second = self.node()
        status = self.successResultOf(second.router.status(result.id))
        self.assertEqual(status.state, "undelivered")
        self.assertIn("expired while this instance was stopped", status.reason)
        self.online.add("kkobot")
        second.router.botArrived("kkobot")
        self.assertEqual(self.delivered, [])
        self.successResultOf(second.stopService())

    def test_statesAreReadableForAnHour(self):
        node = self.node()
        self.online.add("kkobot")
        old = self.successResultOf(node.router.send("kkobot", "방", "옛 공지"))
        self.clock.advance(3000)
        self.successResultOf(node.router.send("kkobot", "방", "새 공지"))
        self.assertEqual(self.successResultOf(node.router.status(old.id)).state, "delivered")
        self.clock.advance(700)
        self.successResultOf(node.router.send("kkobot", "방", "더 새 공지"))
        self.assertIsNone(self.successResultOf(node.router.status(old.id)))
        self.successResultOf(node.stopService())

    def test_aTornLastLineIsSkipped(self):
        first = self.node()
        self.successResultOf(first.router.send("kkobot", "방", "온전한 공지"))
        self.successResultOf(first.stopService())
        [name] = os.listdir(self.dir)
        with open(os.path.join(self.dir, name), "ab") as f:
            f.write(b'{"op":"hold","mess')
        second = self.node()
        self.online.add("kkobot")
        second.router.botArrived("kkobot")
        self.assertEqual([m.text for m in self.delivered], ["온전한 공지"])
        self.successResultOf(second.stopService())


class OutboundSendKeepsItsContract(unittest.TestCase):
    """Outbound.send (schedules, context.send(), database announcements) with the queue behind it."""

    def test_sendQueuesForAnAbsentBotAndDeliversOnConnect(self):
        clock = Clock()
        registry = ClientRegistry()
        rows = []
        chatlog = type("Log", (), {"log": lambda self, row: rows.append(row)})()
        outbound = Outbound(registry, chatlog, clock)
        node = ClusterNode(singleSettings(), outbound.deliver, clock=clock, reactor=clock)
        outbound.router = node.router
        self.assertTrue(outbound.send("kkobot", "방", "기다리는 공지"))
        self.assertEqual(rows, [])
        lines = []
        client = ClientInfo(botName="kkobot", version="3.2.0", clientType="MessengerBotR",
                            deviceID="d1", address="127.0.0.1", connectedSince=clock.seconds(),
                            send=lines.append)
        registry.add(client)
        node.clientAdded(client)
        self.assertEqual([json.loads(line)["data"]["text"] for line in lines], ["기다리는 공지"])
        self.assertEqual([r.message for r in rows], ["기다리는 공지"])
