"""The message that invoked a command, as the command sees it (L{ICommandContext})."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Callable

from zope.interface import implementer

from kkobot.commands.reply import Reply
from kkobot.interfaces import ICommandContext


@implementer(ICommandContext)
@dataclass
class CommandContext:
    """The message that invoked a command, as L{ICommandContext} describes it."""

    room: str
    channelId: str | None
    sender: str
    userHash: str | None
    botName: str
    isGroupChat: bool
    isMention: bool
    text: str
    command: str
    args: str
    now: float
    extra: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)
    rest: str | None = None
    match: re.Match[str] | None = None
    isAdmin: bool = False
    client: Any = None
    clients: Any = None
    commands: Any = None
    # Set by the dispatcher: how send() and canUse() reach the server.
    outbound: Any = field(default=None, repr=False)
    usable: Callable[[Any], bool] | None = field(default=None, repr=False)
    # Set by the dispatcher: the plugin the command belongs to (PluginInfo), and the
    # server's parts behind store / ask / config / http / history (PluginServices).
    plugin: Any = field(default=None, repr=False)
    services: Any = field(default=None, repr=False)
    # Set by the dispatcher: what canUse() asks when no C{usable} is given (the
    # dispatcher itself, not a closure over this context made for every call).
    dispatcher: Any = field(default=None, repr=False)

    def __post_init__(self) -> None:
        if self.rest is None:
            self.rest = self.args

    def send(
        self,
        text: str | Reply,
        room: str | None = None,
        channelId: str | None = None,
        mediaWaitTime: int | None = None,
    ) -> bool:
        if self.outbound is None:
            return False
        if isinstance(text, Reply):
            text, mediaWaitTime = text.text, text.mediaWaitTime
        if room is None:
            room = self.room
            channelId = self.channelId if channelId is None else channelId
        return self.outbound.send(
            self.botName, room, text, channelId, self.isGroupChat, mediaWaitTime=mediaWaitTime
        )

    def canUse(self, command: Any) -> bool:
        if self.usable is not None:
            return self.usable(command)
        return True if self.dispatcher is None else self.dispatcher.usable(command, self)

    def _services(self) -> Any:
        return _NO_SERVICES if self.services is None else self.services

    @property
    def pluginName(self) -> str | None:
        return None if self.plugin is None else self.plugin.name

    @property
    def store(self) -> Any:
        """This plugin's L{kkobot.commands.store.PluginStore}, seen from this room and sender."""
        return self._services().storeFor(self.plugin, self)

    @property
    def config(self) -> Any:
        """This plugin's C{plugins.<name>} config section over its declared defaults."""
        return self._services().configFor(self.plugin)

    @property
    def http(self) -> Any:
        """This plugin's L{kkobot.commands.http.PluginHttp} client."""
        return self._services().httpFor(self.plugin)

    @property
    def history(self) -> Any:
        """This room's chat log (L{kkobot.commands.history.RoomHistory})."""
        return self._services().historyFor(self)

    def ask(self, text: str | Reply, timeout: float = 60.0) -> Any:
        """
        Say C{text} and wait for this sender's next message in this room: a Deferred
        of its text, or of None (after a Korean notice) when C{timeout} s pass first.
        """
        return self._services().conversations.ask(self, text, timeout)


class _Unavailable:
    """What C{store} / C{config} / ... are on a context no dispatcher prepared: any use says why."""

    def __init__(self, what: str) -> None:
        self._what = what

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"context.{self._what} is not available: this context was not "
                           "prepared by a dispatcher with plugin services")

    def __repr__(self) -> str:
        return f"<unavailable context.{self._what}>"


class _NoServices:
    conversations = _Unavailable("ask")

    def storeFor(self, info: Any, context: Any) -> Any:
        return _Unavailable("store")

    def configFor(self, info: Any) -> Any:
        return _Unavailable("config")

    def httpFor(self, info: Any) -> Any:
        return _Unavailable("http")

    def historyFor(self, context: Any) -> Any:
        return _Unavailable("history")


_NO_SERVICES = _NoServices()
