"""Commands: the author API, finding and loading plugins, and running them for a message.

`kkobot.commands.Reply` and the other names below are what plugin authors and
embedders import; they stay here whatever module of the package defines them.
"""

from kkobot.commands.context import CommandContext
from kkobot.commands.loader import PluginFailure
from kkobot.commands.registry import (
    PREFIX,
    CommandRegistry,
    Invocation,
    directiveFor,
    matchCommand,
    parseInvocation,
)
from kkobot.commands.reply import ERROR_REPLY, TIMEOUT_REPLY, Reply, normalizeReplies
from kkobot.commands.run import DEFAULT_TIMEOUT, runCommand, runCommandNow

__all__ = [
    "PREFIX", "ERROR_REPLY", "TIMEOUT_REPLY", "DEFAULT_TIMEOUT", "Reply", "CommandContext",
    "Invocation", "matchCommand", "parseInvocation", "directiveFor", "normalizeReplies", "PluginFailure",
    "CommandRegistry", "runCommand", "runCommandNow",
]
