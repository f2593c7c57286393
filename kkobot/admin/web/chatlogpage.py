"""/chatlog: the chat log by room, sender, text and time, newest first, a page at a time."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from twisted.web.iweb import IRequest
from twisted.web.template import Tag, tags

from kkobot.admin.web.actions import field
from kkobot.admin.web.asyncpage import AsyncPage
from kkobot.admin.web.chatlogsearch import Query, search
from kkobot.admin.web.layout import adminPage
from kkobot.admin.web.status import cell, table

COLUMNS = ["시각", "방", "보낸 사람", "메시지"]


def _time(value: str) -> str:
    """A datetime-local input (YYYY-MM-DDTHH:MM) as the column's text; '' when unusable."""
    value = value.replace("T", " ").strip()
    if len(value) == 16:
        value += ":00"
    return value if len(value) == 19 and value[4] == "-" and value[13] == ":" else ""


class ChatLogPage(AsyncPage):
    def __init__(self, database: Any, rooms: Any) -> None:
        AsyncPage.__init__(self)
        self.database = database
        self.rooms = rooms

    async def page(self, request: IRequest) -> Tag:
        before = field(request, "before")
        query = Query(room=field(request, "room"), sender=field(request, "sender"),
                      text=field(request, "q"), since=_time(field(request, "since")),
                      until=_time(field(request, "until")),
                      before=int(before) if before.isdigit() else None)
        found = await self.database.runInteraction(search, self.database.sql, query)
        rooms = await self.rooms.list(limit=300) if self.rooms is not None else []
        rows = [
            tags.tr(
                cell("시각", str(r[1])),
                cell("방", tags.span(r[3] or r[4], title=r[4])),
                cell("보낸 사람", tags.span("봇 응답", class_="muted") if r[8] else tags.span(r[5] or "", title=r[6])),
                cell("메시지", r[7]),
                class_="chat", **{"data-id": str(r[0])},
            )
            for r in found.rows
        ]
        more: Any = ""
        if found.nextBefore is not None:
            params = {k: field(request, k) for k in ("room", "sender", "q", "since", "until") if field(request, k)}
            params["before"] = str(found.nextBefore)
            label = "이전 기록 계속 검색" if found.windowEnded else "다음 페이지 (더 오래된 메시지)"
            more = tags.p(tags.a(label, href="/chatlog?" + urlencode(params), class_="button more"))
        return adminPage(
            "채팅 로그", "/chatlog",
            self.form(request, rooms),
            table(COLUMNS, rows, "찾은 메시지가 없습니다.", set(), "chatlog"),
            more,
        )

    def form(self, request: IRequest, rooms: list[Any]) -> Tag:
        chosen = field(request, "room")
        options = [tags.option("모든 방", value="")]
        for room in rooms:
            option = tags.option(f"{room.name} ({room.roomId})", value=room.roomId)
            if room.roomId == chosen:
                option(selected="selected")
            options.append(option)
        return tags.form(
            tags.label("방", tags.select(*options, name="room", id="room")),
            tags.label("보낸 사람 (이름 또는 userHash)", tags.input(name="sender", value=field(request, "sender"))),
            tags.label("내용", tags.input(name="q", id="q", value=field(request, "q"), type="search")),
            tags.label("부터", tags.input(name="since", type="datetime-local", value=field(request, "since"))),
            tags.label("까지", tags.input(name="until", type="datetime-local", value=field(request, "until"))),
            tags.button("검색", type="submit"),
            method="get", action="/chatlog", class_="search",
        )
