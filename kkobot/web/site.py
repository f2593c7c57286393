"""The admin site: routes each path to its resource, behind the token guard, on its own endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, endpoints
from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import Site

from kkobot.logs import Logger
from kkobot.metrics import Metrics
from kkobot.outbound import Outbound
from kkobot.rates import MessageRates
from kkobot.registry import ClientRegistry
from kkobot.web.api import ClientsResource, MessagesResource
from kkobot.web.guard import Sessions, TokenGuard, logRefused
from kkobot.web.health import Healthz, Readyz
from kkobot.web.jsonio import jsonBody
from kkobot.web.login import LoginResource, LogoutResource, loginForm, renderTag
from kkobot.web.metricspage import MetricsPage
from kkobot.web.status import StatusPage

log = Logger()


@dataclass
class AdminParts:
    """What the admin pages read and steer, taken from the running server."""

    registry: ClientRegistry
    outbound: Outbound
    metrics: Metrics
    rates: MessageRates
    factory: Any  # the BridgeFactory (listening state)
    chatlog: Any
    clock: IReactorTime


class Unauthorized(Resource):
    """401: the login form for a browser asking for a page, JSON for everything else."""

    isLeaf = True

    def __init__(self, html: bool) -> None:
        Resource.__init__(self)
        self.html = html

    def render(self, request: IRequest) -> bytes:
        request.setHeader(b"www-authenticate", b'Bearer realm="kkobot"')
        if self.html:
            request.setResponseCode(401)
            return renderTag(request, loginForm())
        return jsonBody(request, 401, {"error": "unauthorized: send Authorization: Bearer <admin.token>"})


class NotFound(Resource):
    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        return jsonBody(request, 404, {"error": "no such page"})


class AdminRoot(Resource):
    """Every path but /login needs the admin token or a session."""

    def __init__(self, parts: AdminParts, guard: TokenGuard) -> None:
        Resource.__init__(self)
        self.guard = guard
        self.login = LoginResource(guard)
        self.pages: dict[bytes, IResource] = {
            b"": StatusPage(parts.registry, parts.rates, parts.clock, parts.chatlog),
            b"logout": LogoutResource(guard),
            b"healthz": Healthz(),
            b"readyz": Readyz(parts.factory, parts.chatlog),
            b"metrics": MetricsPage(parts.metrics),
            b"api": Resource(),
        }
        self.pages[b"api"].putChild(b"clients", ClientsResource(parts.registry))
        self.pages[b"api"].putChild(b"messages", MessagesResource(parts.outbound, parts.rates))

    def getChildWithDefault(self, path: bytes, request: IRequest) -> IResource:
        if path == b"login":
            return self.login
        why = self.guard.refusal(request)
        if why is not None:
            logRefused(request, why)
            return Unauthorized(html=path == b"")
        page = self.pages.get(path)
        if page is None:
            return NotFound()
        if page is self.pages[b"api"]:
            # Only the two API leaves exist; /api alone is not a page.
            return page if request.postpath and request.postpath[0] in page.children else NotFound()
        return page


class AdminSite(Site):
    """A Site whose access log is kkobot's debug log (no separate file, no tokens in it)."""

    noisy = False

    def log(self, request: Any) -> None:
        log.debug(
            "[ADMIN] {method} {path} {code}",
            method=request.method.decode("ascii", "replace"),
            path=request.path.decode("utf-8", "replace"),
            code=request.code,
        )


def makeSite(parts: AdminParts, token: str) -> AdminSite:
    guard = TokenGuard(token, Sessions(parts.clock))
    return AdminSite(AdminRoot(parts, guard))


class AdminService(Service):
    """The admin web's listening port (its own endpoint, apart from the bridges')."""

    def __init__(self, endpoint: str, parts: AdminParts, token: str, reactor: Any = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.endpoint = endpoint
        self.reactor = reactor
        self.site = makeSite(parts, token)
        self.port: IListeningPort | None = None
        self._listening: defer.Deferred[IListeningPort] | None = None

    def startService(self) -> None:
        Service.startService(self)
        d = endpoints.serverFromString(self.reactor, self.endpoint).listen(self.site)
        d.addCallback(self._listened)
        d.addErrback(self._notListening)
        self._listening = d

    def _listened(self, port: IListeningPort) -> IListeningPort:
        self.port = port
        log.info("[ADMIN] admin web listening on {endpoint}", endpoint=self.endpoint)
        return port

    def _notListening(self, failure: Any) -> None:
        # The bridges keep running without their admin page; say so loudly.
        log.error(
            "[ADMIN] cannot listen on {endpoint}: {error}",
            endpoint=self.endpoint, error=failure.getErrorMessage(),
        )

    def whenListening(self) -> defer.Deferred[IListeningPort | None]:
        """The bound port (None if binding failed); tests learn a port-0 number from it."""
        assert self._listening is not None, "start the service first"
        d: defer.Deferred[IListeningPort | None] = defer.Deferred()
        self._listening.addBoth(lambda result: (d.callback(self.port), result)[1])
        return d

    def stopService(self) -> defer.Deferred[None] | None:
        Service.stopService(self)
        if self.port is not None:
            port, self.port = self.port, None
            return defer.maybeDeferred(port.stopListening)
        return None
