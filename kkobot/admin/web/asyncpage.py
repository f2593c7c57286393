"""Pages whose content comes from the database: rendered when the query answers, never blocking the reactor."""

from __future__ import annotations

from typing import Any, Awaitable, Callable
from urllib.parse import quote

from twisted.internet import defer
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.template import Tag, tags

from kkobot.admin.web.layout import adminPage
from kkobot.admin.web.login import renderTag
from kkobot.logs import Logger

log = Logger()


class Redirect(Exception):
    """A finished change: 303 to C{location} (the page showing its result)."""

    def __init__(self, location: str) -> None:
        self.location = location


def withMessage(path: str, message: str, error: bool = False) -> str:
    sep = "&" if "?" in path else "?"
    return f"{path}{sep}{'error' if error else 'done'}={quote(message)}"


def renderLater(request: IRequest, make: Callable[[], Awaitable[Tag]]) -> Any:
    """Render the tag C{make()} gives (a coroutine); L{Redirect} answers 303."""
    gone: list[bool] = []
    request.notifyFinish().addErrback(lambda _: gone.append(True))
    d = defer.ensureDeferred(make())

    def rendered(tag: Tag) -> None:
        if not gone:
            request.write(renderTag(request, tag))
            request.finish()

    def failed(failure: Any) -> None:
        if gone:
            return
        if failure.check(Redirect):
            request.setResponseCode(303)
            request.setHeader(b"location", failure.value.location.encode("utf-8"))
            request.finish()
            return
        log.failure("[ADMIN] {path} failed", failure, path=request.path.decode("utf-8", "replace"))
        request.setResponseCode(500)
        request.write(renderTag(request, adminPage(
            "오류", "", tags.p("처리 중 오류가 발생했습니다 (데이터베이스 연결을 확인하세요): "
                             + failure.getErrorMessage(), class_="error"))))
        request.finish()

    d.addCallbacks(rendered, failed)
    return NOT_DONE_YET


class AsyncPage(Resource):
    """A leaf whose GET is C{page(request)} and whose POST (if any) is C{change(request)}."""

    isLeaf = True

    async def page(self, request: IRequest) -> Tag:
        raise NotImplementedError

    def render_GET(self, request: IRequest) -> Any:
        return renderLater(request, lambda: self.page(request))


class ChangePage(AsyncPage):
    """An L{AsyncPage} whose POSTs change things: session and CSRF checked first (403 otherwise)."""

    def __init__(self, actions: Any) -> None:
        Resource.__init__(self)
        self.actions = actions

    async def change(self, request: IRequest) -> Tag:
        raise NotImplementedError

    def render_POST(self, request: IRequest) -> Any:
        refusal = self.actions.refusal(request)
        if refusal is not None:
            self.actions.guard.logRefused(request, "change without a session or CSRF token", 403)
            request.setResponseCode(403)
            return renderTag(request, adminPage("거부됨", "", tags.p(refusal, class_="error")))
        return renderLater(request, lambda: self.change(request))
