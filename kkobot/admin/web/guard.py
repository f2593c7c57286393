"""Who may use the admin web: the admin token (Bearer header) or a session cookie from the login form."""

from __future__ import annotations

import hmac
import secrets
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.web.iweb import IRequest

from kkobot.admin.web.throttle import LoginThrottle, RefusalLog, clientAddress

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


@dataclass(frozen=True)
class Refusal:
    """Why a request may not proceed (for the log, no secrets); C{retryAfter} > 0: 429."""

    why: str
    retryAfter: float = 0.0

    @property
    def status(self) -> int:
        return 429 if self.retryAfter else 401


class TokenGuard:
    """Checks requests against the admin token; the token is never logged or echoed."""

    def __init__(self, token: str, sessions: Sessions, throttle: LoginThrottle | None = None,
                 refusals: RefusalLog | None = None) -> None:
        self._token = token.encode("utf-8")
        self.sessions = sessions
        self.throttle = throttle or LoginThrottle(sessions.clock)
        self.refusals = refusals or RefusalLog(sessions.clock)

    def tryToken(self, request: IRequest, candidate: bytes, wrong: str = "wrong token") -> Refusal | None:
        """
        A guess of the token from the request's address: while the address backs off,
        refused unheard (429); a wrong one counts toward its backoff.
        """
        address = clientAddress(request)
        wait = self.throttle.retryAfter(address)
        if wait:
            return Refusal(f"too many wrong tokens; backing off {wait:.0f} s", wait)
        if self.tokenMatches(candidate):
            self.throttle.succeeded(address)
            return None
        self.throttle.failed(address)
        return Refusal(wrong)

    def tokenMatches(self, candidate: str | bytes) -> bool:
        if isinstance(candidate, str):
            candidate = candidate.encode("utf-8", "replace")
        # Constant time, so response timing does not reveal how much of a guess was right.
        return hmac.compare_digest(candidate, self._token)

    def refusal(self, request: IRequest) -> Refusal | None:
        """None when the request may proceed, else why not."""
        header = request.getHeader(b"authorization")
        if header is not None:
            scheme, _, value = header.partition(b" ")
            if scheme.lower() != b"bearer" or not value.strip():
                return Refusal("malformed Authorization header")
            return self.tryToken(request, value.strip())
        cookie = request.getCookie(COOKIE)
        if cookie is not None:
            # 256 random bits: not guessable, so no backoff (a stale cookie is not a guess).
            if self.sessions.valid(cookie.decode("ascii", "replace")):
                return None
            return Refusal("expired or unknown session")
        return Refusal("no token")

    def sessionOf(self, request: IRequest) -> str | None:
        cookie = request.getCookie(COOKIE)
        return cookie.decode("ascii", "replace") if cookie is not None else None


    def logRefused(self, request: Any, refusal: Refusal | str, status: int | None = None) -> None:
        """Into the summing refusal log (a flood of refusals is a line a minute)."""
        why = refusal if isinstance(refusal, str) else refusal.why
        if status is None:
            status = 401 if isinstance(refusal, str) else refusal.status
        self.refusals.refused(
            clientAddress(request), status,
            request.method.decode("ascii", "replace"),
            request.path.decode("utf-8", "replace")[:200],
            why,
        )
