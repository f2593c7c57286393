"""/schedules: the announcement pages (kb_schedule): list, create and edit with a preview, pause, remove, send log."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from twisted.web.iweb import IRequest
from twisted.web.template import Tag, tags

from kkobot.admin.web.actions import field
from kkobot.admin.web.asyncpage import ChangePage, Redirect, withMessage
from kkobot.admin.web.layout import adminPage, notice
from kkobot.admin.web.scheduleform import FormError, ScheduleForm, describeKorean
from kkobot.admin.web.schedulelog import PAGE_SIZE, isSending, logTable, moreLink, resultTag
from kkobot.admin.web.schedulepreview import preview
from kkobot.admin.web.status import cell, table
from kkobot.announcements import manage
from kkobot.announcements.rules import Recurrence, RuleError, recurrence

STATUS_LABELS = {"active": "활성", "inactive": "일시정지", "completed": "완료", "error": "오류"}
STATUS_CLASS = {"active": "ok", "inactive": "pending", "error": "error"}
COLUMNS = ["ID", "제목", "방", "일정", "상태", "다음 발송", "마지막 발송", "관리"]
# A page showing a send due this soon (or under way) reloads itself to show its result.
SOON = timedelta(minutes=2)
REFRESH_SECONDS = 5


def _id(text: str) -> int | None:
    return int(text) if text.isdigit() else None


class SchedulesPage(ChangePage):
    """
    GET /schedules, /schedules/new, /schedules/edit?id=N, /schedules/log[?id=N&before=M];
    POST /schedules/save (step=preview shows the preview, step=save stores it),
    /schedules/status, /schedules/remove.
    """

    def __init__(self, actions: Any, database: Any, rooms: Any, timezone: str = "Asia/Seoul") -> None:
        ChangePage.__init__(self, actions)
        self.database = database
        self.rooms = rooms
        self.timezone = timezone
        self.tz = ZoneInfo(timezone)

    def now(self) -> datetime:
        """The schedules' wall-clock time (the runner's)."""
        return datetime.fromtimestamp(self.actions.clock.seconds(), self.tz).replace(tzinfo=None, microsecond=0)

    async def page(self, request: IRequest) -> Tag:
        sub = request.postpath[0] if request.postpath else b""
        if sub == b"new":
            return await self.formPage(request, ScheduleForm(), None)
        if sub == b"edit":
            scheduleId = _id(field(request, "id"))
            row = await manage.getSchedule(self.database, scheduleId) if scheduleId is not None else None
            if row is None:
                return adminPage("예약 메시지", "/schedules", tags.p("그런 예약 메시지가 없습니다.", class_="error"))
            return await self.formPage(request, ScheduleForm.fromRow(row, self.now()), scheduleId)
        if sub == b"log":
            return await self.logPage(request)
        return await self.listPage(request)

    async def listPage(self, request: IRequest) -> Tag:
        status = field(request, "status")
        if status not in STATUS_LABELS:
            status = ""
        schedules = await manage.listSchedules(self.database, status or None)
        last = await manage.lastSends(self.database)
        names = {r.roomId: r.name for r in await self.knownRooms()}
        now = self.now()
        csrf = self.actions.hidden(request)
        rows, soon = [], False
        for row in reversed(schedules):
            rule = _rule(row)
            upcoming = rule.nextAfter(now) if rule is not None and row.get("status") == "active" else None
            sent = last.get(int(row["id"]))
            soon = soon or (upcoming is not None and upcoming - now <= SOON) or bool(sent and isSending(sent))
            rows.append(self.row(row, rule, upcoming, sent, csrf, names))
        filters = tags.p(*[
            tags.a(STATUS_LABELS.get(s, "전체"), href=f"/schedules?status={s}" if s else "/schedules",
                   class_="chip active" if s == status else "chip")
            for s in ("", *STATUS_LABELS)], class_="chips")
        return adminPage(
            "예약 메시지", "/schedules",
            notice(field(request, "done")), notice(field(request, "error"), error=True),
            tags.p(tags.a("＋ 새 예약 메시지", href="/schedules/new", class_="button new"), " ",
                   tags.a("전체 발송 기록", href="/schedules/log", class_="button"), class_="chips"),
            tags.p(f"시각은 {self.timezone} 기준입니다. 지금 {now:%Y-%m-%d %H:%M:%S}.", class_="muted"),
            filters,
            table(COLUMNS, rows, "예약 메시지가 없습니다.", set(), "schedules"),
            refresh=REFRESH_SECONDS if soon else None,
        )

    def row(self, row: dict[str, Any], rule: Recurrence | None, upcoming: datetime | None,
            sent: dict[str, Any] | None, csrf: Any, names: dict[str, str]) -> Tag:
        scheduleId, status = int(row["id"]), str(row.get("status") or "")

        def post(action: str, label: str, cls: str, **hidden: str) -> Tag:
            return tags.form(csrf, tags.input(type="hidden", name="id", value=str(scheduleId)),
                             *[tags.input(type="hidden", name=k, value=v) for k, v in hidden.items()],
                             tags.button(label, type="submit", class_=cls),
                             method="post", action=f"/schedules/{action}", class_="inline")

        actions = [tags.a("수정", href=f"/schedules/edit?id={scheduleId}", class_="button edit"),
                   tags.a("발송 기록", href=f"/schedules/log?id={scheduleId}", class_="button log")]
        if status == "active":
            actions.append(post("status", "일시정지", "pause", status="inactive"))
        elif status in ("inactive", "completed", "error"):
            actions.append(post("status", "재개", "resume approve", status="active"))
        actions.append(post("remove", "삭제", "remove deny"))
        lastText: Any = tags.span("—", class_="muted")
        if sent is not None:
            lastText = tags.span(resultTag(sent), " ", str(sent.get("scheduled_at") or ""))
        return tags.tr(
            cell("ID", str(scheduleId)),
            cell("제목", tags.b(row.get("title") or "")),
            cell("방", f"{roomLabel(names, row['target_room_id'])} · {row.get('target_bot_name')}"),
            cell("일정", describeKorean(rule) if rule is not None else tags.span("읽을 수 없음", class_="error")),
            cell("상태", tags.span(STATUS_LABELS.get(status, status), class_=STATUS_CLASS.get(status, "muted"))),
            cell("다음 발송", f"{upcoming:%Y-%m-%d %H:%M:%S}" if upcoming else "—"),
            cell("마지막 발송", lastText),
            cell("관리", tags.span(*actions, class_="actions")),
            class_="schedule", **{"data-id": str(scheduleId), "data-status": status},
        )

    async def knownRooms(self) -> list[Any]:
        return await self.rooms.list(limit=300) if self.rooms is not None else []

    async def formPage(self, request: IRequest, form: ScheduleForm, scheduleId: int | None,
                       shown: Any = "", canSave: bool = False) -> Tag:
        rooms = await self.knownRooms()
        title = "예약 메시지 수정" if scheduleId is not None else "새 예약 메시지"
        buttons = [tags.button("미리보기", type="submit", name="step", value="preview", class_="preview")]
        if canSave:
            buttons.append(tags.button("저장", type="submit", name="step", value="save", class_="save approve"))
        return adminPage(
            title, "/schedules",
            notice(field(request, "error"), error=True),
            shown,
            tags.form(
                self.actions.hidden(request),
                tags.input(type="hidden", name="id", value=str(scheduleId)) if scheduleId is not None else "",
                *form.fields(rooms),
                tags.p(f"시각은 {self.timezone} 기준입니다. 저장하기 전에 미리보기로 보낼 시각과 문구를 확인하세요.",
                       class_="muted"),
                tags.span(*buttons, class_="actions"),
                method="post", action="/schedules/save", class_="stack schedule-form",
            ),
            tags.p(tags.a("← 예약 메시지 목록", href="/schedules")),
        )

    async def logPage(self, request: IRequest) -> Tag:
        scheduleId = _id(field(request, "id"))
        before = _id(field(request, "before"))
        entries = await manage.sendLog(self.database, scheduleId, PAGE_SIZE, before)
        heading: Any = tags.p("모든 예약 메시지의 발송 기록 (최근 것부터)", class_="muted")
        soon = any(isSending(e) for e in entries)
        if scheduleId is not None:
            row = await manage.getSchedule(self.database, scheduleId)
            rule = _rule(row) if row is not None else None
            upcoming = rule.nextAfter(self.now()) if rule is not None and row.get("status") == "active" else None
            soon = soon or (upcoming is not None and upcoming - self.now() <= SOON)
            heading = tags.p(
                tags.b(row.get("title") or "") if row else f"#{scheduleId} (삭제됨)",
                f" · {describeKorean(rule)}" if rule else "",
                f" · 다음 발송 {upcoming:%Y-%m-%d %H:%M:%S}" if upcoming else "",
                " · ", tags.a("전체 발송 기록", href="/schedules/log"))
        return adminPage(
            f"발송 기록 #{scheduleId}" if scheduleId is not None else "발송 기록", "/schedules",
            heading, logTable(entries), moreLink(entries, scheduleId),
            tags.p(tags.a("← 예약 메시지 목록", href="/schedules")),
            refresh=REFRESH_SECONDS if soon else None,
        )

    async def change(self, request: IRequest) -> Tag:
        sub = request.postpath[0] if request.postpath else b""
        scheduleId = _id(field(request, "id"))
        if sub == b"save":
            return await self.save(request, scheduleId)
        if scheduleId is None:
            raise Redirect(withMessage("/schedules", "알 수 없는 요청입니다.", error=True))
        if sub == b"status" and field(request, "status") in ("active", "inactive"):
            status = field(request, "status")
            if not await manage.setStatus(self.database, scheduleId, status, self.now()):
                raise Redirect(withMessage("/schedules", f"예약 메시지 #{scheduleId}이(가) 없습니다.", error=True))
            action = "schedule.resume" if status == "active" else "schedule.pause"
            await self.actions.audit(request, action, str(scheduleId))
            raise Redirect(withMessage("/schedules", f"#{scheduleId}: {STATUS_LABELS[status]}"))
        if sub == b"remove":
            if not await manage.removeSchedule(self.database, scheduleId):
                raise Redirect(withMessage("/schedules", f"예약 메시지 #{scheduleId}이(가) 없습니다.", error=True))
            await self.actions.audit(request, "schedule.remove", str(scheduleId))
            raise Redirect(withMessage("/schedules", f"#{scheduleId}을(를) 발송 기록과 함께 삭제했습니다."))
        raise Redirect(withMessage("/schedules", "알 수 없는 요청입니다.", error=True))

    async def save(self, request: IRequest, scheduleId: int | None) -> Tag:
        form = ScheduleForm.fromRequest(request)
        rooms = await self.knownRooms()
        now = self.now()
        try:
            values, rule = form.schedule(now, {r.roomId: r.bot for r in rooms})
        except FormError as e:
            return await self.formPage(request, form, scheduleId,
                                       tags.p(str(e), class_="notice error", role="alert"))
        if field(request, "step") != "save":
            return await self.formPage(request, form, scheduleId, preview(values, rule, now, rooms), True)
        detail = json.dumps({k: values[k] for k in (
            "target_bot_name", "target_room_id", "schedule_type", "schedule_date", "schedule_time",
            "schedule_times", "schedule_weekdays", "valid_from", "valid_until", "message_text")},
            ensure_ascii=False)
        if scheduleId is None:
            scheduleId = await manage.addSchedule(self.database, values)
            await self.actions.audit(request, "schedule.add", str(scheduleId), detail)
            done = f"#{scheduleId}을(를) 만들었습니다. 다음 발송 {values['next_send_at']}"
        else:
            if not await manage.updateSchedule(self.database, scheduleId, values):
                raise Redirect(withMessage("/schedules", f"예약 메시지 #{scheduleId}이(가) 없습니다.", error=True))
            await self.actions.audit(request, "schedule.edit", str(scheduleId), detail)
            done = f"#{scheduleId}을(를) 저장했습니다. 다음 발송 {values['next_send_at']}"
        raise Redirect(withMessage("/schedules", done))


def roomLabel(names: dict[str, str], roomId: str) -> str:
    name = names.get(roomId)
    return f"{name} ({roomId})" if name else roomId


def _rule(row: dict[str, Any]) -> Recurrence | None:
    try:
        return recurrence(row)
    except RuleError:
        return None
