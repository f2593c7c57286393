"""Time under abuse, on a task.Clock: slowloris, silent and non-reading peers, the forced abort.

The plain timer behaviour (deadlines, ping interval, junk lines) is in test_protocol.py.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kkobot.bridge import protocol

from kkobot.bridge import wire
from tests.support import HELLO_320, analyze, line
from tests.bridge.test_fuzz_protocol import Connection


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


class SilentPeerTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.conn = Connection()
        self.addCleanup(self.conn.close)
        self.conn.feed(line(HELLO_320))

    def pings(self) -> list[dict]:
        return [e["data"] for e in self.conn.events() if e["event"] == "ping"]

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


class LinesMoveTheIdleDeadlineTests(SynchronousTestCase):
    def test_eachLineMovesTheDeadlineAndTheLastOneCounts(self) -> None:
        """A line just before each deadline keeps the connection; idle follows the last line exactly."""
        conn = Connection()
        self.addCleanup(conn.close)
        conn.feed(line(HELLO_320))
        idle = conn.factory.idleTimeout
        for i in range(5):
            conn.clock.advance(idle - 1)
            self.assertFalse(conn.transport.disconnecting, i)
            conn.feed(line(analyze("# echo still here")))
        conn.clock.advance(idle - 0.5)
        self.assertFalse(conn.transport.disconnecting)
        conn.clock.advance(0.5)
        self.assertEqual(codes(conn), [wire.IDLE_TIMEOUT])
