"""The admin site: routes each path to its resource, behind the token guard, on its own endpoint."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer, endpoints
from twisted.internet.interfaces import IListeningPort, IReactorTime
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request, Site

from kkobot.logs import Logger
from kkobot.admin.metrics import Metrics
from kkobot.bridge.outbound import Outbound
from kkobot.admin.rates import MessageRates
from kkobot.bridge.registry import ClientRegistry
from kkobot.admin.web.api import ClientsResource, MessagesResource
from kkobot.admin.web.guard import Refusal, Sessions, TokenGuard
from kkobot.admin.web.health import Healthz, Readyz
from kkobot.admin.web.jsonio import jsonBody
from kkobot.admin.web.login import LoginResource, LogoutResource, loginForm, renderTag
from kkobot.admin.web.metricspage import MetricsPage
from kkobot.admin.web.page import CONTENT_SECURITY_POLICY
from kkobot.admin.web.settings import DEFAULT_HOSTS, normalHost
from kkobot.admin.web.status import StatusPage

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
    # The ClusterNode (outbound queue, deployment view); None in tools and tests.
    cluster: Any = None
    # For the pages that change things (None: those pages say they are unavailable).
    database: Any = None
    rooms: Any = None  # kkobot.rooms.RoomStore
    devices: Any = None  # kkobot.bridge.devices.DeviceStore (auth on)
    # The announcements' time zone (schedules.timezone): the schedule pages show and take times in it.
    scheduleTimezone: str = "Asia/Seoul"


# On every admin response: not framed by other sites (clickjacking), no content-type
# guessing, no address in Referer headers, and the policy the pages need.
SECURITY_HEADERS = {
    b"x-frame-options": b"DENY",
    b"x-content-type-options": b"nosniff",
    b"referrer-policy": b"no-referrer",
    b"content-security-policy": CONTENT_SECURITY_POLICY.encode("ascii"),
}


class AdminRequest(Request):
    """A request whose response carries L{SECURITY_HEADERS}, errors and 404s included."""

    def process(self) -> None:
        for name, value in SECURITY_HEADERS.items():
            self.setHeader(name, value)
        Request.process(self)


def requestHost(request: IRequest) -> str | None:
    """The Host header's name, without the port; None when there is none."""
    header = request.getHeader(b"host")
    if not header:
        return None
    text = header.decode("ascii", "replace").strip()
    if text.startswith("["):
        name = text[1:].partition("]")[0]
    else:
        name = text.rpartition(":")[0] if text.count(":") == 1 else text
    return normalHost(name)


class Unauthorized(Resource):
    """401: the login form for a browser asking for a page, JSON for everything else."""

    isLeaf = True

    def __init__(self, html: bool, refusal: Refusal | None = None) -> None:
        Resource.__init__(self)
        self.html = html
        self.retryAfter = refusal.retryAfter if refusal is not None else 0.0

    def render(self, request: IRequest) -> bytes:
        if self.retryAfter:
            wait = int(self.retryAfter + 0.999)
            request.setHeader(b"retry-after", str(wait).encode())
            return jsonBody(request, 429, {"error": f"too many wrong tokens: retry in {wait} s"})
        request.setHeader(b"www-authenticate", b'Bearer realm="kkobot"')
        if self.html:
            request.setResponseCode(401)
            return renderTag(request, loginForm())
        return jsonBody(request, 401, {"error": "unauthorized: send Authorization: Bearer <admin.token>"})


class MisdirectedHost(Resource):
    """400 for a Host the admin web is not (DNS rebinding: another site's name, our address)."""

    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        return jsonBody(request, 400, {"error": "this Host is not allowed: add it to admin.allowed_hosts"})


class NotFound(Resource):
    isLeaf = True

    def render(self, request: IRequest) -> bytes:
        return jsonBody(request, 404, {"error": "no such page"})


class AdminRoot(Resource):
    """Every path but /login needs the admin token or a session."""

    def __init__(self, parts: AdminParts, guard: TokenGuard,
                 allowedHosts: frozenset[str] = frozenset(DEFAULT_HOSTS)) -> None:
        Resource.__init__(self)
        self.guard = guard
        self.allowedHosts = allowedHosts
        self.login = LoginResource(guard)
        self.pages: dict[bytes, IResource] = {
            b"": StatusPage(parts.registry, parts.rates, parts.clock, parts.chatlog, parts.cluster),
            b"logout": LogoutResource(guard),
            b"healthz": Healthz(),
            b"readyz": Readyz(parts.factory, parts.chatlog, parts.cluster),
            b"metrics": MetricsPage(parts.metrics),
            b"api": Resource(),
        }
        if parts.database is not None:
            self.pages.update(writePages(parts, guard))
        self.pages[b"api"].putChild(b"clients", ClientsResource(parts.registry, parts.cluster))
        self.pages[b"api"].putChild(b"messages", MessagesResource(parts.outbound, parts.rates))

    def getChildWithDefault(self, path: bytes, request: IRequest) -> IResource:
        if requestHost(request) not in self.allowedHosts:
            self.guard.logRefused(request, "Host not in admin.allowed_hosts", 400)
            return MisdirectedHost()
        if path == b"login":
            return self.login
        refusal = self.guard.refusal(request)
        if refusal is not None:
            self.guard.logRefused(request, refusal)
            # A browser page gets the login form; the API, metrics and probes get JSON.
            return Unauthorized(html=path == b"" or path in HTML_PAGES, refusal=refusal)
        page = self.pages.get(path)
        if page is None:
            return NotFound()
        if page is self.pages[b"api"]:
            # Only the two API leaves exist; /api alone is not a page.
            return page if request.postpath and request.postpath[0] in page.children else NotFound()
        return page


HTML_PAGES = frozenset({b"rooms", b"devices", b"chatlog", b"schedules", b"audit"})


def writePages(parts: AdminParts, guard: TokenGuard) -> dict[bytes, IResource]:
    """The pages that change things (session + CSRF + audit) and the chat log search."""
    from kkobot.admin.web.actions import AdminActions
    from kkobot.admin.web.auditpage import AuditPage
    from kkobot.admin.web.chatlogpage import ChatLogPage
    from kkobot.admin.web.devicespage import DevicesPage
    from kkobot.admin.web.roomspage import RoomsPage
    from kkobot.admin.web.schedulespage import SchedulesPage

    actions = AdminActions(guard, parts.database, parts.clock)
    return {
        b"rooms": RoomsPage(actions, parts.rooms),
        b"devices": DevicesPage(actions, parts.devices),
        b"chatlog": ChatLogPage(parts.database, parts.rooms),
        b"schedules": SchedulesPage(actions, parts.database, parts.rooms, parts.scheduleTimezone),
        b"audit": AuditPage(parts.database),
    }


class AdminSite(Site):
    """A Site whose access log is kkobot's debug log (no separate file, no tokens in it)."""

    noisy = False
    requestFactory = AdminRequest

    def __init__(self, root: AdminRoot) -> None:
        Site.__init__(self, root)
        self.guard = root.guard

    def log(self, request: Any) -> None:
        log.debug(
            "[ADMIN] {method} {path} {code}",
            method=request.method.decode("ascii", "replace"),
            path=request.path.decode("utf-8", "replace"),
            code=request.code,
        )


def makeSite(parts: AdminParts, token: str,
             allowedHosts: frozenset[str] = frozenset(DEFAULT_HOSTS)) -> AdminSite:
    guard = TokenGuard(token, Sessions(parts.clock))
    return AdminSite(AdminRoot(parts, guard, allowedHosts))


class AdminService(Service):
    """The admin web's listening port (its own endpoint, apart from the bridges')."""

    def __init__(self, endpoint: str, parts: AdminParts, token: str, reactor: Any = None,
                 allowedHosts: frozenset[str] | None = None) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.endpoint = endpoint
        self.reactor = reactor
        if allowedHosts is None:
            from kkobot.admin.web.settings import allowedHosts as hostsFor

            allowedHosts = hostsFor(endpoint)
        self.site = makeSite(parts, token, allowedHosts)
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
        self.site.guard.refusals.stop()
        if self.port is not None:
            port, self.port = self.port, None
            return defer.maybeDeferred(port.stopListening)
        return None
