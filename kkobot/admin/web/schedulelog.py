"""The send log (kb_schedule_logs) in the admin web: of one schedule or of all, newest first, a page at a time by id."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from twisted.web.template import Tag, tags

from kkobot.admin.web.status import cell, table
from kkobot.announcements.store import IN_FLIGHT

PAGE_SIZE = 50
COLUMNS = ["기록", "예약", "예정 시각", "시작", "결과", "보낸 것", "걸린 시간", "오류"]
RESULT_LABELS = {"success": "성공", "failed": "실패", "partial": "일부만"}
RESULT_CLASS = {"success": "ok", "failed": "error", "partial": "pending"}
PART_LABELS = {"text": "문구", "images_1": "이미지 1", "images_2": "이미지 2"}


def resultTag(entry: dict[str, Any] | None) -> Tag | str:
    """A send's outcome, in Korean ("보내는 중" while it is under way)."""
    if entry is None:
        return tags.span("—", class_="muted")
    status = entry.get("status") or ""
    if isSending(entry):
        return tags.span("보내는 중", class_="pending", **{"data-result": "sending"})
    return tags.span(RESULT_LABELS.get(status, status), class_=RESULT_CLASS.get(status, "muted"),
                     **{"data-result": status})


def isSending(entry: dict[str, Any]) -> bool:
    return entry.get("status") == "partial" and entry.get("error_message") == IN_FLIGHT


def _parts(value: Any) -> str:
    if not value:
        return "—"
    return ", ".join(PART_LABELS.get(p, p) for p in str(value).split(","))


def logTable(entries: list[dict[str, Any]]) -> Tag:
    rows = []
    for e in entries:
        duration = e.get("duration_ms")
        rows.append(tags.tr(
            cell("기록", str(e["id"])),
            cell("예약", tags.a(f"#{e['schedule_id']}", href=f"/schedules/log?id={e['schedule_id']}")),
            cell("예정 시각", str(e.get("scheduled_at") or "—")),
            cell("시작", str(e.get("started_at") or "—")),
            cell("결과", resultTag(e)),
            cell("보낸 것", _parts(e.get("send_components"))),
            cell("걸린 시간", f"{duration} ms" if duration is not None else "—"),
            cell("오류", "" if isSending(e) else (e.get("error_message") or "")),
            class_="send", **{"data-id": str(e["id"]), "data-schedule": str(e["schedule_id"])},
        ))
    return table(COLUMNS, rows, "발송 기록이 없습니다.", set(), "sendlog")


def moreLink(entries: list[dict[str, Any]], scheduleId: int | None) -> Tag | str:
    """The next (older) page's link when this page is full."""
    if len(entries) < PAGE_SIZE:
        return ""
    params = {"id": str(scheduleId)} if scheduleId is not None else {}
    params["before"] = str(entries[-1]["id"])
    return tags.p(tags.a("다음 페이지 (더 오래된 기록)", href="/schedules/log?" + urlencode(params),
                         class_="button more"))
