"""A TCP proxy in front of the real MariaDB that a test can cut and restore (an honest outage)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.protocols.portforward import ProxyFactory, ProxyServer


class _TrackedProxyServer(ProxyServer):
    def connectionMade(self) -> None:
        self.factory.open.add(self)
        ProxyServer.connectionMade(self)

    def connectionLost(self, reason: Any = None) -> None:
        self.factory.open.discard(self)
        ProxyServer.connectionLost(self, reason)


class CuttableProxy:
    """127.0.0.1:<port> → host:port; L{cut} refuses and drops connections, L{restore} undoes it."""

    def __init__(self, reactor: Any, host: str, port: int) -> None:
        self.reactor = reactor
        self.factory = ProxyFactory(host, port)
        self.factory.protocol = _TrackedProxyServer
        self.factory.open = set()
        self.port = 0
        self._listening: Any = None

    def start(self) -> None:
        self._listening = self.reactor.listenTCP(self.port, self.factory, interface="127.0.0.1")
        self.port = self._listening.getHost().port

    def cut(self) -> defer.Deferred:
        """New connections are refused; open ones are reset (MySQL error 2013 in the client)."""
        d = defer.maybeDeferred(self._listening.stopListening)
        self._listening = None
        for server in list(self.factory.open):
            server.transport.abortConnection()
            if server.peer is not None:
                server.peer.transport.abortConnection()
        return d

    def restore(self) -> None:
        self.start()

    def stop(self) -> defer.Deferred:
        if self._listening is None:
            for server in list(self.factory.open):
                server.transport.abortConnection()
            return defer.succeed(None)
        return self.cut()
