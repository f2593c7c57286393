"""What every change made in the admin web needs: a login session, its CSRF token, and an audit entry."""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.template import Tag, tags

from kkobot.admin.web import audit
from kkobot.admin.web.guard import TokenGuard
from kkobot.admin.web.throttle import clientAddress
from kkobot.logs import Logger

log = Logger()

CSRF_FIELD = "csrf"


class AdminActions:
    """
    CSRF tokens are an HMAC of the session id under a key made at start: a page of
    another site can neither read one nor make one, and a stolen one dies with its
    session. Requests carrying only the Bearer token have no session: they cannot
    change anything here.
    """

    def __init__(self, guard: TokenGuard, database: Any, clock: Any) -> None:
        self.guard = guard
        self.database = database
        self.clock = clock
        self._key = secrets.token_bytes(32)
        if database is not None:
            audit.addSchema(database)

    def _session(self, request: IRequest) -> str | None:
        sid = self.guard.sessionOf(request)
        return sid if sid is not None and self.guard.sessions.valid(sid) else None

    def csrfFor(self, request: IRequest) -> str | None:
        sid = self._session(request)
        if sid is None:
            return None
        return hmac.new(self._key, sid.encode("ascii", "replace"), hashlib.sha256).hexdigest()

    def hidden(self, request: IRequest) -> Tag | str:
        """The form field every change form carries ("" without a session: its forms will not work)."""
        token = self.csrfFor(request)
        return tags.input(type="hidden", name=CSRF_FIELD, value=token) if token else ""

    def refusal(self, request: IRequest) -> str | None:
        """None when the request may change something, else why not (Korean, for the page)."""
        expected = self.csrfFor(request)
        if expected is None:
            return "로그인 세션이 필요합니다. 로그인 화면에서 다시 로그인하세요."
        given = field(request, CSRF_FIELD)
        if not hmac.compare_digest(given.encode("ascii", "replace"), expected.encode("ascii")):
            return "요청이 만료되었거나 잘못되었습니다. 페이지를 새로 고친 뒤 다시 시도하세요."
        return None

    def who(self, request: IRequest) -> str:
        sid = self._session(request) or ""
        digest = hashlib.sha256(sid.encode("ascii", "replace")).hexdigest()[:8]
        return f"admin session {digest} from {clientAddress(request)}"

    async def audit(self, request: IRequest, action: str, target: str | None,
                    detail: str | None = None) -> None:
        actor = self.who(request)
        log.info("[ADMIN] {actor}: {action} {target}", actor=actor, action=action, target=target or "")
        await audit.record(self.database, actor, action, target, detail, self.clock.seconds())


def field(request: IRequest, name: str) -> str:
    """A form (or query) value as text; "" when absent."""
    values = request.args.get(name.encode("ascii")) or [b""]
    return values[0].decode("utf-8", "replace").strip()
