"""Who may use the admin web: the admin token (Bearer header) or a session cookie from the login form."""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.web.iweb import IRequest

from kkobot.logs import Logger

log = Logger()

COOKIE = b"kkobot_admin"
SESSION_SECONDS = 12 * 3600
# Each login makes a session; the oldest go first, so repeated logins cannot grow memory.
MAX_SESSIONS = 64


class Sessions:
    """Random session ids handed out by the login form, kept in memory until they expire."""

    def __init__(self, clock: IReactorTime, lifetime: float = SESSION_SECONDS) -> None:
        self.clock = clock
        self.lifetime = lifetime
        self._expiry: OrderedDict[str, float] = OrderedDict()

    def create(self) -> str:
        sid = secrets.token_urlsafe(32)
        self._expiry[sid] = self.clock.seconds() + self.lifetime
        while len(self._expiry) > MAX_SESSIONS:
            self._expiry.popitem(last=False)
        return sid

    def valid(self, sid: str) -> bool:
        expiry = self._expiry.get(sid)
        if expiry is None:
            return False
        if expiry <= self.clock.seconds():
            del self._expiry[sid]
            return False
        return True

    def end(self, sid: str) -> None:
        self._expiry.pop(sid, None)


class TokenGuard:
    """Checks requests against the admin token; the token is never logged or echoed."""

    def __init__(self, token: str, sessions: Sessions) -> None:
        self._token = token.encode("utf-8")
        self.sessions = sessions

    def tokenMatches(self, candidate: str | bytes) -> bool:
        if isinstance(candidate, str):
            candidate = candidate.encode("utf-8", "replace")
        # Constant time, so response timing does not reveal how much of a guess was right.
        return hmac.compare_digest(candidate, self._token)

    def refusal(self, request: IRequest) -> str | None:
        """None when the request may proceed, else why not (for the log, no secrets)."""
        header = request.getHeader(b"authorization")
        if header is not None:
            scheme, _, value = header.partition(b" ")
            if scheme.lower() != b"bearer" or not value.strip():
                return "malformed Authorization header"
            return None if self.tokenMatches(value.strip()) else "wrong token"
        cookie = request.getCookie(COOKIE)
        if cookie is not None:
            return None if self.sessions.valid(cookie.decode("ascii", "replace")) else "expired or unknown session"
        return "no token"

    def sessionOf(self, request: IRequest) -> str | None:
        cookie = request.getCookie(COOKIE)
        return cookie.decode("ascii", "replace") if cookie is not None else None


def logRefused(request: Any, why: str) -> None:
    log.warn(
        "[ADMIN] 401 {method} {path} from {address}: {why}",
        method=request.method.decode("ascii", "replace"),
        path=request.path.decode("utf-8", "replace"),
        address=getattr(request.getClientAddress(), "host", "?"),
        why=why,
    )
