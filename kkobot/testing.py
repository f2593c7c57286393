"""Testing helpers for plugin authors under their first name: see L{kkobot.commands.testing}."""

from kkobot.commands.testing import CommandTester, MemoryChatLog, Replies, Sent

__all__ = ["CommandTester", "MemoryChatLog", "Replies", "Sent"]
