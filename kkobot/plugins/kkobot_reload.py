"""`# reload` (admins only) re-scans the plugin folders and reports what changed or failed."""

from __future__ import annotations

from typing import Any

from kkobot.command import command
from kkobot.commands.reload import describeReport


@command(
    "reload",
    "플러그인을 다시 불러옵니다 (관리자 전용).",
    aliases=("리로드",),
    adminOnly=True,
    examples=("# reload",),
)
def reload(context: Any) -> str:
    report = context.commands.reload()
    return describeReport(report, len(context.commands.commands()))
