"""The connection to Redis: txredisapi's protocol, reconnected with backoff, up/down logged once per change."""

from __future__ import annotations

from typing import Any, Sequence

import txredisapi
from twisted.application.internet import ClientService, backoffPolicy
from twisted.internet import defer
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.protocol import Factory
from twisted.internet.ssl import optionsForClientTLS
from twisted.python.failure import Failure
from zope.interface import implementer

from kkobot.cluster.interfaces import IRedisLink
from kkobot.cluster.settings import RedisAddress
from kkobot.logs import Logger

log = Logger()


class RedisUnavailable(Exception):
    """Redis cannot be asked now: the link is down, or the call was lost with the connection."""


@implementer(IRedisLink)
class RedisLink:
    """
    One Redis connection kept open by a C{ClientService}.

    Commands sent while the link is not up fail at once with L{RedisUnavailable}
    (never queue): every caller has an in-process fallback and must not wait for
    Redis. A reply slower than C{replyTimeout} drops the connection (a hung Redis
    is a down Redis). The C{announce} link logs one C{[SERVER]} line per change;
    helper links (the blocking stream reader) log at debug only.
    """

    def __init__(
        self,
        address: RedisAddress,
        reactor: Any = None,
        announce: bool = True,
        replyTimeout: float = 3.0,
        connectTimeout: float = 2.0,
        maxRetryDelay: float = 2.0,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.address = address
        self.reactor = reactor
        self.announce = announce
        self.replyTimeout = replyTimeout
        self.connectTimeout = connectTimeout
        self.maxRetryDelay = maxRetryDelay
        self.state = "stopped"
        self.since = reactor.seconds()
        self.lastError: str | None = None
        self._protocol: Any = None
        self._service: ClientService | None = None
        self._listeners: list[Any] = []
        self._waiting: list[defer.Deferred[RedisLink]] = []
        self._everUp = False
        # Requests sent (round trips; pipelined ones overlap): for metrics and benchmarks.
        self.requests = 0

    # -- lifecycle

    def start(self) -> None:
        endpoint: Any = HostnameEndpoint(
            self.reactor, self.address.host, self.address.port, timeout=self.connectTimeout
        )
        if self.address.tls:
            endpoint = wrapClientTLS(optionsForClientTLS(self.address.host), endpoint)
        self._service = ClientService(
            _ObservedEndpoint(endpoint, self),
            _LinkFactory(self),
            retryPolicy=backoffPolicy(initialDelay=0.1, maxDelay=self.maxRetryDelay, factor=2.0),
            clock=self.reactor,
        )
        self._setState("connecting")
        self._service.startService()

    def stop(self) -> defer.Deferred[None]:
        """Close the connection and stop reconnecting; waiters of L{whenUp} fail."""
        self._setState("stopped")
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.errback(RedisUnavailable("the Redis link was stopped"))
        service, self._service = self._service, None
        if service is None:
            return defer.succeed(None)
        return service.stopService()

    # -- state

    @property
    def up(self) -> bool:
        return self.state == "up"

    def subscribe(self, listener: Any) -> None:
        self._listeners.append(listener)

    def whenUp(self) -> defer.Deferred[RedisLink]:
        if self.up:
            return defer.succeed(self)
        d: defer.Deferred[RedisLink] = defer.Deferred()
        self._waiting.append(d)
        return d

    def status(self) -> dict[str, Any]:
        return {
            "state": self.state,
            "since": self.since,
            "redis": self.address.display(),
            "last_error": self.lastError,
        }

    def _setState(self, state: str) -> None:
        if state != self.state:
            self.state = state
            self.since = self.reactor.seconds()

    def _say(self, message: str, warn: bool = False, **kw: Any) -> None:
        if not self.announce:
            log.debug(message, **kw)
        elif warn:
            log.warn(message, **kw)
        else:
            log.info(message, **kw)

    def _ready(self, protocol: Any) -> None:
        if self.state == "stopped":
            protocol.transport.loseConnection()
            return
        downFor = self.reactor.seconds() - self.since
        wasDown = self.state == "down"
        self._protocol = protocol
        self._setState("up")
        self.lastError = None
        if not self._everUp:
            self._say("[SERVER] Redis {redis} connected: cluster mode", redis=self.address.display())
        elif wasDown:
            self._say(
                "[SERVER] Redis {redis} rejoined after {seconds:.1f} s: cluster mode",
                redis=self.address.display(),
                seconds=downFor,
            )
        self._everUp = True
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(self)
        for listener in list(self._listeners):
            _notify(listener.redisUp)

    def _lost(self, protocol: Any) -> None:
        if protocol is not self._protocol:
            return  # a connection that never became usable: still "connecting"/"down"
        self._protocol = None
        if self.state == "stopped":
            return
        self.lastError = self.lastError or "connection lost"
        self._down(self.lastError)

    def _failed(self, reason: str) -> None:
        """A connection attempt failed (refused, timed out, AUTH or SELECT refused)."""
        repeated = reason == self.lastError
        self.lastError = reason
        if self.state == "connecting":
            self._down(reason)
        elif self.state == "down" and not repeated and "could not" in reason:
            # A credentials problem is worth a line of its own; plain retries are not.
            self._say("[SERVER] Redis {redis}: {reason}", warn=True,
                      redis=self.address.display(), reason=reason)

    def _down(self, reason: str) -> None:
        self._setState("down")
        self._say(
            "[SERVER] Redis {redis} unreachable: local-only mode ({reason})",
            warn=True,
            redis=self.address.display(),
            reason=reason,
        )
        for listener in list(self._listeners):
            _notify(listener.redisDown, reason)

    # -- commands

    def execute(self, *args: Any, timeout: bool = True) -> defer.Deferred[Any]:
        protocol = self._protocol
        if protocol is None or not self.up:
            return defer.fail(RedisUnavailable(f"Redis {self.address.display()} is {self.state}"))
        self.requests += 1
        try:
            d = protocol.execute_command(*args, apply_timeout=timeout)
        except txredisapi.ConnectionError as e:
            return defer.fail(RedisUnavailable(str(e)))
        return d.addErrback(_translate)

    def eval(self, script: str, keys: Sequence[Any] = (), args: Sequence[Any] = ()) -> defer.Deferred[Any]:
        protocol = self._protocol
        if protocol is None or not self.up:
            return defer.fail(RedisUnavailable(f"Redis {self.address.display()} is {self.state}"))
        self.requests += 1
        try:
            d = protocol.eval(script, list(keys), list(args))
        except txredisapi.ConnectionError as e:
            return defer.fail(RedisUnavailable(str(e)))
        return d.addErrback(_translate)


def _translate(failure: Failure) -> Any:
    if failure.check(txredisapi.ConnectionError):
        raise RedisUnavailable(failure.getErrorMessage())
    return failure


def _notify(method: Any, *args: Any) -> None:
    # One listener's bug must not keep the others from hearing about the change.
    try:
        method(*args)
    except Exception:
        log.failure("[SERVER] a Redis state listener failed")


def isUnavailable(failure: Failure) -> bool:
    """True for a failure that means 'Redis cannot be asked now' (fall back locally)."""
    return failure.check(RedisUnavailable, txredisapi.ConnectionError, defer.CancelledError,
                         defer.TimeoutError) is not None


class _ObservedEndpoint:
    """An endpoint whose failed connection attempts the link hears about."""

    def __init__(self, endpoint: Any, link: RedisLink) -> None:
        self.endpoint = endpoint
        self.link = link

    def connect(self, factory: Any) -> defer.Deferred[Any]:
        def failed(failure: Failure) -> Failure:
            self.link._failed(failure.getErrorMessage())
            return failure

        return self.endpoint.connect(factory).addErrback(failed)


class _LinkFactory(Factory):
    """Builds txredisapi protocols and tells the link when one is usable or gone."""

    noisy = False
    # txredisapi's protocol reads these from its factory.
    isLazy = False

    def __init__(self, link: RedisLink) -> None:
        self.link = link

    def buildProtocol(self, addr: Any) -> Any:
        link = self.link
        address = link.address
        protocol = txredisapi.RedisProtocol(
            charset="utf-8",
            errors="strict",
            replyTimeout=link.replyTimeout,
            password=address.password,
            dbid=address.db or None,
            convertNumbers=False,
            username=address.username,
        )
        protocol.factory = self
        # whenConnected fires after AUTH and SELECT; the reactor finishes setting up
        # the connection (and ClientService learns about it) before anyone uses it.
        protocol.whenConnected().addCallback(
            lambda p: link.reactor.callLater(0, self._usable, p)
        )
        protocol.whenDisconnected().addCallback(link._lost)
        return protocol

    def _usable(self, protocol: Any) -> None:
        if protocol.connected:
            self.link._ready(protocol)

    def stopTrying(self) -> None:
        # txredisapi gives up after a refused AUTH; we keep retrying (with backoff) so
        # credentials fixed on the Redis side are picked up without a restart.
        pass

    def connectionError(self, why: str) -> None:
        self.link._failed(why)
