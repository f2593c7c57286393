"""The schedule form of the admin web: its fields read into a kb_schedule row (checked by the runner's rules), and drawn back."""

from __future__ import annotations

import json
from dataclasses import dataclass, field as dataField
from datetime import date, datetime
from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.template import tags

from kkobot.admin.web.actions import field
from kkobot.announcements import manage
from kkobot.announcements.content import partsOf
from kkobot.announcements.rules import WEEKDAYS, Recurrence, RuleError, parseDateTime, parseTime

KIND_LABELS = {"once": "한 번", "daily": "매일", "weekly": "매주"}
DAY_LABELS = ("월", "화", "수", "목", "금", "토", "일")
TEXT_FIELDS = ("title", "bot", "room", "kind", "date", "times", "from", "until", "text",
               "images1", "images2", "wait1", "wait2", "interval")


class FormError(ValueError):
    """A form that does not make a schedule; the text (Korean) says why."""


@dataclass
class ScheduleForm:
    """The raw values of the form, as typed (kept to draw the form again after a preview or an error)."""

    values: dict[str, str] = dataField(default_factory=dict)
    weekdays: list[str] = dataField(default_factory=list)

    @classmethod
    def fromRequest(cls, request: IRequest) -> "ScheduleForm":
        days = [d.decode("ascii", "replace") for d in request.args.get(b"weekdays", [])]
        return cls({name: field(request, name) for name in TEXT_FIELDS}, [d for d in WEEKDAYS if d in days])

    @classmethod
    def fromRow(cls, row: dict[str, Any], now: datetime) -> "ScheduleForm":
        """
        The form of a stored schedule. A start already past is left empty: the edit
        starts the schedule anew from when it is saved, so a time of today moved to
        a moment ago is not sent late by the runner's catch-up.
        """
        times = row.get("schedule_times")
        if isinstance(times, (bytes, str)) and str(times).strip():
            times = json.loads(times)
        listed = times if isinstance(times, list) and times else [row.get("schedule_time")]
        return cls({
            "title": row.get("title") or "", "bot": row.get("target_bot_name") or "",
            "room": row.get("target_room_id") or "", "kind": row.get("schedule_type") or "daily",
            "date": str(row.get("schedule_date") or "")[:10],
            "times": ", ".join(_hhmm(parseTime(t, "schedule_time")) for t in listed if t is not None),
            "from": "" if _passed(row.get("valid_from"), now) else _local(row.get("valid_from")), "until": _local(row.get("valid_until")),
            "text": row.get("message_text") or "",
            "images1": _lines(row.get("message_images_1")), "images2": _lines(row.get("message_images_2")),
            "wait1": str(row.get("media_wait_time_1") or 0), "wait2": str(row.get("media_wait_time_2") or 0),
            "interval": str(row.get("send_interval_seconds") or 1),
        }, [d for d in WEEKDAYS if d in str(row.get("schedule_weekdays") or "").split(",")])

    def get(self, name: str) -> str:
        return self.values.get(name, "")

    def schedule(self, now: datetime, botOf: dict[str, str]) -> tuple[dict[str, Any], Recurrence]:
        """The row this form makes and its recurrence; L{FormError} when it makes none."""
        room = self.get("room")
        bot = self.get("bot") or botOf.get(room, "")
        if not room:
            raise FormError("방을 고르세요.")
        if not bot:
            raise FormError("보낼 봇 이름을 적으세요.")
        kind = self.get("kind")
        if kind not in KIND_LABELS:
            raise FormError("반복 방식(한 번/매일/매주)을 고르세요.")
        words = self.get("times").replace(",", " ").split()
        if not words:
            raise FormError("보낼 시각을 하나 이상 적으세요 (예: 09:00, 18:30).")
        try:
            times = [parseTime(w, "times") for w in words]
        except RuleError:
            raise FormError(f"시각 {self.get('times')!r}을(를) 읽을 수 없습니다. HH:MM 또는 HH:MM:SS로 적으세요.")
        if kind == "weekly" and not self.weekdays:
            raise FormError("매주 보낼 요일을 하나 이상 고르세요.")
        day = None
        if kind == "once":
            try:
                day = date.fromisoformat(self.get("date"))
            except ValueError:
                raise FormError("한 번 보낼 날짜를 고르세요.")
        images1, images2 = _imageList(self.get("images1")), _imageList(self.get("images2"))
        if not self.get("text") and not images1 and not images2:
            raise FormError("보낼 내용(문구 또는 이미지)을 적으세요.")
        try:
            values, rule = manage.scheduleValues(
                bot=bot, room=room, kind=kind, times=times, now=now, text=self.get("text") or None,
                images1=images1, images2=images2, wait1=_number(self.get("wait1"), "이미지 1 대기 시간"),
                wait2=_number(self.get("wait2"), "이미지 2 대기 시간"),
                interval=_number(self.get("interval") or "1", "보내는 간격"),
                weekdays=self.weekdays if kind == "weekly" else (), date=day,
                validFrom=_dateTime(self.get("from"), "시작"), validUntil=_dateTime(self.get("until"), "끝"),
                title=self.get("title") or None,
            )
        except manage.ScheduleInputError as e:
            raise FormError(_korean(str(e)))
        # The runner would leave a bad image out of every send: say so now instead.
        _, problems = partsOf(values)
        if problems:
            raise FormError("이미지를 보낼 수 없습니다 (http(s) URL 또는 base64만 됩니다): " + "; ".join(problems))
        return values, rule

    def fields(self, rooms: list[Any]) -> list[Any]:
        """The form's inputs, filled with these values."""
        v = self.get
        roomOptions = [tags.option("방을 고르세요", value="")]
        known = False
        for room in rooms:
            option = tags.option(f"{room.name} ({room.roomId}) · {room.bot}", value=room.roomId)
            if room.roomId == v("room"):
                option(selected="selected")
                known = True
            roomOptions.append(option)
        if v("room") and not known:
            roomOptions.append(tags.option(v("room"), value=v("room"), selected="selected"))
        kinds = []
        for kind, label in KIND_LABELS.items():
            radio = tags.input(type="radio", name="kind", value=kind, id=f"kind-{kind}")
            if v("kind") == kind or (not v("kind") and kind == "daily"):
                radio(checked="checked")
            kinds.append(tags.label(radio, label, for_=f"kind-{kind}", class_="check"))
        days = []
        for name, label in zip(WEEKDAYS, DAY_LABELS):
            box = tags.input(type="checkbox", name="weekdays", value=name, id=f"day-{name}")
            if name in self.weekdays:
                box(checked="checked")
            days.append(tags.label(box, label, for_=f"day-{name}", class_="check"))
        return [
            tags.label("방", tags.select(*roomOptions, name="room", id="room")),
            tags.label("봇 (비우면 그 방의 봇)", tags.input(name="bot", id="bot", value=v("bot"))),
            tags.fieldset(tags.legend("반복"), *kinds, class_="checks"),
            tags.label("날짜 (한 번일 때)", tags.input(type="date", name="date", id="date", value=v("date"))),
            tags.fieldset(tags.legend("요일 (매주일 때)"), *days, class_="checks"),
            tags.label("보낼 시각 (쉼표로 여러 개: 09:00, 18:30:00)",
                       tags.input(name="times", id="times", value=v("times"), placeholder="09:00")),
            tags.label("시작 (비우면 지금부터)",
                       tags.input(type="datetime-local", name="from", id="from", value=v("from"), step="1")),
            tags.label("끝 (비우면 계속)",
                       tags.input(type="datetime-local", name="until", id="until", value=v("until"), step="1")),
            tags.label("제목 (목록용, 비우면 문구 앞부분)", tags.input(name="title", id="title", value=v("title"))),
            tags.label("보낼 문구", tags.textarea(v("text"), name="text", id="text", rows="4")),
            tags.label("이미지 묶음 1 (URL, 줄마다 하나)", tags.textarea(v("images1"), name="images1", rows="2")),
            tags.label("이미지 1 대기 시간 (ms, 0 = 기본)",
                       tags.input(type="number", name="wait1", min="0", value=v("wait1") or "0")),
            tags.label("이미지 묶음 2 (URL, 줄마다 하나)", tags.textarea(v("images2"), name="images2", rows="2")),
            tags.label("이미지 2 대기 시간 (ms, 0 = 기본)",
                       tags.input(type="number", name="wait2", min="0", value=v("wait2") or "0")),
            tags.label("문구와 이미지 사이 간격 (초)",
                       tags.input(type="number", name="interval", min="0", value=v("interval") or "1")),
        ]


def describeKorean(rule: Recurrence) -> str:
    """The timing in a line of Korean: 매주 월,수 09:00."""
    times = ", ".join(_hhmm(t) for t in rule.times)
    if rule.kind == "once":
        return f"한 번 {(rule.date or rule.validFrom.date()).isoformat()} {times}"
    if rule.kind == "daily":
        return f"매일 {times}"
    return f"매주 {','.join(DAY_LABELS[d] for d in sorted(rule.weekdays))} {times}"


def _hhmm(t: Any) -> str:
    return t.strftime("%H:%M:%S" if t.second else "%H:%M")


def _local(value: Any) -> str:
    """A DATETIME as a datetime-local input's value."""
    if value is None:
        return ""
    text = str(value)[:19].replace(" ", "T")
    return "" if text.startswith("2099-12-31") else text


def _passed(value: Any, now: datetime) -> bool:
    try:
        return parseDateTime(value, "valid_from") <= now
    except RuleError:
        return True


def _lines(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    try:
        items = json.loads(value) if isinstance(value, str) else value
    except ValueError:
        return str(value)
    if not isinstance(items, list):
        items = [items]
    return "\n".join(i if isinstance(i, str) else json.dumps(i, ensure_ascii=False) for i in items)


def _imageList(text: str) -> list[str]:
    return [line.strip() for line in text.splitlines() if line.strip()]


def _number(text: str, what: str) -> int:
    text = text.strip() or "0"
    if not text.isdigit():
        raise FormError(f"{what}은(는) 0 이상의 정수로 적으세요.")
    return int(text)


def _dateTime(text: str, what: str) -> datetime | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(text.replace("T", " ")).replace(microsecond=0)
    except ValueError:
        raise FormError(f"{what} 시각을 읽을 수 없습니다.")


def _korean(message: str) -> str:
    """The rules' (English) reasons a schedule cannot be added, for the page."""
    if "never send" in message:
        return "이 일정으로는 보낼 시각이 남아 있지 않습니다 (지난 시각이거나 유효 기간 밖입니다)."
    if "--until is before --from" in message:
        return "끝이 시작보다 앞입니다."
    return f"일정을 확인하세요: {message}"
