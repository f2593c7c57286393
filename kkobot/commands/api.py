"""The declarative plugin API: `@command(...)` on a function, or subclass `Command`."""

from __future__ import annotations

import re
from typing import Any, Callable, Sequence

from twisted.plugin import IPlugin
from zope.interface import implementer

from kkobot.commands.reply import Reply
from kkobot.commands.cooldowns import Cooldown
from kkobot.interfaces import ICommand
from kkobot.commands.options import Option
from kkobot.commands.plugin import Plugin, Secret
from kkobot.commands.scheduler import daily, every

__all__ = ["Command", "command", "Option", "Cooldown", "Reply", "daily", "every", "Plugin", "Secret"]


@implementer(IPlugin, ICommand)
class Command:
    """
    An L{ICommand} with every optional declaration defaulted.

    Subclass it and override L{run}, or build one with L{command}.
    """

    name: str = ""
    aliases: Sequence[str] = ()
    description: str = ""
    usage: str = ""
    examples: Sequence[str | tuple[str, str]] = ()
    options: Sequence[Option] = ()
    adminOnly: bool = False
    rooms: Sequence[str] | None = None
    cooldown: Cooldown | float | None = None
    timeout: float | None = None
    pattern: str | re.Pattern[str] | None = None
    keywords: Sequence[str] = ()
    mention: bool = False

    def __init__(self, function: Callable[[Any], Any] | None = None, **declarations: Any) -> None:
        for key, value in declarations.items():
            if not hasattr(type(self), key):
                raise TypeError(f"unknown command declaration {key!r}")
            setattr(self, key, value)
        self.function = function
        if not self.usage:
            flags = " ".join(f"[--{o.name}]" if o.type is bool else f"[--{o.name}=값]" for o in self.options)
            self.usage = " ".join(p for p in (f"# {self.name}", flags) if p)

    def run(self, context: Any) -> Any:
        if self.function is None:
            raise NotImplementedError(f"{type(self).__name__} must override run()")
        return self.function(context)

    def __repr__(self) -> str:
        return f"<Command # {self.name}>"


def command(
    name: str,
    description: str | None = None,
    *,
    usage: str = "",
    aliases: Sequence[str] = (),
    examples: Sequence[str | tuple[str, str]] = (),
    options: Sequence[Option] = (),
    adminOnly: bool = False,
    rooms: Sequence[str] | None = None,
    cooldown: Cooldown | float | None = None,
    timeout: float | None = None,
    pattern: str | re.Pattern[str] | None = None,
    keywords: Sequence[str] = (),
    mention: bool = False,
) -> Callable[[Callable[[Any], Any]], Command]:
    """
    Make the decorated function (sync, Deferred-returning or C{async def}) a command.

    The module-level name then holds the L{Command}, which is what plugin discovery
    finds. C{description} defaults to the function's docstring's first line.
    """

    def decorate(function: Callable[[Any], Any]) -> Command:
        doc = (function.__doc__ or "").strip().splitlines()
        return Command(
            function,
            name=name.lower(),
            description=description if description is not None else (doc[0] if doc else ""),
            usage=usage,
            aliases=tuple(a.lower() for a in aliases),
            examples=tuple(examples),
            options=tuple(options),
            adminOnly=adminOnly,
            rooms=tuple(rooms) if rooms else None,
            cooldown=cooldown,
            timeout=timeout,
            pattern=pattern,
            keywords=tuple(keywords),
            mention=mention,
        )

    return decorate
