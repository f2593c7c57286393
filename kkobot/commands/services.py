"""What a plugin reaches beyond its message: storage, conversations, its config, HTTP, the chat log."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from twisted.internet.interfaces import IReactorTime

from kkobot.commands.conversations import Conversations
from kkobot.commands.history import IChatHistory, RoomHistory
from kkobot.commands.plugin import PluginConfig, PluginConfigs, PluginInfo
from kkobot.commands.store import IPluginStorage, PluginStore
from kkobot.logs import Logger


class PluginServices:
    """
    The server's parts behind C{context.store}, C{ask}, C{config}, C{http} and
    C{history}, handed to every command context by the dispatcher (one object per
    server: each property of a context makes only a small view of it).
    """

    def __init__(
        self,
        clock: IReactorTime,
        storage: IPluginStorage | None = None,
        configs: PluginConfigs | None = None,
        http: Any = None,
        history: IChatHistory | None = None,
        outbound: Any = None,
        conversations: Conversations | None = None,
    ) -> None:
        self.clock = clock
        self.storage = storage
        self.configs = configs or PluginConfigs()
        self.http = http
        self.history = history
        self.outbound = outbound
        self.conversations = conversations or Conversations(clock)

    def storeFor(self, info: PluginInfo, context: Any) -> PluginStore:
        if self.storage is None:
            raise RuntimeError("no plugin storage is configured")
        return PluginStore(
            self.storage,
            info.name,
            context.channelId or context.room,
            context.userHash or context.sender,
            self.clock,
        )

    def configFor(self, info: PluginInfo) -> PluginConfig:
        return self.configs.forPlugin(info)

    def httpFor(self, info: PluginInfo) -> Any:
        if self.http is None:
            raise RuntimeError("HTTP for plugins is not available here")
        return self.http.forPlugin(info.name, info.declaration.httpConcurrency)

    def historyFor(self, context: Any) -> RoomHistory:
        if self.history is None:
            raise RuntimeError("no chat history is available here")
        return RoomHistory(self.history, context.channelId or "", self.clock)

    def pluginContext(self, info: PluginInfo) -> PluginContext:
        """What C{activate(ctx)} gets."""
        return PluginContext(info.name, info, self)


@dataclass
class PluginContext:
    """
    C{activate(ctx)}'s argument: the plugin's C{name}, C{config}, C{store} (scope
    C{"global"} only: there is no room), C{http}, C{clock}, C{log}, and
    C{send(bot, room, text, channelId=None)} for messages the plugin starts itself.
    """

    name: str
    info: PluginInfo = field(repr=False)
    services: PluginServices = field(repr=False)

    def __post_init__(self) -> None:
        self.log = Logger(namespace=f"kkobot.plugins.{self.name}")

    @property
    def clock(self) -> IReactorTime:
        return self.services.clock

    @property
    def config(self) -> PluginConfig:
        return self.services.configFor(self.info)

    @property
    def store(self) -> PluginStore:
        if self.services.storage is None:
            raise RuntimeError("no plugin storage is configured")
        return PluginStore(self.services.storage, self.name, None, None, self.services.clock)

    @property
    def http(self) -> Any:
        return self.services.httpFor(self.info)

    def send(self, bot: str, room: str, text: str, channelId: str | None = None) -> bool:
        """
        Send to a room through C{bot}'s connection, wherever it is connected; a
        message for a bot connected nowhere waits for it (outbound.wait_seconds).
        False when the message was refused (the queue of waiting messages is full).
        """
        if self.services.outbound is None:
            return False
        return self.services.outbound.send(bot, room, text, channelId)
