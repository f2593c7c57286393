"""The services that own the database pool and the listening port."""

from __future__ import annotations

from typing import Any

from twisted.application import strports
from twisted.application.service import MultiService, Service
from twisted.internet import defer

from kkobot.bridge.protocol import BridgeFactory
from kkobot.db.pool import Database
from kkobot.logs import Logger

log = Logger()


class DatabaseService(Service):
    """Owns the connection pool: closed after every part that writes has stopped."""

    def __init__(self, database: Database) -> None:
        self.database = database

    def stopService(self) -> None:
        Service.stopService(self)
        self.database.close()


class BridgeServerService(MultiService):
    """The listening port; on stop, it also closes the open client connections."""

    def __init__(self, endpoint: str, factory: BridgeFactory, reactor: Any = None) -> None:
        MultiService.__init__(self)
        self.endpoint = endpoint
        self.factory = factory
        self.listener = strports.service(endpoint, factory, reactor=reactor)
        self.listener.setServiceParent(self)

    def startService(self) -> None:
        MultiService.startService(self)
        log.info("[SERVER] listening on {endpoint}", endpoint=self.endpoint)

    def whenListening(self) -> defer.Deferred[Any]:
        """The bound IListeningPort once listening; tests learn a port-0 number from it."""
        d: defer.Deferred[Any] = defer.Deferred()

        def seen(port: Any) -> Any:
            d.callback(port)
            return port  # the listener's own Deferred keeps it, for stopService

        # StreamServerEndpointService offers no public accessor for its port.
        self.listener._waitingForPort.addCallback(seen)
        return d

    @defer.inlineCallbacks
    def stopService(self):
        yield MultiService.stopService(self)
        log.info(
            "[SHUTDOWN] stopped listening; closing {count} client connection(s)",
            count=len(self.factory.connections),
        )
        closing = list(self.factory.connections)
        for proto in closing:
            proto.disconnect()
        # Rows logged while they close belong to this run's final flush, which
        # starts only after this; disconnect() aborts a stuck peer within seconds.
        yield defer.DeferredList([proto.closed for proto in closing])
