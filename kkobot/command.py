"""The plugin author's API under its first name: everything is in L{kkobot.commands.api}."""

from kkobot.commands.api import (
    Command,
    Cooldown,
    Option,
    Plugin,
    Reply,
    Secret,
    command,
    daily,
    every,
)

__all__ = ["Command", "command", "Option", "Cooldown", "Reply", "daily", "every", "Plugin", "Secret"]
