"""Server lines onto a real TCP socket: sent at once when nothing is queued, in order when something is."""

from __future__ import annotations

import socket

from twisted.internet import defer, protocol, reactor
from twisted.internet.testing import StringTransport
from twisted.trial.unittest import SynchronousTestCase, TestCase

from kkobot.bridge.sending import senderFor


class Recorder(protocol.Protocol):
    """The server side: fires the factory's Deferred when connected, notes pauses."""

    paused = 0

    def connectionMade(self) -> None:
        self.transport.registerProducer(self, True)
        self.factory.connected.callback(self)

    def pauseProducing(self) -> None:
        self.paused += 1

    def resumeProducing(self) -> None:
        pass

    def stopProducing(self) -> None:
        pass


class SendOverTcpTests(TestCase):
    """A real loopback connection: the peer is a plain blocking socket."""

    @defer.inlineCallbacks
    def setUp(self):
        factory = protocol.ServerFactory()
        factory.protocol = Recorder
        factory.connected = defer.Deferred()
        port = reactor.listenTCP(0, factory, interface="127.0.0.1")
        self.addCleanup(port.stopListening)
        # Small buffers, so a few megabytes are more than the kernel takes at once.
        self.peer = socket.socket()
        self.peer.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        self.peer.connect(("127.0.0.1", port.getHost().port))
        self.addCleanup(self.peer.close)
        self.server = yield factory.connected
        self.server.transport.socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        self.addCleanup(self.closeServer)
        self.peer.settimeout(10)

    def closeServer(self) -> None:
        if self.server.transport.connected:
            self.server.transport.abortConnection()

    def receive(self, size: int) -> bytes:
        data = b""
        while len(data) < size:
            chunk = self.peer.recv(size - len(data))
            if not chunk:
                break
            data += chunk
        return data

    def test_lineLeavesBeforeTheReactorTurns(self):
        """The socket has the line when send returns: no reactor turn, no writer registered."""
        send = senderFor(self.server.transport)
        send(b'{"event":"messageResponse"}\n')
        self.assertNotIn(self.server.transport, reactor.getWriters())
        self.assertEqual(self.receive(28), b'{"event":"messageResponse"}\n')

    @defer.inlineCallbacks
    def test_queuedBytesGoFirst(self):
        """A line sent while the transport holds queued bytes waits behind them."""
        transport = self.server.transport
        send = senderFor(transport)
        transport.write(b"first\n")
        send(b"second\n")
        send(b"third\n")
        self.assertIn(transport, reactor.getWriters())
        received = yield _inThreadReceive(self, 19)
        self.assertEqual(received, b"first\nsecond\nthird\n")

    @defer.inlineCallbacks
    def test_whatTheSocketDoesNotTakeIsQueuedInOrder(self):
        """A peer that does not read: the rest waits in the transport (producer paused), nothing is lost or reordered."""
        transport = self.server.transport
        send = senderFor(transport)
        big = b"".join(b"%07d\n" % i for i in range(400_000))  # 3.2 MB: more than the socket buffers take
        send(big)
        send(b"last\n")
        self.assertIn(transport, reactor.getWriters())
        self.assertGreater(self.server.paused, 0)
        received = yield _inThreadReceive(self, len(big) + 5)
        self.assertEqual(len(received), len(big) + 5)
        self.assertTrue(received == big + b"last\n")

    @defer.inlineCallbacks
    def test_closingConnectionTakesTheWritePath(self):
        """After loseConnection a line goes the way transport.write takes it: out before the close."""
        transport = self.server.transport
        send = senderFor(transport)
        send(b"before\n")
        transport.loseConnection()
        send(b"after\n")
        self.assertIn(transport, reactor.getWriters())
        # Up to 100 bytes: the peer's read ends at the close.
        received = yield _inThreadReceive(self, 100)
        self.assertEqual(received, b"before\nafter\n")


    def test_abortedConnectionSendsNothingMore(self):
        """After abortConnection no line reaches the socket, as with transport.write."""
        transport = self.server.transport
        sock = transport.socket
        sent: list[bytes] = []

        class Recording:
            # The socket's own methods, with send() noted (a socket's attributes are read-only).
            def __getattr__(self, name):
                return getattr(sock, name)

            def send(self, data):
                sent.append(bytes(data))
                return sock.send(data)

        transport.socket = Recording()
        self.addCleanup(setattr, transport, "socket", sock)
        send = senderFor(transport)
        send(b"before\n")
        transport.abortConnection()
        send(b"after\n")
        self.assertEqual(sent, [b"before\n"])


def _inThreadReceive(case: SendOverTcpTests, size: int) -> defer.Deferred[bytes]:
    # The peer's blocking reads run in a thread so the reactor can send meanwhile.
    from twisted.internet import threads

    return threads.deferToThread(case.receive, size)


class OtherTransportTests(SynchronousTestCase):
    def test_notTcpUsesWrite(self):
        """A transport that is not a plain TCP connection (tests, TLS wrappers) gets its own write."""
        transport = StringTransport()
        send = senderFor(transport)
        send(b"line\n")
        self.assertEqual(transport.value(), b"line\n")
