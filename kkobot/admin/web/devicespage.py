"""/devices: bridge devices (kb_bot_devices) waiting for approval and the others; approve or deny them."""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.template import Tag, tags

from kkobot.admin.web.actions import field
from kkobot.admin.web.asyncpage import ChangePage, Redirect, withMessage
from kkobot.admin.web.layout import adminPage, notice
from kkobot.admin.web.roomspage import STATUS_LABELS, statusTag
from kkobot.admin.web.status import cell, table
from kkobot.bridge.devicetable import STATUSES

COLUMNS = ["봇", "기기", "버전", "주소", "상태", "마지막 접속", "관리"]


class DevicesPage(ChangePage):
    """GET /devices; POST /devices/status (bot, device, status)."""

    def __init__(self, actions: Any, devices: Any) -> None:
        ChangePage.__init__(self, actions)
        self.devices = devices

    async def page(self, request: IRequest) -> Tag:
        if self.devices is None:
            return adminPage("기기", "/devices", tags.p(
                "인증이 꺼져 있어 모든 기기에 답합니다 (auth.required). 기기 승인은 인증을 켰을 때 씁니다.",
                class_="muted"))
        status = field(request, "status") or None
        devices = await self.devices.list(status=status if status in STATUSES else None)
        csrf = self.actions.hidden(request)
        return adminPage(
            "기기", "/devices",
            notice(field(request, "done")), notice(field(request, "error"), error=True),
            table(COLUMNS, [self.row(d, csrf) for d in devices], "기기가 없습니다.", set(), "devices-admin"),
        )

    def row(self, device: Any, csrf: Any) -> Tag:
        forms = []
        for status, label in (("approved", "승인"), ("denied", "거부")):
            if device.status != status:
                forms.append(tags.form(
                    csrf, tags.input(type="hidden", name="bot", value=device.bot),
                    tags.input(type="hidden", name="device", value=device.device),
                    tags.input(type="hidden", name="status", value=status),
                    tags.button(label, type="submit"),
                    method="post", action="/devices/status", class_="inline"))
        return tags.tr(
            cell("봇", tags.b(device.bot)), cell("기기", device.device), cell("버전", device.version or "—"),
            cell("주소", device.address or "—"), cell("상태", statusTag(device.status)),
            cell("마지막 접속", str(device.lastSeen or "—")),
            cell("관리", tags.span(*forms, class_="actions")),
            class_="device-admin", **{"data-device": device.device},
        )

    async def change(self, request: IRequest) -> Tag:
        bot, device, status = field(request, "bot"), field(request, "device"), field(request, "status")
        if self.devices is None or status not in STATUSES or not device:
            raise Redirect(withMessage("/devices", "알 수 없는 요청입니다.", error=True))
        if not await self.devices.setStatus(bot, device, status):
            raise Redirect(withMessage("/devices", f"기기 {device}이(가) 없습니다.", error=True))
        await self.actions.audit(request, f"device.{status}", f"{bot} {device}")
        raise Redirect(withMessage("/devices", f"{bot} {device}: {STATUS_LABELS[status]}"))
