"""채팅 랭킹: `# 채팅순위 [오늘|이번주]` lists the room's top talkers from the chat log."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from kkobot.command import Cooldown, Plugin, command

plugin = Plugin("chatrank", config={"timezone": "Asia/Seoul", "top": 10})

PERIODS = {"오늘": "오늘", "today": "오늘", "이번주": "이번 주", "주간": "이번 주", "week": "이번 주"}


def periodStart(now: float, period: str, timezone: str) -> float:
    """Midnight today, or Monday midnight this week, in C{timezone}, as epoch seconds."""
    local = datetime.fromtimestamp(now, ZoneInfo(timezone))
    start = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "이번 주":
        start -= timedelta(days=start.weekday())
    return start.timestamp()


@command("채팅순위", "이 방에서 말을 많이 한 사람 (오늘 / 이번주).", usage="# 채팅순위 [오늘|이번주]",
         aliases=("채팅랭킹",), examples=("# 채팅순위", "# 채팅순위 이번주"), cooldown=Cooldown(room=10))
async def chatRanking(context):
    word = (context.rest or "오늘").split()[0].lower()
    period = PERIODS.get(word)
    if period is None:
        return f"기간은 오늘 또는 이번주 중 하나입니다.\n사용법: {chatRanking.usage}"
    since = periodStart(context.now, period, context.config["timezone"])
    talkers = await context.history.topTalkers(since=since, limit=context.config["top"])
    if not talkers:
        return f"{period}는 아직 대화가 없습니다."
    lines = [f"[{period} 채팅 순위]"]
    lines += [f"{place}. {t.sender} — {t.count}개" for place, t in enumerate(talkers, 1)]
    return "\n".join(lines)
