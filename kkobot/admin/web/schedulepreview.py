"""A schedule's preview before it is saved: its next send times and what each send carries, as the runner will send it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from twisted.web.template import Tag, tags

from kkobot.admin.web.scheduleform import DAY_LABELS, describeKorean
from kkobot.announcements.content import TEXT, partsOf
from kkobot.announcements.rules import Recurrence

COUNT = 5
PART_TITLES = {"images_1": "이미지 묶음 1", "images_2": "이미지 묶음 2"}


def preview(values: dict[str, Any], rule: Recurrence, now: datetime, rooms: list[Any]) -> Tag:
    """The preview section: when (the next L{COUNT} sends) and what (the text, the image groups)."""
    slots = rule.upcoming(max(now, rule.validFrom) - _SECOND, COUNT)
    names = {r.roomId: r.name for r in rooms}
    room = values["target_room_id"]
    parts, problems = partsOf(values)
    shown = []
    for part in parts:
        if part.name == TEXT:
            shown.append(tags.pre(part.logged, class_="message"))
            continue
        sources = [s for reply in part.replies for s in _sources(reply)]
        wait = values.get("media_wait_time_1" if part.name == "images_1" else "media_wait_time_2")
        shown.append(tags.div(
            tags.b(PART_TITLES.get(part.name, part.name)),
            f" · {len(sources)}장 · 대기 {wait or '기본'}{' ms' if wait else ''}",
            tags.ul(*[tags.li(s if s.startswith("http") else f"base64 {len(s)}자") for s in sources]),
            class_="images"))
    interval = values.get("send_interval_seconds") or 0
    return tags.section(
        tags.h2("미리보기"),
        tags.p(f"받는 방: {names.get(room, room)} ({room}) · 봇 {values['target_bot_name']} · "
               f"{describeKorean(rule)}"),
        tags.p(f"유효 기간: {values['valid_from']} ~ {values['valid_until']}", class_="muted"),
        tags.h2("다음 발송 시각"),
        tags.ol(*[tags.li(f"{s:%Y-%m-%d} ({DAY_LABELS[s.weekday()]}) {s:%H:%M:%S}") for s in slots], class_="slots")
        if slots else tags.p("보낼 시각이 없습니다.", class_="error"),
        tags.h2("보낼 내용" + (f" (부분 사이 {interval}초)" if len(parts) > 1 else "")),
        *shown,
        *[tags.p(f"보낼 수 없는 부분: {p}", class_="error") for p in problems],
        class_="preview",
    )


def _sources(reply: Any) -> list[str]:
    """The image sources of a media reply (the text after its MEDIA_URL: / IMAGE_BASE64: prefix)."""
    text = reply.text
    for prefix in ("MEDIA_URL:", "IMAGE_BASE64:"):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return [s for s in text.split("|||") if s]


_SECOND = datetime(2000, 1, 1, 0, 0, 1) - datetime(2000, 1, 1)
