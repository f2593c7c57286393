"""GET /: the status page: devices, rooms of the last hour, messages per minute, the deployment's instances."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from twisted.internet.interfaces import IReactorTime
from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET
from twisted.web.template import Tag, tags

from kkobot import __version__
from kkobot.admin.rates import MessageRates
from kkobot.bridge.registry import ClientInfo, ClientRegistry
from kkobot.admin.web.chart import minuteChart
from kkobot.admin.web.login import renderTag
from kkobot.admin.web.page import page
from kkobot.logs import Logger
from kkobot.admin.web.layout import nav

REFRESH_SECONDS = 30

DEVICE_COLUMNS = ["봇", "기기", "버전", "주소", "접속 시각", "RTT", "메모리", "대기열", "승인"]
ROOM_COLUMNS = ["봇", "방", "받은 메시지", "보낸 메시지", "마지막"]
KIND_LABELS = {"chat": "채팅 로그", "ping": "핑 기록", "device": "기기 목록"}

log = Logger()


def ago(seconds: float) -> str:
    seconds = max(0, int(seconds))
    if seconds < 60:
        return f"{seconds}초 전"
    if seconds < 3600:
        return f"{seconds // 60}분 전"
    if seconds < 86400:
        return f"{seconds // 3600}시간 {seconds % 3600 // 60}분 전"
    return f"{seconds // 86400}일 전"


def memory(monitoring: Any) -> str:
    """3.1.4+ bridges send `monitoring`; older ones `client_status` with `ram` (often null)."""
    if not monitoring:
        return "—"
    used, total = monitoring.get("memory_usage"), monitoring.get("total_memory")
    percent = monitoring.get("memory_percent")
    if isinstance(used, (int, float)) and isinstance(total, (int, float)):
        text = f"{used:.0f} / {total:.0f} MB"
        return f"{text} ({percent:g}%)" if isinstance(percent, (int, float)) else text
    ram = monitoring.get("ram")
    return str(ram) if ram is not None else "—"


def cell(label: str, content: Any, cls: str = "") -> Tag:
    td = tags.td(content, **{"data-label": label})
    if cls:
        td(class_=cls)
    return td


def deviceRow(client: ClientInfo, now: float) -> Tag:
    mon = client.monitoring or {}
    queue = mon.get("message_queue_size")
    since = datetime.fromtimestamp(client.connectedSince).strftime("%m-%d %H:%M")
    values = [
        tags.b(client.botName),
        tags.span(client.deviceID or "—", title=client.deviceInfo or ""),
        client.version,
        client.address,
        tags.span(since, " ", tags.span(f"({ago(now - client.connectedSince)})", class_="muted")),
        f"{client.lastRttMillis:.0f} ms" if client.lastRttMillis is not None else "—",
        memory(client.monitoring),
        str(queue) if queue is not None else "—",
        tags.span("승인됨", class_="ok") if client.approved else tags.span("대기", class_="pending"),
    ]
    numeric = {"RTT", "대기열"}
    return tags.tr(
        *[cell(label, v, "num" if label in numeric else "") for label, v in zip(DEVICE_COLUMNS, values)],
        class_="device", **{"data-bot": client.botName},
    )


def table(columns: list[str], rows: list[Tag], empty: str, numeric: set[str], cls: str) -> Tag:
    if not rows:
        return tags.p(empty, class_="muted " + cls)
    head = tags.tr(*[tags.th(c, class_="num" if c in numeric else "") for c in columns])
    return tags.table(tags.thead(head), tags.tbody(*rows), class_=cls)


def chatlogTiles(chatlog: Any) -> list[Tag]:
    """The chat log at a glance: does the database take rows, how many wait, how many were refused."""
    if chatlog is None:
        return []
    tables = chatlog.tables()
    chat = next((t for t in tables if t["kind"] == "chat"), None)
    if chatlog.journalFull:
        state = tags.div(tags.b("디스크 가득 참"), "저널에 쓸 수 없어 응답을 멈췄습니다",
                         class_="alert chatlog")
    elif chatlog.databaseUp:
        state = tags.div(tags.b("정상"), "채팅 로그 DB", class_="chatlog")
    elif chat is not None and chat["state"] == "refused":
        state = tags.div(tags.b("표가 행을 거부함"),
                         f"{chat['table']} {chat['error'] or ''} · 대기 {chat['waiting']}행 "
                         "(저널에 보관 중)", class_="alert chatlog")
    else:
        waiting = chat["waiting"] if chat is not None else chatlog.backlog
        state = tags.div(tags.b("연결 끊김"), f"DB 대기 {waiting}행 (저널에 보관 중)",
                         class_="alert chatlog")
    out = [state]
    for table in tables:
        if table["kind"] == "chat" or table["state"] in ("ok", "starting"):
            continue
        what = KIND_LABELS.get(table["kind"], table["kind"])
        why = "표가 행을 거부함" if table["state"] == "refused" else "DB 연결 끊김"
        unit = "대" if table["kind"] == "device" else "행"
        out.append(tags.div(
            tags.b(f"{what}: {why}"),
            f"{table['table']} {table['error'] or ''} · 대기 {table['waiting']}{unit} "
            "(보관 중, 다른 기록은 계속 저장됨)",
            class_="alert table", **{"data-kind": table["kind"]},
        ))
    rejected = chatlog.rowsRejected
    if rejected:
        out.append(tags.div(tags.b(str(rejected)), "DB가 거부한 행 (rejected import로 복구)",
                            class_="alert rejected"))
    return out


def deploymentSection(views: list[Any] | None, cluster: Any, now: float) -> list[Tag]:
    """Every instance of the deployment: its state, last heartbeat and phones."""
    if views is None:
        return []
    mode = cluster.status()["mode"]
    rows = [
        tags.tr(
            cell("인스턴스", v.name + (" (이 서버)" if v.local else "")),
            cell("상태", "정상" if v.alive else "응답 없음"),
            cell("마지막 하트비트", ago(max(0.0, now - v.heartbeat))),
            cell("기기", ", ".join(f"{c.get('bot_name')} ({c.get('device_id') or '-'})"
                                   for c in v.connections) or "-"),
            class_="instance",
        )
        for v in views
    ]
    note = "Redis 연결 끊김: 이 서버만 표시합니다 (local-only)" if mode == "local-only" else ""
    return [tags.h2("인스턴스"), table(["인스턴스", "상태", "마지막 하트비트", "기기"], rows,
                                    "인스턴스가 없습니다.", set(), "instances"),
            *([tags.p(note, class_="muted")] if note else [])]


class StatusPage(Resource):
    isLeaf = True

    def __init__(
        self, registry: ClientRegistry, rates: MessageRates, clock: IReactorTime,
        chatlog: Any = None,
        cluster: Any = None,
    ) -> None:
        Resource.__init__(self)
        self.registry = registry
        self.rates = rates
        self.clock = clock
        self.chatlog = chatlog
        self.cluster = cluster

    def render_GET(self, request: IRequest) -> Any:
        if self.cluster is None or not self.cluster.settings.enabled:
            return renderTag(request, self.build())
        d = self.cluster.presence.deployment()

        def show(views: list[Any]) -> None:
            if not request.finished and not getattr(request, "_disconnected", False):
                request.write(renderTag(request, self.build(views)))
                request.finish()

        def failed(failure: Any) -> None:
            log.failure("[ADMIN] reading the deployment for the status page failed", failure)
            show([])

        d.addCallbacks(show, failed)
        return NOT_DONE_YET

    def build(self, instances: list[Any] | None = None) -> Tag:
        now = self.clock.seconds()
        clients = sorted(self.registry, key=lambda c: (c.botName, c.connectedSince))
        rooms = self.rates.rooms()
        perMinute = self.rates.perMinute()
        lastHour = sum(a + b for a, b in perMinute)
        roomRows = [
            tags.tr(
                cell("봇", r.botName),
                cell("방", tags.span(r.room, title=r.channelId or "")),
                cell("받은 메시지", str(r.received), "num"),
                cell("보낸 메시지", str(r.sent), "num"),
                cell("마지막", ago(now - r.lastAt)),
                class_="room",
            )
            for r in rooms
        ]
        return page(
            "kkobot 상태",
            tags.div(
                tags.h1("kkobot 상태"),
                tags.form(tags.button("로그아웃", type="submit"), method="post", action="/logout"),
                class_="top",
            ),
            nav("/"),
            tags.div(
                tags.div(tags.b(str(len(clients))), "연결된 기기"),
                tags.div(tags.b(str(len({c.botName for c in clients}))), "봇"),
                tags.div(tags.b(str(lastHour)), "최근 1시간 메시지"),
                tags.div(tags.b(str(perMinute[-1][0] + perMinute[-1][1])), "이번 분"),
                *chatlogTiles(self.chatlog),
                class_="summary",
            ),
            tags.h2("기기"),
            table(DEVICE_COLUMNS, [deviceRow(c, now) for c in clients],
                  "연결된 기기가 없습니다.", {"RTT", "대기열"}, "devices"),
            *deploymentSection(instances, self.cluster, now),
            tags.h2("분당 메시지 (최근 60분)"),
            minuteChart(perMinute),
            tags.p("파랑: 받은 메시지 · 초록: 보낸 메시지", class_="muted"),
            tags.h2("방별 메시지 (최근 1시간)"),
            table(ROOM_COLUMNS, roomRows, "최근 1시간 동안 메시지가 없습니다.",
                  {"받은 메시지", "보낸 메시지"}, "rooms"),
            tags.p(
                f"kkobot {__version__} · ",
                datetime.fromtimestamp(now).strftime("%Y-%m-%d %H:%M:%S"),
                f" · {REFRESH_SECONDS}초마다 새로고침",
                class_="muted",
            ),
            refresh=REFRESH_SECONDS,
        )
