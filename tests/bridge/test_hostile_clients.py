"""Hostile clients on real sockets against the real service, while a good bridge is served."""

from __future__ import annotations

import atexit
import json
import os
import socket

from twisted.internet import defer, reactor
from twisted.internet.interfaces import IPullProducer
from twisted.trial.unittest import TestCase
from zope.interface import implementer

from kkobot.bridge import wire
from tests.support.hostile import (
    BridgeClient,
    LatencyProbe,
    Server,
    connect,
    openFds,
    rssBytes,
)
from tests.support import HELLO_320, analyze, line, tempDir, waitUntil

MB = 1024 * 1024

# Figures of a run, for docs/reliability.md (written to $KKOBOT_FIGURES when set).
FIGURES: dict[str, dict] = {}


def serverSide(server: Server, client: BridgeClient):
    """The server's protocol object for one of our client connections."""
    port = client.transport.getHost().port
    for proto in server.factory.connections:
        if proto.transport.getPeer().port == port:
            return proto
    return None


def sendBuffer(proto) -> int:
    """Bytes our side has accepted for that peer but not yet handed to the kernel."""
    t = proto.transport
    return len(t.dataBuffer) - t.offset + t._tempDataLen


@implementer(IPullProducer)
class EndlessLine:
    """Offers C{total} bytes of one line without a newline, a chunk whenever asked."""

    def __init__(self, transport, total: int, chunk: int = 256 * 1024) -> None:
        self.transport = transport
        self.left = total
        self.sent = 0
        self.piece = b"x" * chunk

    def resumeProducing(self) -> None:
        if self.left <= 0:
            self.transport.unregisterProducer()
            return
        data = self.piece[: self.left]
        self.left -= len(data)
        self.sent += len(data)
        self.transport.write(data)

    def stopProducing(self) -> None:
        self.left = 0


class HostileClientTests(TestCase):
    timeout = 120

    @defer.inlineCallbacks
    def setUp(self):
        self.server = Server(tempDir(self))
        yield self.server.start()
        self.addCleanup(self.server.stop)
        self.good = yield self.connect()
        yield self.good.handshake()
        self.probe = LatencyProbe(self.good)
        yield self.probe.measureBaseline()
        self.addCleanup(self.probe.stop)

    @defer.inlineCallbacks
    def connect(self, factory=BridgeClient):
        client = yield connect(self.server.port, factory)
        self.addCleanup(self.closeClient, client)
        return client

    def closeClient(self, client: BridgeClient):
        if client.connected:
            client.transport.abortConnection()
        return client.lost

    @defer.inlineCallbacks
    def test_hundredMegabyteLine(self):
        """LINE_TOO_LONG and a close for the sender; no 100 MB in our memory; others served."""
        hostile = yield self.connect()
        yield hostile.handshake()
        rssBefore = rssBytes()
        self.probe.start()
        producer = EndlessLine(hostile.transport, 100 * MB)
        hostile.transport.registerProducer(producer, False)
        yield hostile.lost
        yield self.probe.stop()
        rssAfter = rssBytes()
        self.assertEqual(hostile.errors(), [wire.LINE_TOO_LONG])
        self.assertLess(rssAfter - rssBefore, 50 * MB)
        FIGURES["line_100mb"] = dict(
            offered=100 * MB, accepted_before_close=producer.sent,
            rss_before=rssBefore, rss_after=rssAfter, **self.probe.check(self),
        )

    @defer.inlineCallbacks
    def test_slowloris(self):
        """One byte at a time, before and after the handshake: closed on the deadlines."""
        self.server.factory.handshakeTimeout = 0.5
        self.server.factory.idleTimeout = 1.0
        count = 40
        clients = []
        for i in range(count):
            clients.append((yield self.connect()))
        for c in clients[count // 2 :]:
            yield c.handshake()
        payloads = {c: line(HELLO_320) for c in clients[: count // 2]}
        payloads.update({c: line(analyze("# echo slow")) for c in clients[count // 2 :]})
        self.probe.start()
        sent = {c: 0 for c in clients}

        def trickle():
            # One byte per client per tick, from a reactor timer (not a sleeping thread).
            alive = False
            for c in clients:
                if c.connected and sent[c] < len(payloads[c]) - 1:
                    c.transport.write(payloads[c][sent[c] : sent[c] + 1])
                    sent[c] += 1
                    alive = True
            if alive:
                timers.append(reactor.callLater(0.05, trickle))

        timers = [reactor.callLater(0, trickle)]
        self.addCleanup(lambda: [t.cancel() for t in timers if t.active()])
        yield defer.gatherResults([c.lost for c in clients])
        yield self.probe.stop()
        # The good client kept talking, so its own idle deadline never came.
        self.assertTrue(self.good.connected)
        for c in clients[: count // 2]:
            self.assertEqual(c.errors(), [wire.HANDSHAKE_TIMEOUT])
        for c in clients[count // 2 :]:
            self.assertEqual(c.errors(), [wire.IDLE_TIMEOUT])
        self.assertEqual(len(self.server.factory.connections), 1)
        FIGURES["slowloris"] = dict(
            connections=count, bytes_trickled=sum(sent.values()), **self.probe.check(self)
        )

    @defer.inlineCallbacks
    def test_clientThatNeverReads(self):
        """
        Replies pile up for a client that does not read: we stop reading from it, our
        send buffer stays bounded, and when it reads again it gets every reply.
        """
        hostile = yield self.connect()
        yield hostile.handshake()
        hostile.transport.pauseProducing()  # stop reading: the kernel buffers fill up
        rssBefore = rssBytes()
        lines = 2000
        text = "y" * 10_000
        payload = b"".join(line(analyze(f"# echo {i} {text}")) for i in range(lines))
        hostile.transport.write(payload)
        proto = serverSide(self.server, hostile)
        peak = [0]

        def pausedBySendBuffer() -> bool:
            peak[0] = max(peak[0], sendBuffer(proto))
            return "send-buffer" in proto._pauseReasons

        yield waitUntil(pausedBySendBuffer, what="the server to pause the non-reader")
        self.probe.start()
        # It stays paused, its buffer bounded, while the good client does 50 round trips.
        yield waitUntil(lambda: len(self.probe.during) >= 50, what="50 probe round trips")
        self.assertTrue(pausedBySendBuffer())
        self.assertLess(peak[0], 1 * MB)
        rssPaused = rssBytes()
        yield self.probe.stop()
        figures = self.probe.check(self)
        hostile.transport.resumeProducing()
        yield waitUntil(
            lambda: sum(e["event"] == "messageResponse" for e in hostile.events) >= lines,
            timeout=60, what="every reply after the client reads again",
        )
        texts = [e["data"]["text"] for e in hostile.events if e["event"] == "messageResponse"]
        self.assertEqual(texts, [f"에코: {i} {text}" for i in range(lines)])
        FIGURES["never_reads"] = dict(
            replies_owed=lines, reply_bytes=lines * 10_030, peak_send_buffer=peak[0],
            rss_before=rssBefore, rss_paused=rssPaused, **figures,
        )

    @defer.inlineCallbacks
    def test_thousandConnectsAndDisconnects(self):
        """A burst of 1,000 short connections leaves no connection, client or fd behind."""
        fdsBefore = openFds()
        rssBefore = rssBytes()
        self.probe.start()
        kinds = ["close", "abort", "hello-close", "half-line", "hello-abort"]
        done = {k: 0 for k in kinds}

        @defer.inlineCallbacks
        def one(i: int):
            kind = kinds[i % len(kinds)]
            c = yield connect(self.server.port)
            if kind.startswith("hello"):
                yield c.handshake()
            elif kind == "half-line":
                c.transport.write(line(analyze("# echo cut"))[:40])
            if kind.endswith("abort"):
                c.transport.abortConnection()
            else:
                c.transport.loseConnection()
            yield c.lost
            done[kind] += 1

        total = 1000
        batch = 25
        for start in range(0, total, batch):
            yield defer.gatherResults([one(i) for i in range(start, start + batch)])
        yield waitUntil(lambda: len(self.server.factory.connections) == 1, what="the burst to drain")
        yield self.probe.stop()
        self.assertEqual(sum(done.values()), total)
        self.assertEqual(len(self.server.service.registry), 1)
        yield waitUntil(lambda: openFds() <= fdsBefore, what="file descriptors to be released")
        FIGURES["burst"] = dict(
            connections=total, by_kind=done, fds_before=fdsBefore, fds_after=openFds(),
            rss_before=rssBefore, rss_after=rssBytes(), **self.probe.check(self),
        )

    @defer.inlineCallbacks
    def test_halfOpenAndHalfClosedPeers(self):
        """
        Peers that go silent (a phone gone without a FIN: the server cannot tell) are closed
        at the idle deadline; peers that half-close are cleaned up at once.
        """
        self.server.factory.idleTimeout = 1.0
        silent = []
        for _ in range(20):
            c = yield self.connect()
            yield c.handshake()
            c.transport.pauseProducing()  # neither reads nor writes again
            silent.append(c)
        halfClosed = []
        for _ in range(20):
            s = socket.create_connection(("127.0.0.1", self.server.port))
            self.addCleanup(s.close)
            s.sendall(line(HELLO_320) + line(analyze("# echo bye")))
            s.shutdown(socket.SHUT_WR)
            halfClosed.append(s)
        self.probe.start()
        yield waitUntil(
            lambda: len(self.server.factory.connections) == 1,
            timeout=30, what="silent and half-closed peers to be closed",
        )
        yield self.probe.stop()
        self.assertTrue(self.good.connected)
        for c in silent:
            c.transport.resumeProducing()
        yield defer.gatherResults([c.lost for c in silent])
        for c in silent:
            self.assertEqual(c.errors(), [wire.IDLE_TIMEOUT])
        FIGURES["half_open"] = dict(
            silent=len(silent), half_closed=len(halfClosed), **self.probe.check(self)
        )

    @defer.inlineCallbacks
    def test_garbageFloodKeepsTheConnectionAndOthersServed(self):
        """Thousands of bad lines in one stream: one error each, then the good line answered."""
        hostile = yield self.connect()
        yield hostile.handshake()
        bad = [b"\xff\xfe", b"[" * 10_000, b"null", b'{"event":"analyze","data":[]}',
               b'{"event":"ping","data":{"server_timestamp":"x"}}', b"\x00" * 100]
        count = 3000
        self.probe.start()
        hostile.transport.write(b"".join(bad[i % len(bad)] + b"\n" for i in range(count)))
        # Half an emoji (a UTF-16 string cut short) in the room and the text.
        hostile.transport.write(
            json.dumps(analyze("# echo cut\ud83d", room="방\ud83d"), ensure_ascii=True).encode() + b"\n"
        )
        hostile.send(analyze("# echo after"))
        yield hostile.waitFor(lambda e: e.get("data", {}).get("text") == "에코: after", 60)
        yield self.probe.stop()
        self.assertEqual(len(hostile.errors()), count)
        texts = [e["data"]["text"] for e in hostile.events if e["event"] == "messageResponse"]
        self.assertIn("에코: cut\ufffd", texts)
        # The chat log stored it, and every other row of the same batches.
        chatlog = self.server.service.chatlog
        yield chatlog.flush()
        rows = yield self.server.service.database.runQuery(
            "SELECT room_name, message FROM kb_chat_logs WHERE message LIKE %s", ("# echo cut%",)
        )
        self.assertEqual([tuple(r) for r in rows], [("방\ufffd", "# echo cut\ufffd")])
        self.assertEqual(chatlog.batchFailures, 0)
        FIGURES["garbage"] = dict(bad_lines=count, **self.probe.check(self))


class LogFloodTests(TestCase):
    """A client must not be able to flood server.log (and so rotate its history away)."""

    timeout = 60

    @defer.inlineCallbacks
    def test_garbageFloodDoesNotFloodTheLog(self):
        base = tempDir(self)
        server = Server(base, logLevel="info", logDir=os.path.join(base, "logs"))
        yield server.start()
        self.addCleanup(server.stop)
        logPath = server.service.fileLog.path
        before = os.path.getsize(logPath)
        hostile = yield connect(server.port)
        yield hostile.handshake()
        count = 20_000
        hostile.transport.write(b"not json\n" * count)
        hostile.send({"event": "subscribe", "data": {}})
        hostile.send(analyze("# echo after"))
        yield hostile.waitFor(lambda e: e.get("data", {}).get("text") == "에코: after", 60)
        self.assertEqual(len(hostile.errors()), count + 1)
        hostile.transport.loseConnection()
        yield hostile.lost
        yield waitUntil(lambda: not server.factory.connections, what="the close")
        with open(logPath, encoding="utf-8") as f:
            f.seek(before)
            text = f.read()
        # Every bad line was answered, but only the first few were logged, plus a count.
        self.assertLess(text.count("bad line from"), 20)
        self.assertIn(f"{count + 1} bad line(s)", text)
        FIGURES["log_flood"] = dict(bad_lines=count + 1, log_bytes=len(text.encode()))


def _writeFigures() -> None:
    with open(os.environ["KKOBOT_FIGURES"], "w") as f:
        json.dump(FIGURES, f, indent=1, default=str)


if os.environ.get("KKOBOT_FIGURES"):
    atexit.register(_writeFigures)
