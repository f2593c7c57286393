"""/rooms: rooms waiting for approval and the others, approve or deny them, edit a room's settings."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

from twisted.web.iweb import IRequest
from twisted.web.template import Tag, tags

from kkobot.admin.web.actions import field
from kkobot.admin.web.asyncpage import ChangePage, Redirect, withMessage
from kkobot.admin.web.layout import adminPage, notice
from kkobot.admin.web.status import cell, table
from kkobot.rooms.settings import RoomSettings, SettingsError
from kkobot.rooms.table import STATUSES

STATUS_LABELS = {"pending": "승인 대기", "approved": "승인됨", "denied": "거부됨",
                 "revoked": "취소됨", "blocked": "차단됨"}
STATUS_CLASS = {"pending": "pending", "approved": "ok"}
COLUMNS = ["방", "채널 ID", "봇", "상태", "처음 본 시각", "관리"]


def statusTag(status: str) -> Tag:
    return tags.span(STATUS_LABELS.get(status, status), class_=STATUS_CLASS.get(status, "muted"))


class RoomsPage(ChangePage):
    """GET /rooms, /rooms/edit?room=ID; POST /rooms/status, /rooms/settings."""

    def __init__(self, actions: Any, rooms: Any) -> None:
        ChangePage.__init__(self, actions)
        self.rooms = rooms

    async def page(self, request: IRequest) -> Tag:
        if self.rooms is None:
            return adminPage("방", "/rooms", tags.p("방 목록은 데이터베이스가 있을 때만 쓸 수 있습니다.",
                                                   class_="muted"))
        sub = request.postpath[0] if request.postpath else b""
        if sub == b"edit":
            return await self.editPage(request)
        status = field(request, "status") or None
        if status not in (None, *STATUSES):
            status = None
        rooms = await self.rooms.list(status=status, limit=500)
        csrf = self.actions.hidden(request)
        rows = [self.row(r, csrf) for r in rooms]
        filters = tags.p(
            *[tags.a(STATUS_LABELS.get(s, "전체") if s else "전체", href=f"/rooms?status={s}" if s else "/rooms",
                     class_="chip active" if s == status else "chip")
              for s in (None, *STATUSES)],
            class_="chips",
        )
        approval = "켜짐 — 승인된 방에서만 답합니다" if self.rooms.approval else (
            "꺼짐 — 모든 방에서 답합니다 (rooms.approval)")
        return adminPage(
            "방", "/rooms",
            notice(field(request, "done")), notice(field(request, "error"), error=True),
            tags.p(f"방 승인: {approval}", class_="muted"),
            filters,
            table(COLUMNS, rows, "방이 없습니다 (봇이 처음 메시지를 받으면 나타납니다).", set(), "rooms-admin"),
        )

    def row(self, room: Any, csrf: Any) -> Tag:
        forms = []
        for status, label in (("approved", "승인"), ("denied", "거부")):
            if room.status != status:
                forms.append(tags.form(
                    csrf, tags.input(type="hidden", name="room", value=room.roomId),
                    tags.input(type="hidden", name="status", value=status),
                    tags.button(label, type="submit", class_="approve" if status == "approved" else "deny"),
                    method="post", action="/rooms/status", class_="inline"))
        forms.append(tags.a("설정", href=f"/rooms/edit?room={quote(room.roomId, safe='')}", class_="button"))
        return tags.tr(
            cell("방", tags.b(room.name)), cell("채널 ID", room.roomId), cell("봇", room.bot),
            cell("상태", statusTag(room.status)), cell("처음 본 시각", str(room.createdAt or "—")),
            cell("관리", tags.span(*forms, class_="actions")),
            class_="room", **{"data-room": room.roomId, "data-status": room.status},
        )

    async def editPage(self, request: IRequest) -> Tag:
        roomId = field(request, "room")
        found = await self.rooms.list(roomId=roomId, limit=1) if roomId else []
        if not found:
            return adminPage("방 설정", "/rooms", tags.p("그런 방이 없습니다.", class_="error"))
        room = found[0]
        settings: RoomSettings = await self.rooms.readSettings(roomId)
        return adminPage(
            "방 설정", "/rooms",
            notice(field(request, "done")), notice(field(request, "error"), error=True),
            tags.p(tags.b(room.name), f" · {room.roomId} · 봇 {room.bot} · ", statusTag(room.status)),
            tags.form(
                self.actions.hidden(request),
                tags.input(type="hidden", name="room", value=roomId),
                tags.label("방 관리자 (userHash, 줄마다 하나)", for_="admins"),
                tags.textarea("\n".join(sorted(settings.admins)), name="admins", id="admins", rows="3"),
                tags.label("사용 안 하는 명령 (쉼표로 구분)", for_="disabled"),
                tags.input(name="disabled", id="disabled", value=", ".join(sorted(settings.disabled))),
                tags.label("명령별 설정 (JSON: {\"명령\": {\"admin_only\": true}})", for_="commands"),
                tags.textarea(json.dumps(settings.commands, ensure_ascii=False, indent=1)
                              if settings.commands else "{}", name="commands", id="commands", rows="5"),
                tags.button("저장", type="submit"),
                method="post", action="/rooms/settings", class_="stack",
            ),
            tags.p(tags.a("← 방 목록", href="/rooms")),
        )

    async def change(self, request: IRequest) -> Tag:
        sub = request.postpath[0] if request.postpath else b""
        roomId = field(request, "room")
        if sub == b"status":
            status = field(request, "status")
            if status not in STATUSES or not roomId:
                raise Redirect(withMessage("/rooms", "알 수 없는 요청입니다.", error=True))
            if not await self.rooms.setStatus(roomId, status, field(request, "reason") or None):
                raise Redirect(withMessage("/rooms", f"방 {roomId}이(가) 없습니다.", error=True))
            await self.actions.audit(request, f"room.{status}", roomId)
            raise Redirect(withMessage("/rooms", f"{roomId}: {STATUS_LABELS[status]}"))
        if sub == b"settings" and roomId:
            back = f"/rooms/edit?room={quote(roomId, safe='')}"
            try:
                new = parseSettings(field(request, "admins"), field(request, "disabled"),
                                    field(request, "commands"))
            except SettingsError as e:
                raise Redirect(withMessage(back, str(e), error=True))
            await self.rooms.changeSettings(roomId, lambda _old: new)
            await self.actions.audit(request, "room.settings", roomId,
                                     json.dumps(dict(zip(("admins", "disabled", "commands"), new.toRow())),
                                                ensure_ascii=False))
            raise Redirect(withMessage(back, "저장했습니다. 몇 초 안에 적용됩니다."))
        raise Redirect(withMessage("/rooms", "알 수 없는 요청입니다.", error=True))


def parseSettings(admins: str, disabled: str, commands: str) -> RoomSettings:
    try:
        commandMap = json.loads(commands or "{}")
    except ValueError as e:
        raise SettingsError(f"명령별 설정이 올바른 JSON이 아닙니다: {e}")
    if not isinstance(commandMap, dict) or not all(isinstance(v, dict) for v in commandMap.values()):
        raise SettingsError("명령별 설정은 {\"명령\": {...}} 모양이어야 합니다.")
    return RoomSettings.fromRow(
        json.dumps([a.strip() for a in admins.replace(",", "\n").splitlines() if a.strip()]),
        json.dumps([c.strip() for c in disabled.split(",") if c.strip()]),
        json.dumps(commandMap),
    )
