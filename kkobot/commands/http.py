"""HTTP for plugins (`context.http`): treq over one connection pool, with timeouts, size and concurrency limits."""

from __future__ import annotations

import json as _json
from typing import Any
from urllib.parse import urlsplit

from treq.client import HTTPClient
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.web.client import Agent, HTTPConnectionPool, ResponseDone
from twisted.web.http import PotentialDataLoss
from twisted.web.iweb import UNKNOWN_LENGTH

from kkobot.logs import Logger

log = Logger()

DEFAULT_TIMEOUT = 10.0
DEFAULT_MAX_BYTES = 1024 * 1024
DEFAULT_CONCURRENCY = 4


class HttpError(Exception):
    """A request that did not produce a whole response."""


class HttpTimeout(HttpError):
    """No whole response within the timeout (waiting for a free slot included)."""


class ResponseTooLarge(HttpError):
    """The body is larger than the limit; the connection was closed."""


def _where(url: str) -> str:
    """scheme://host/path of a URL, for logs: query strings often carry API keys."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}{':' + str(parts.port) if parts.port else ''}{parts.path}"


class HttpResponse:
    """
    A whole response, already read: C{code}, C{headers} (twisted Headers), C{body}
    (bytes), and, as in treq, C{content()}, C{text()} and C{json()} returning Deferreds.
    """

    def __init__(self, code: int, phrase: bytes, headers: Any, body: bytes, url: str) -> None:
        self.code = code
        self.phrase = phrase
        self.headers = headers
        self.body = body
        self.url = url

    def __repr__(self) -> str:
        return f"<HttpResponse {self.code} {_where(self.url)} {len(self.body)} bytes>"

    def _charset(self) -> str:
        from treq.content import _encoding_from_headers

        return _encoding_from_headers(self.headers) or "utf-8"

    def content(self) -> defer.Deferred[bytes]:
        return defer.succeed(self.body)

    def text(self, encoding: str | None = None) -> defer.Deferred[str]:
        try:
            return defer.succeed(self.body.decode(encoding or self._charset(), errors="replace"))
        except LookupError:
            return defer.succeed(self.body.decode("utf-8", errors="replace"))

    def json(self, **kwargs: Any) -> defer.Deferred[Any]:
        try:
            return defer.succeed(_json.loads(self.body.decode(self._charset(), errors="strict"), **kwargs))
        except (ValueError, LookupError):
            return defer.fail()


class _LimitedBody(Protocol):
    """Collects a body up to C{limit} bytes; past it, the connection is closed."""

    def __init__(self, limit: int, finished: defer.Deferred[bytes]) -> None:
        self.limit = limit
        self.finished = finished
        self.chunks: list[bytes] = []
        self.size = 0
        self.done = False

    def dataReceived(self, data: bytes) -> None:
        if self.done:
            return
        self.size += len(data)
        if self.size > self.limit:
            self.abort(ResponseTooLarge(f"response body over {self.limit} bytes"))
            return
        self.chunks.append(data)

    def abort(self, error: Exception) -> None:
        if self.done:
            return
        self.done = True
        if self.transport is not None:
            self.transport.stopProducing()
        self.finished.errback(Failure(error))

    def connectionLost(self, reason: Failure) -> None:
        if self.done:
            return
        self.done = True
        if reason.check(ResponseDone, PotentialDataLoss):
            self.finished.callback(b"".join(self.chunks))
        else:
            self.finished.errback(reason)


def readLimited(response: Any, limit: int) -> defer.Deferred[bytes]:
    """The whole body of a twisted.web response, or L{ResponseTooLarge}."""
    body: _LimitedBody

    def cancel(d: defer.Deferred[bytes]) -> None:
        body.abort(HttpTimeout("cancelled while reading the body"))

    finished: defer.Deferred[bytes] = defer.Deferred(cancel)
    body = _LimitedBody(limit, finished)
    if response.length is not UNKNOWN_LENGTH and response.length > limit:
        response.deliverBody(body)
        body.abort(ResponseTooLarge(f"response body of {response.length} bytes is over {limit}"))
        return finished
    response.deliverBody(body)
    return finished


class HttpPool:
    """One Agent and connection pool for every plugin; each plugin gets a L{PluginHttp}."""

    def __init__(
        self,
        reactor: Any,
        timeout: float = DEFAULT_TIMEOUT,
        maxBytes: int = DEFAULT_MAX_BYTES,
        concurrency: int = DEFAULT_CONCURRENCY,
        connectTimeout: float = 5.0,
    ) -> None:
        self.reactor = reactor
        self.timeout = timeout
        self.maxBytes = maxBytes
        self.concurrency = concurrency
        self.pool = HTTPConnectionPool(reactor, persistent=True)
        self.pool.maxPersistentPerHost = 4
        self.pool.cachedConnectionTimeout = 60
        self.client = HTTPClient(Agent(reactor, connectTimeout=connectTimeout, pool=self.pool))
        self._plugins: dict[str, PluginHttp] = {}

    def forPlugin(self, name: str, concurrency: int | None = None) -> PluginHttp:
        found = self._plugins.get(name)
        limit = concurrency or self.concurrency
        if found is None or found.limit != limit:
            found = self._plugins[name] = PluginHttp(self, name, limit)
        return found

    def close(self) -> defer.Deferred[None]:
        return self.pool.closeCachedConnections()


class PluginHttp:
    """
    C{context.http}: C{get/post/put/patch/delete/head/request(method, url, ...)} take
    treq's arguments (C{params}, C{headers}, C{json}, C{data}, C{auth}, ...) and fire
    with an L{HttpResponse} whose body is already read.

    Each call is bounded by C{timeout} seconds (waiting for a free slot included)
    and C{maxBytes} of body; at most C{limit} calls of this plugin run at once.
    Nothing blocks the reactor.
    """

    def __init__(self, pool: HttpPool, name: str, limit: int) -> None:
        self.pool = pool
        self.name = name
        self.limit = limit
        self.semaphore = defer.DeferredSemaphore(limit)
        self.inFlight = 0

    def request(
        self,
        method: str,
        url: str,
        *,
        timeout: float | None = None,
        maxBytes: int | None = None,
        **kwargs: Any,
    ) -> defer.Deferred[HttpResponse]:
        scheme = urlsplit(url).scheme.lower()
        if scheme not in ("http", "https"):
            return defer.fail(ValueError(f"only http and https URLs are fetched, not {scheme or url!r}"))
        for forbidden in ("reactor", "unbuffered"):
            kwargs.pop(forbidden, None)
        seconds = self.pool.timeout if timeout is None else timeout
        limit = self.pool.maxBytes if maxBytes is None else maxBytes
        clock: IReactorTime = self.pool.reactor

        def go() -> defer.Deferred[HttpResponse]:
            self.inFlight += 1
            d = self.pool.client.request(method, url, unbuffered=True, **kwargs)

            def read(response: Any) -> defer.Deferred[HttpResponse]:
                body = readLimited(response, limit)
                body.addCallback(
                    lambda data: HttpResponse(response.code, response.phrase, response.headers, data, url)
                )
                return body

            d.addCallback(read)

            def done(result: Any) -> Any:
                self.inFlight -= 1
                return result

            d.addBoth(done)
            return d

        d = self.semaphore.run(go)
        # Our own timer, not addTimeout: cancelling a request in flight fails it with
        # ResponseNeverReceived, which addTimeout would not recognise as its timeout.
        expired: list[bool] = []

        def expire() -> None:
            expired.append(True)
            d.cancel()

        timer = clock.callLater(seconds, expire)

        def settled(result: Any) -> Any:
            if timer.active():
                timer.cancel()
            return result

        d.addBoth(settled)

        def failed(failure: Failure) -> Failure:
            if expired:
                failure = Failure(HttpTimeout(f"no whole response from {_where(url)} within {seconds:g}s"))
            log.info(
                "[PLUGIN] {plugin}: HTTP {method} {where} failed: {error}",
                plugin=self.name, method=method.upper(), where=_where(url),
                error=failure.getErrorMessage(),
            )
            return failure

        d.addErrback(failed)
        return d

    def get(self, url: str, **kwargs: Any) -> defer.Deferred[HttpResponse]:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: Any) -> defer.Deferred[HttpResponse]:
        return self.request("POST", url, **kwargs)

    def put(self, url: str, **kwargs: Any) -> defer.Deferred[HttpResponse]:
        return self.request("PUT", url, **kwargs)

    def patch(self, url: str, **kwargs: Any) -> defer.Deferred[HttpResponse]:
        return self.request("PATCH", url, **kwargs)

    def delete(self, url: str, **kwargs: Any) -> defer.Deferred[HttpResponse]:
        return self.request("DELETE", url, **kwargs)

    def head(self, url: str, **kwargs: Any) -> defer.Deferred[HttpResponse]:
        return self.request("HEAD", url, **kwargs)
