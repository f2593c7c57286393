"""The admin pages' frame: the title bar with the menu (every page, phone width too) and logout."""

from __future__ import annotations

from twisted.web.template import Tag, tags

from kkobot.admin.web.page import page

# (path, label): the menu, in order. Schedule pages live under /schedules (schedulespage.py).
NAV = (
    ("/", "상태"),
    ("/devices", "기기"),
    ("/rooms", "방"),
    ("/chatlog", "채팅 로그"),
    ("/schedules", "예약 메시지"),
    ("/audit", "변경 기록"),
)


def nav(active: str) -> Tag:
    links = []
    for path, label in NAV:
        link = tags.a(label, href=path)
        if path == active:
            link(class_="active", **{"aria-current": "page"})
        links.append(link)
    return tags.nav(*links, class_="menu")


def adminPage(title: str, active: str, *body: object, refresh: int | None = None) -> Tag:
    return page(
        f"kkobot {title}",
        tags.div(
            tags.h1(title),
            tags.form(tags.button("로그아웃", type="submit"), method="post", action="/logout"),
            class_="top",
        ),
        nav(active),
        *body,
        refresh=refresh,
    )


def notice(text: str | None, error: bool = False) -> Tag | str:
    if not text:
        return ""
    return tags.p(text, class_="notice error" if error else "notice ok", role="status")
