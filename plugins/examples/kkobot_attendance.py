"""출석체크: `# 출석` once a day (Asia/Seoul) with streaks and points; `# 출석순위` ranks the room."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from kkobot.command import Plugin, command

plugin = Plugin(
    "attendance",
    config={"points": 10, "streak_bonus": 2, "timezone": "Asia/Seoul"},
    description="출석체크: 연속 출석, 포인트, 순위",
)

DAY = 24 * 3600


def day(context, offset: int = 0) -> str:
    """The calendar day of the message (plus C{offset} days) in the plugin's time zone."""
    moment = datetime.fromtimestamp(context.now, ZoneInfo(context.config["timezone"]))
    return (moment + timedelta(days=offset)).strftime("%Y-%m-%d")


@command("출석", "하루 한 번 출석체크합니다 (연속 출석 보너스).", aliases=("출첵",),
         examples=("# 출석",))
async def checkIn(context):
    store = context.store
    today = day(context)
    record = await store.get("record", {}, scope="user")
    if record.get("last") == today:  # the usual repeat: one read
        return f"{context.sender}님은 오늘 이미 출석했습니다. (연속 {record.get('streak', 1)}일)"
    # One atomic step decides which of two taps at the same moment counts.
    if await store.incr(f"checked:{today}", scope="user") > 1:
        record = await store.get("record", {}, scope="user")
        return f"{context.sender}님은 오늘 이미 출석했습니다. (연속 {record.get('streak', 1)}일)"
    await store.set(f"checked:{today}", 1, scope="user", ttl=2 * DAY)
    order = await store.incr(f"order:{today}")
    streak = record.get("streak", 0) + 1 if record.get("last") == day(context, -1) else 1
    gained = context.config["points"] + context.config["streak_bonus"] * (streak - 1)
    record = {
        "name": context.sender,
        "last": today,
        "streak": streak,
        "days": record.get("days", 0) + 1,
        "points": record.get("points", 0) + gained,
    }
    await store.set("record", record, scope="user")
    return (f"{context.sender}님 출석 완료! 오늘 {order}번째, 연속 {streak}일, "
            f"+{gained}점 (총 {record['points']}점)")


@command("출석순위", "이 방의 출석 포인트 순위 (상위 10명).", aliases=("출석랭킹",),
         examples=("# 출석순위",))
async def ranking(context):
    records = await context.store.everyUser("record")
    if not records:
        return "아직 출석한 사람이 없습니다. # 출석 으로 시작해 보세요."
    ranked = sorted(records.values(), key=lambda r: (-r["points"], -r["days"], r["name"]))[:10]
    lines = ["[출석 순위]"]
    for place, r in enumerate(ranked, 1):
        lines.append(f"{place}. {r['name']} — {r['points']}점 (연속 {r['streak']}일, 총 {r['days']}일)")
    return "\n".join(lines)
