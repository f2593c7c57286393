"""Time under abuse, on a task.Clock: slowloris, silent and non-reading peers, pings, the abort."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kkobot import protocol, wire
from tests.support import HELLO_320, analyze, line
from tests.test_fuzz_protocol import Connection


def codes(conn: Connection) -> list[str]:
    return [e["data"]["code"] for e in conn.events() if e["event"] == "error"]


class SlowlorisTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.conn = Connection()
        self.addCleanup(self.conn.close)

    def test_oneByteASecondHandshakeTimesOut(self) -> None:
        """Bytes that never make a line do not keep a connection: the handshake deadline holds."""
        hello = line(HELLO_320)
        timeout = self.conn.factory.handshakeTimeout
        for i in range(int(timeout) - 1):
            self.conn.feed(hello[i : i + 1])
            self.conn.clock.advance(1)
        self.assertFalse(self.conn.transport.disconnecting)
        self.conn.feed(hello[int(timeout) - 1 : int(timeout)])
        self.conn.clock.advance(1)
        self.assertEqual(codes(self.conn), [wire.HANDSHAKE_TIMEOUT])
        self.assertTrue(self.conn.transport.disconnecting)

    def test_oneByteASecondAfterTheHandshakeIdlesOut(self) -> None:
        """After the handshake, only whole lines count as life: a trickled line idles out."""
        self.conn.feed(line(HELLO_320))
        pending = line(analyze("# echo " + "x" * 200))
        idle = self.conn.factory.idleTimeout
        for i in range(int(idle)):
            self.assertFalse(self.conn.transport.disconnecting, i)
            self.conn.feed(pending[i : i + 1])
            self.conn.clock.advance(1)
        self.assertEqual(codes(self.conn), [wire.IDLE_TIMEOUT])
        self.assertTrue(self.conn.transport.disconnecting)

    def test_manyBadLinesDoNotKeepTheHandshakeOpen(self) -> None:
        """Garbage lines are answered, but a client that never handshakes is still closed."""
        for _ in range(int(self.conn.factory.handshakeTimeout) * 2):
            self.conn.feed(b"not json\n")
            self.conn.clock.advance(1)
            if self.conn.transport.disconnecting:
                break
        self.assertIn(wire.HANDSHAKE_TIMEOUT, codes(self.conn))
        self.assertTrue(self.conn.transport.disconnecting)


class PingTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.conn = Connection()
        self.addCleanup(self.conn.close)
        self.conn.feed(line(HELLO_320))

    def pings(self) -> list[dict]:
        return [e["data"] for e in self.conn.events() if e["event"] == "ping"]

    def test_pingsEveryIntervalAndAnsweringKeepsTheConnection(self) -> None:
        interval = self.conn.factory.pingInterval
        for n in range(1, 11):
            self.conn.clock.advance(interval)
            sent = self.pings()
            self.assertEqual(len(sent), n)
            answer = {"event": "ping", "data": {"server_timestamp": sent[-1]["server_timestamp"]}}
            self.conn.feed(line(answer))
        self.assertFalse(self.conn.transport.disconnecting)
        self.assertEqual(codes(self.conn), [])
        # The answer to our own ping gave a round trip (0 ms on a frozen clock).
        self.assertEqual(self.conn.proto.client.lastRttMillis, 0)

    def test_silentPeerClosedAfterIdleTimeout(self) -> None:
        """A half-open peer (gone without a FIN) never answers: closed, then aborted."""
        factory = self.conn.factory
        # In 1 s steps: a LoopingCall skips the beats a single big jump passes over.
        for _ in range(int(factory.idleTimeout) - 1):
            self.conn.clock.advance(1)
        self.conn.clock.advance(0.999)
        self.assertFalse(self.conn.transport.disconnecting)
        # Pinged at 30 s and 60 s (defaults: ping every 30 s, idle after 90 s).
        self.assertEqual(len(self.pings()), 2)
        self.conn.clock.advance(0.001)
        self.assertEqual(codes(self.conn), [wire.IDLE_TIMEOUT])
        self.assertTrue(self.conn.transport.disconnecting)
        # Nobody takes the close: the socket is aborted after ABORT_AFTER seconds.
        self.conn.clock.advance(protocol.ABORT_AFTER)
        self.assertTrue(self.conn.transport.disconnected)


class NonReadingPeerTests(SynchronousTestCase):
    def test_pausedByTheSendBufferStillIdlesOut(self) -> None:
        """
        A client that never reads pauses our reading (transport backpressure); it cannot
        prove it is alive, so the idle timeout still closes it.
        """
        conn = Connection()
        self.addCleanup(conn.close)
        conn.feed(line(HELLO_320))
        conn.proto.pauseProducing()  # what the transport does when its buffer is full
        self.assertTrue(conn.proto.paused)
        conn.feed(line(analyze("# echo held")) * 3)
        replies = [e for e in conn.events() if e["event"] == "messageResponse"]
        self.assertEqual(replies, [])
        conn.clock.advance(conn.factory.idleTimeout)
        self.assertEqual(codes(conn), [wire.IDLE_TIMEOUT])

    def test_abortTimerCancelledWhenTheConnectionCloses(self) -> None:
        """A close that completes leaves no timer behind (1,000 closes, 1,000 timers otherwise)."""
        conn = Connection()
        conn.feed(b"x" * (conn.factory.maxLineBytes + 2))
        self.assertTrue(conn.transport.disconnecting)
        conn.close()
        self.assertEqual(conn.clock.getDelayedCalls(), [])
