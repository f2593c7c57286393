"""/login (a form that trades the admin token for a session cookie) and /logout."""

from __future__ import annotations

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.template import Tag, flattenString, tags

from kkobot.logs import Logger
from kkobot.admin.web.guard import COOKIE, SESSION_SECONDS, Refusal, TokenGuard
from kkobot.admin.web.page import page

log = Logger()


def loginForm(message: str | None = None) -> Tag:
    return page(
        "kkobot 로그인",
        tags.div(
            tags.h1("kkobot 관리"),
            tags.p(message, class_="error") if message else "",
            tags.form(
                tags.label("관리자 토큰 (admin.token)", for_="token"),
                tags.input(type="password", name="token", id="token", autocomplete="current-password",
                           required="required"),
                tags.button("로그인", type="submit"),
                method="post", action="/login", class_="login",
            ),
            class_="main",
        ),
    )


def renderTag(request: IRequest, tag: Tag) -> bytes:
    """Flatten a tag tree that holds no Deferreds (ours never do)."""
    request.setHeader(b"content-type", b"text/html; charset=utf-8")
    request.setHeader(b"cache-control", b"no-store")
    result: list[bytes] = []
    flattenString(request, tag).addCallback(result.append)
    return b"<!DOCTYPE html>\n" + result[0]


class LoginResource(Resource):
    isLeaf = True

    def __init__(self, guard: TokenGuard) -> None:
        Resource.__init__(self)
        self.guard = guard

    def render_GET(self, request: IRequest) -> bytes:
        return renderTag(request, loginForm())

    def render_POST(self, request: IRequest) -> bytes:
        given = (request.args.get(b"token") or [b""])[0]
        refusal = (self.guard.tryToken(request, given, "login with a wrong token") if given
                   else Refusal("login without a token"))
        if refusal is not None:
            self.guard.logRefused(request, refusal)
            request.setResponseCode(refusal.status)
            if refusal.retryAfter:
                wait = int(refusal.retryAfter + 0.999)
                request.setHeader(b"retry-after", str(wait).encode())
                return renderTag(request, loginForm(
                    f"잘못된 토큰이 너무 많이 입력되었습니다. {wait}초 후에 다시 시도하세요."))
            return renderTag(request, loginForm("토큰이 맞지 않습니다."))
        sid = self.guard.sessions.create()
        # Secure: sent only over HTTPS (and to localhost); HttpOnly: not readable by page
        # scripts; SameSite=Strict: not sent on requests started by other sites.
        request.addCookie(
            COOKIE, sid.encode("ascii"), path=b"/", max_age=str(SESSION_SECONDS).encode(),
            secure=True, httpOnly=True, sameSite="strict",
        )
        log.info("[ADMIN] login from {address}", address=request.getClientAddress().host)
        request.setResponseCode(303)
        request.setHeader(b"location", b"/")
        return b""


class LogoutResource(Resource):
    isLeaf = True

    def __init__(self, guard: TokenGuard) -> None:
        Resource.__init__(self)
        self.guard = guard

    def render_POST(self, request: IRequest) -> bytes:
        sid = self.guard.sessionOf(request)
        if sid is not None:
            self.guard.sessions.end(sid)
        request.addCookie(COOKIE, b"", path=b"/", max_age=b"0", secure=True, httpOnly=True,
                          sameSite="strict")
        request.setResponseCode(303)
        request.setHeader(b"location", b"/login")
        return b""
