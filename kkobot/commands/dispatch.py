"""One command call, step by step: room, permission, options, cooldown, then run with a timeout."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime

from kkobot.commands.registry import CommandRegistry
from kkobot.commands.reply import Reply
from kkobot.commands.run import DEFAULT_TIMEOUT, runCommandNow
from kkobot.cluster.fired import resultNow
from kkobot.commands.cooldowns import Cooldown, Cooldowns
from kkobot.logs import Logger
from kkobot.commands.options import OptionError, parseOptions
from kkobot.commands.permissions import DISABLED_REPLY, Permissions

log = Logger()


def usageOf(command: Any) -> str:
    return getattr(command, "usage", "") or f"# {command.name}"


class Dispatcher:
    """
    Decides whether a matched command may run, and runs it.

    Refusals of C{# name} commands get one short Korean reply; a passive (pattern)
    command is refused silently, since the message was not addressed to the bot.
    """

    def __init__(
        self,
        commands: CommandRegistry,
        permissions: Permissions,
        clock: IReactorTime,
        outbound: Any = None,
        clients: Any = None,
        timeout: float = DEFAULT_TIMEOUT,
        exemptAdmins: bool = True,
        services: Any = None,
        flood: Any = None,
    ) -> None:
        self.commands = commands
        self.permissions = permissions
        self.clock = clock
        self.outbound = outbound
        self.clients = clients
        self.timeout = timeout
        self.exemptAdmins = exemptAdmins
        self.cooldowns = Cooldowns(clock)
        # The deployment's cooldowns (an ICooldownStore; several instances), else None:
        # C{cooldowns} in this process.
        self.cooldownStore: Any = None
        # PluginServices (store, ask, config, http, history) and the per-room limit
        # on passive answers (an IFloodLimit); either may be None.
        self.services = services
        self.flood = flood

    def roomAllowed(self, command: Any, context: Any) -> bool:
        rooms = getattr(command, "rooms", None)
        if not rooms:
            return True
        return context.room in rooms or (context.channelId is not None and context.channelId in rooms)

    def usable(self, command: Any, context: Any) -> bool:
        """Whether C{# help} should list C{command} for this sender and room."""
        return self.roomAllowed(command, context) and self.permissions.allowed(command, context)

    def prepare(self, context: Any) -> None:
        """Give the context its ways to reach the server."""
        context.isAdmin = self.permissions.isAdmin(context.channelId, context.userHash)
        context.commands = self.commands
        context.clients = self.clients
        context.outbound = self.outbound
        context.dispatcher = self  # canUse() asks self.usable(command, context)
        context.services = self.services

    def invoke(self, command: Any, context: Any) -> defer.Deferred[list[Reply]]:
        result = self.invokeNow(command, context)
        return result if isinstance(result, defer.Deferred) else defer.succeed(result)

    def invokeNow(self, command: Any, context: Any) -> list[Reply] | defer.Deferred[list[Reply]]:
        """L{invoke}; replies known at once come as a list, not a fired Deferred."""
        self.prepare(context)
        rooms = getattr(self.permissions, "rooms", None)
        if rooms is not None:
            # This command's settings in this room (kb_room_settings), for plugins to read.
            context.extra["roomSettings"] = rooms.settingsOf(context.channelId).settingsOf(command.name)
        pluginOf = getattr(self.commands, "pluginOf", None)
        if pluginOf is not None:
            context.plugin = pluginOf(command)
        refusal = self.refusal(command, context)
        # None (no refusal) first: isinstance on Deferred goes through ABCMeta in Python.
        if refusal is not None and isinstance(refusal, defer.Deferred):
            return refusal.addCallback(self._decided, command, context)
        return self._decided(refusal, command, context)

    def _decided(self, refusal: str | None, command: Any, context: Any) -> Any:
        passive = context.match is not None
        if refusal is not None:
            log.info(
                "[MSG] # {name} refused for {user} in {room}: {why}",
                name=command.name,
                user=context.userHash,
                room=context.room,
                why=refusal or "cooldown (silent)",
            )
            return [] if passive or not refusal else [Reply(refusal)]
        timeout = getattr(command, "timeout", None) or self.timeout
        context.extra["ran"] = True  # the router times only calls that really ran
        return runCommandNow(command, context, self.clock, timeout)

    def refusal(self, command: Any, context: Any) -> Any:
        """
        A Korean reply refusing the call ("" refuses silently), or None to run it;
        a Deferred of that while a shared cooldown store answers.
        """
        # roomAllowed, inline: most commands name no rooms.
        if getattr(command, "rooms", None) and not self.roomAllowed(command, context):
            return DISABLED_REPLY
        refused = self.permissions.check(command, context)
        if refused is not None:
            return refused
        declared = getattr(command, "options", ())
        if declared:
            try:
                context.options, context.rest = parseOptions(context.args, declared)
                context.extra["optionsParsed"] = True
            except OptionError as e:
                return f"{e}\n사용법: {usageOf(command)}"
        declaredCooldown = getattr(command, "cooldown", None)
        # Most commands declare none: no Cooldown.of call for them.
        cooldown = None if declaredCooldown is None else Cooldown.of(declaredCooldown)
        if cooldown is not None and not (self.exemptAdmins and context.isAdmin):
            if self.cooldownStore is not None:
                d = self.cooldownStore.acquire(command.name, cooldown, context)
                known, refused = resultNow(d)
                if not known:
                    return d.addCallback(self._cooledDown, context)
                return self._cooledDown(refused, context)
            refused = self.cooldowns.check(command.name, cooldown, context)
            if refused is not None:
                return refused.reply if refused.notify else ""
            self.cooldowns.use(command.name, cooldown, context)
        # _flood only concerns passive answers: a `# name` call skips the call.
        return None if context.match is None else self._flood(context)

    def _cooledDown(self, refused: Any, context: Any) -> str | None:
        if refused is not None:
            return refused.reply if refused.notify else ""
        return self._flood(context)

    def _flood(self, context: Any) -> str | None:
        # Passive answers (patterns, keywords, mentions, auto-replies) are the bot
        # speaking unasked: a room gets only so many of them, whoever triggers them.
        if context.match is not None and self.flood is not None:
            if not self.flood.allow(str(context.channelId or context.room)):
                return ""
        return None
