"""/schedules: the place of the announcement pages (kb_schedule): list, create, edit, pause, send log."""

from __future__ import annotations

from twisted.web.iweb import IRequest
from twisted.web.template import Tag, tags

from kkobot.admin.web.asyncpage import AsyncPage
from kkobot.admin.web.layout import adminPage


class SchedulesPage(AsyncPage):
    """Until the schedule pages are built, says so; they replace this resource at /schedules."""

    async def page(self, request: IRequest) -> Tag:
        return adminPage("예약 메시지", "/schedules", tags.p(
            "예약 메시지 관리 화면은 준비 중입니다. 지금은 kkobot-admin schedules 명령을 쓰세요.",
            class_="muted"))
