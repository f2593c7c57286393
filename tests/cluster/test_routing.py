"""Outbound routing over Redis Streams between in-process instances on the real Redis."""

from __future__ import annotations

from twisted.internet import defer

from kkobot.cluster import lua
from kkobot.cluster.keys import GROUP
from kkobot.cluster.presence import Presence
from kkobot.bridge.registry import ClientInfo
from tests.cluster.rig import ClusterCase
from tests.support.redisrig import eventually


class RoutingTests(ClusterCase):
    @defer.inlineCallbacks
    def test_sentOnAReachesPhoneOnC(self):
        a = yield self.startNode("A")
        yield self.startNode("B")
        c = yield self.startNode("C")
        yield self.connect("C", "bot1")
        result = yield a.router.send("bot1", "방", "안녕", channelId="123")
        self.assertEqual((result.outcome, result.instance), ("routed", "C"))
        received = yield self.phones["C"].whenReceived(1)
        self.assertEqual(received[0].text, "안녕")
        self.assertEqual(received[0].channelId, "123")
        self.assertEqual(received[0].origin, "A")
        self.assertEqual(self.phones["A"].received + self.phones["B"].received, [])
        status = yield a.router.status(result.id)
        self.assertEqual((status.state, status.deliveredBy), ("delivered", "C"))
        same = yield c.router.status(result.id)
        self.assertEqual(same, status)
        # Done entries leave the stream: an inbox holds only what is still to do.
        yield eventually(lambda: self.admin.execute("XLEN", self.keys.inbox("C"))
                         .addCallback(lambda length: length == 0))

    @defer.inlineCallbacks
    def test_heldHereIsDeliveredAtOnce(self):
        a = yield self.startNode("A")
        yield self.connect("A", "bot1")
        result = yield a.router.send("bot1", "방", "바로")
        self.assertEqual(result.outcome, "delivered")
        self.assertEqual(self.phones["A"].texts(), ["바로"])

    @defer.inlineCallbacks
    def test_newestConnectionWins(self):
        """A bot connected to two instances gets its messages on the newest connection."""
        a = yield self.startNode("A")
        yield self.startNode("B")
        yield self.connect("A", "bot1", since=self.clock.seconds() - 100)
        yield self.connect("B", "bot1")
        result = yield a.router.send("bot1", "방", "최신")
        self.assertEqual(result.instance, "B")
        yield self.phones["B"].whenReceived(1)

    @defer.inlineCallbacks
    def test_orderKept(self):
        a = yield self.startNode("A")
        yield self.startNode("C")
        yield self.connect("C", "bot1")
        for i in range(30):
            a.router.send("bot1", "방", f"m{i}")
        received = yield self.phones["C"].whenReceived(30)
        self.assertEqual([m.text for m in received], [f"m{i}" for i in range(30)])

    @defer.inlineCallbacks
    def test_waitsForBotThenDelivered(self):
        a = yield self.startNode("A")
        b = yield self.startNode("B")
        result = yield a.router.send("bot9", "방", "기다림")
        self.assertEqual((result.outcome, result.state), ("waiting", "queued"))
        status = yield b.router.status(result.id)
        self.assertEqual(status.state, "queued")
        yield self.connect("B", "bot9")
        received = yield self.phones["B"].whenReceived(1)
        self.assertEqual(received[0].text, "기다림")
        status = yield a.router.status(result.id)
        self.assertEqual((status.state, status.deliveredBy), ("delivered", "B"))

    @defer.inlineCallbacks
    def test_waitingPastDeadlineIsUndelivered(self):
        reports = []
        a = yield self.startNode("A", outboundWait=60.0)
        a.router.onUndelivered = lambda message, reason: reports.append((message.id, reason))
        result = yield a.router.send("bot9", "방", "늦음")
        yield self.tick("A", seconds=59)
        self.assertEqual(reports, [])
        yield self.tick("A", seconds=2)
        self.assertEqual([r[0] for r in reports], [result.id])
        self.assertIn("bot9", reports[0][1])
        status = yield a.router.status(result.id)
        self.assertEqual(status.state, "undelivered")
        self.assertIn("not connected", status.reason)
        # Connecting now is too late: it stays undelivered and is not sent.
        yield self.startNode("B")
        yield self.connect("B", "bot9")
        yield self.tick()
        self.assertEqual(self.phones["B"].received, [])

    @defer.inlineCallbacks
    def test_zeroWaitIsUndeliveredAtOnce(self):
        a = yield self.startNode("A")
        result = yield a.router.send("bot9", "방", "지금만", waitSeconds=0)
        self.assertEqual(result.state, "undelivered")

    @defer.inlineCallbacks
    def test_sameIdNeverDeliveredTwice(self):
        a = yield self.startNode("A")
        yield self.startNode("C")
        yield self.connect("C", "bot1")
        first = yield a.router.send("bot1", "방", "한 번", messageId="fixed-id")
        second = yield a.router.send("bot1", "방", "한 번", messageId="fixed-id")
        self.assertEqual(first.outcome, "routed")
        self.assertEqual(second.outcome, "duplicate")
        yield self.phones["C"].whenReceived(1)
        yield a.router.send("bot1", "방", "다음")
        received = yield self.phones["C"].whenReceived(2)
        self.assertEqual([m.text for m in received], ["한 번", "다음"])

    @defer.inlineCallbacks
    def test_duplicateStreamEntriesDeliveredOnce(self):
        """Redis may hand an id over more than once; the phone sees it once."""
        a = yield self.startNode("A")
        yield self.startNode("C")
        yield self.connect("C", "bot1")
        result = yield a.router.send("bot1", "방", "중복")
        yield self.phones["C"].whenReceived(1)
        for _ in range(3):
            yield self.admin.execute("XADD", self.keys.inbox("C"), "*", "id", result.id)
        yield a.router.send("bot1", "방", "끝")
        received = yield self.phones["C"].whenReceived(2)
        self.assertEqual([m.text for m in received], ["중복", "끝"])

    @defer.inlineCallbacks
    def test_phoneGoneAfterTakeIsRoutedElsewhere(self):
        """The local write fails (the phone just left): the message waits and reaches it on B."""
        a = yield self.startNode("A")
        yield self.startNode("B")
        yield self.startNode("C")
        yield self.connect("C", "bot1")
        del self.phones["C"].clients["bot1"]  # gone before the registry told presence
        result = yield a.router.send("bot1", "방", "이동")
        self.assertEqual(result.instance, "C")
        yield self.waitForState(result.id, "queued", target="")
        yield self.connect("B", "bot1")
        received = yield self.phones["B"].whenReceived(1)
        self.assertEqual(received[0].text, "이동")

    def waitForState(self, messageId, state, target=None):
        def check():
            d = self.admin.execute("HGETALL", self.keys.message(messageId))
            d.addCallback(lambda flat: dict(zip(flat[::2], flat[1::2])))
            return d.addCallback(lambda f: f.get("state") == state
                                 and (target is None or f.get("target") == target))

        return eventually(check)


class FailoverTests(ClusterCase):
    @defer.inlineCallbacks
    def fakeInstance(self, name, bot):
        """An instance that registers and holds a phone but never reads its inbox."""
        presence = Presence(self.admin, self.keys, name, self.clock)
        yield presence.register()
        client = ClientInfo(botName=bot, version="3.3.0", clientType="MessengerBotR",
                            deviceID="d", address="127.0.0.1", connectedSince=self.clock.seconds())
        yield presence.add(client)
        return presence

    @defer.inlineCallbacks
    def test_killedHolderMessagesArriveAfterReconnect(self):
        """Sent during the gap (holder killed, phone moving to C): delivered on C, once, in order."""
        a = yield self.startNode("A")
        yield self.startNode("B")
        yield self.startNode("C")
        yield self.connect("B", "bot1")
        yield self.kill("B")
        sent = []
        for i in range(5):
            result = yield a.router.send("bot1", "방", f"gap{i}")
            sent.append(result)
        self.assertEqual({r.instance for r in sent}, {"B"})  # B still looks alive
        self.clock.advance(2)
        yield self.connect("C", "bot1")  # the phone reconnects to the next server
        yield self.tick("A", "C", seconds=4)  # B's beat is now past the timeout
        received = yield self.phones["C"].whenReceived(5)
        self.assertEqual([m.text for m in received], [f"gap{i}" for i in range(5)])
        for result in sent:
            status = yield a.router.status(result.id)
            self.assertEqual((status.state, status.deliveredBy), ("delivered", "C"))

    @defer.inlineCallbacks
    def test_pendingEntriesOfDeadConsumerAreClaimed(self):
        """Entries read by an instance that died before delivering them are claimed and delivered."""
        a = yield self.startNode("A")
        yield self.startNode("C")
        b = yield self.fakeInstance("B", "bot1")
        first = yield a.router.send("bot1", "방", "읽힘")
        second = yield a.router.send("bot1", "방", "안 읽힘")
        self.assertEqual((first.instance, second.instance), ("B", "B"))
        yield self.admin.execute("XGROUP", "CREATE", self.keys.inbox("B"), GROUP, "0")
        read = yield self.admin.execute("XREADGROUP", "GROUP", GROUP, "B", "COUNT", 1,
                                        "STREAMS", self.keys.inbox("B"), ">")
        self.assertEqual(len(read[0][1]), 1)  # one pending under B, one never read
        yield self.connect("C", "bot1")
        yield self.tick("A", "C", seconds=6)
        received = yield self.phones["C"].whenReceived(2)
        self.assertEqual([m.text for m in received], ["읽힘", "안 읽힘"])
        self.assertEqual(b.instance, "B")

    @defer.inlineCallbacks
    def test_deadInstanceMessagesWaitWhenBotIsNowhere(self):
        a = yield self.startNode("A")
        yield self.fakeInstance("B", "bot1")
        result = yield a.router.send("bot1", "방", "보류")
        yield self.tick("A", seconds=6)
        status = yield a.router.status(result.id)
        self.assertEqual((status.state, status.target), ("queued", None))
        yield self.startNode("C")
        yield self.connect("C", "bot1")
        received = yield self.phones["C"].whenReceived(1)
        self.assertEqual(received[0].text, "보류")

    @defer.inlineCallbacks
    def test_gracefulStopHandsInboxOn(self):
        """A rolling upgrade: what the stopping instance had not delivered goes to the phone's next home."""
        a = yield self.startNode("A")
        b = yield self.startNode("B")
        yield self.connect("B", "bot1")
        b.inbox.running = False
        yield b.readerLink.stop()  # B stops reading; messages pile up in its inbox
        results = []
        for i in range(3):
            results.append((yield a.router.send("bot1", "방", f"up{i}")))
        self.assertEqual({r.instance for r in results}, {"B"})
        yield self.stopNode("B")
        status = yield a.router.status(results[0].id)
        self.assertEqual(status.state, "queued")
        yield self.startNode("C")
        yield self.connect("C", "bot1")
        received = yield self.phones["C"].whenReceived(3)
        self.assertEqual([m.text for m in received], ["up0", "up1", "up2"])
        self.assertEqual(self.phones["B"].received, [])

    @defer.inlineCallbacks
    def test_restartedInstanceSkipsPreviousLifesDeliveries(self):
        """Pending entries a previous run (same name) took are not written again after a restart."""
        a = yield self.startNode("A")
        yield self.fakeInstance("C", "bot1")
        result = yield a.router.send("bot1", "방", "이전 생")
        yield self.admin.execute("XGROUP", "CREATE", self.keys.inbox("C"), GROUP, "0")
        # The inbox's last ACK may have deleted the emptied stream (and its group) before
        # the SEND made it again: the group is made again as the inbox itself would.
        yield self.admin.execute("XGROUP", "CREATE", self.keys.inbox("C"), GROUP, "0",
                                 "MKSTREAM").addErrback(lambda f: f.trap(Exception))
        yield self.admin.execute("XREADGROUP", "GROUP", GROUP, "C", "STREAMS", self.keys.inbox("C"), ">")
        taken = yield self.admin.eval(lua.TAKE, (), (self.keys.prefix, result.id, "C#old", 0))
        self.assertEqual(taken[0], "take")
        c = yield self.startNode("C")
        yield self.connect("C", "bot1")
        after = yield a.router.send("bot1", "방", "새 생")
        received = yield self.phones["C"].whenReceived(1)
        self.assertEqual([m.text for m in received], ["새 생"])
        yield eventually(lambda: self.admin.execute("XPENDING", self.keys.inbox("C"), GROUP)
                         .addCallback(lambda pending: pending[0] == 0))
        self.assertEqual(after.instance, "C")
        self.assertTrue(c.running)


class LostReplyTests(ClusterCase):
    """Redis ran TAKE but the reply was lost with the connection: the entry is read again."""

    @defer.inlineCallbacks
    def takenButUnanswered(self, written: bool):
        a = yield self.startNode("A")
        c = yield self.startNode("C")
        yield self.connect("C", "bot1")
        c.inbox.running = False
        yield c.readerLink.stop()
        yield c.inbox.done
        result = yield a.router.send("bot1", "방", "응답 분실")
        # The inbox's last ACK may have deleted the emptied stream (and its group) before
        # the SEND made it again: the group is made again as the inbox itself would.
        yield self.admin.execute("XGROUP", "CREATE", self.keys.inbox("C"), GROUP, "0",
                                 "MKSTREAM").addErrback(lambda f: f.trap(Exception))
        yield self.admin.execute("XREADGROUP", "GROUP", GROUP, "C", "STREAMS", self.keys.inbox("C"), ">")
        taken = yield self.admin.eval(lua.TAKE, (), (self.keys.prefix, result.id, c.router.incarnation, 0))
        self.assertEqual(taken[0], "take")
        if written:
            c.router.delivered[result.id] = None
        c.readerLink.start()
        c.inbox.start()
        yield eventually(lambda: self.admin.execute("XLEN", self.keys.inbox("C"))
                         .addCallback(lambda length: length == 0))
        return self.phones["C"].texts()

    @defer.inlineCallbacks
    def test_notWrittenThenIsWrittenNow(self):
        texts = yield self.takenButUnanswered(written=False)
        self.assertEqual(texts, ["응답 분실"])

    @defer.inlineCallbacks
    def test_writtenThenIsNotWrittenAgain(self):
        texts = yield self.takenButUnanswered(written=True)
        self.assertEqual(texts, [])
