"""/audit: the admin web's changes, newest first (kb_admin_audit)."""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.template import Tag, tags

from kkobot.admin.web import audit
from kkobot.admin.web.actions import field
from kkobot.admin.web.asyncpage import AsyncPage
from kkobot.admin.web.layout import adminPage
from kkobot.admin.web.status import cell, table

COLUMNS = ["시각", "누가", "무엇을", "대상", "내용"]
PAGE = 50


class AuditPage(AsyncPage):
    def __init__(self, database: Any) -> None:
        AsyncPage.__init__(self)
        self.database = database

    async def page(self, request: IRequest) -> Tag:
        before = field(request, "before")
        entries = await audit.recent(self.database, int(before) if before.isdigit() else None, PAGE)
        rows = [tags.tr(cell("시각", e.at), cell("누가", e.actor), cell("무엇을", e.action),
                        cell("대상", e.target or "—"), cell("내용", e.detail or ""), class_="audit")
                for e in entries]
        more = tags.p(tags.a("더 보기", href=f"/audit?before={entries[-1].id}", class_="button")) if (
            len(entries) == PAGE) else ""
        return adminPage("변경 기록", "/audit",
                         table(COLUMNS, rows, "기록된 변경이 없습니다.", set(), "audit"), more)
