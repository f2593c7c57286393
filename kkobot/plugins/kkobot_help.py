"""`# help` lists the commands this user may use here; `# help NAME` shows one in full."""

from __future__ import annotations

from typing import Any

from kkobot.command import Cooldown, command


def describe(cmd: Any) -> str:
    """Everything a command declares, as `# help NAME` shows it."""
    lines = [f"# {cmd.name} — {cmd.description}".rstrip(" —")]
    lines.append(f"사용법: {getattr(cmd, 'usage', '') or '# ' + cmd.name}")
    aliases = getattr(cmd, "aliases", ())
    if aliases:
        lines.append("별칭: " + ", ".join(f"# {a}" for a in aliases))
    if getattr(cmd, "pattern", None) is not None:
        lines.append("자동 반응: 메시지에 패턴이 있으면 답합니다.")
    options = getattr(cmd, "options", ())
    if options:
        lines.append("옵션:")
        lines.extend(f"  {o.describe()}" for o in options)
    examples = getattr(cmd, "examples", ())
    if examples:
        lines.append("예:")
        for example in examples:
            if isinstance(example, tuple):
                lines.append(f"  {example[0]} → {example[1]}")
            else:
                lines.append(f"  {example}")
    cooldown = Cooldown.of(getattr(cmd, "cooldown", None))
    if cooldown is not None:
        lines.append(f"쿨다운: {cooldown.describe()}")
    if getattr(cmd, "adminOnly", False):
        lines.append("관리자 전용")
    return "\n".join(lines)


@command(
    "help",
    "명령 목록과 사용법을 보여 줍니다.",
    usage="# help [명령]",
    aliases=("도움말",),
    examples=("# help", "# help echo"),
)
def showHelp(context: Any) -> str:
    usable = [c for c in context.commands.commands() if context.canUse(c)]
    if context.rest:
        name = context.rest.split()[0].lstrip("#").lower()
        found = context.commands.lookup(name) or next((c for c in usable if c.name == name), None)
        if found is None or not context.canUse(found):
            return f"알 수 없는 명령입니다: {name}\n# help 로 명령 목록을 볼 수 있습니다."
        return describe(found)
    # One line per command, each starting with `# name` (scripts rely on that shape).
    return "\n".join(
        f"# {c.name} — {c.description}" + (" (자동 반응)" if getattr(c, "pattern", None) else "")
        for c in usable
    )
