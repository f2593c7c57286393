"""The context a routed command sees: every field from the message, the client and the router."""

from __future__ import annotations

from typing import Any

from twisted.internet import task
from twisted.plugin import IPlugin
from twisted.trial.unittest import SynchronousTestCase
from zope.interface import implementer

from kkobot.bridge.registry import ClientInfo
from kkobot.bridge.wireevents import ChatMessage
from kkobot.commands import CommandRegistry, Reply
from kkobot.commands.permissions import Permissions
from kkobot.commands.router import MessageRouter
from kkobot.interfaces import ICommand


@implementer(IPlugin, ICommand)
class Capture:
    name = "capture"
    aliases = ()
    description = "test"
    usage = "# capture"

    def __init__(self) -> None:
        self.seen: list[Any] = []

    def run(self, context: Any) -> str:
        self.seen.append(context)
        return "ok"


class ListLog:
    def __init__(self) -> None:
        self.rows: list[Any] = []

    def log(self, row: Any) -> None:
        self.rows.append(row)


class RoutedContextTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.clock.advance(1795602310.25)
        self.command = Capture()
        commands = CommandRegistry(None)
        commands.add(self.command)
        self.chatlog = ListLog()
        self.router = MessageRouter(
            commands, self.chatlog, self.clock, Permissions({"admins": ["boss"]}))
        self.client = ClientInfo("kkobot", "3.3.3", "MessengerBotR", "dev1", "127.0.0.1", 0.0)

    def test_everyFieldOfTheContext(self) -> None:
        message = ChatMessage(
            room="테스트방", text="  # CAPTURE  하나 둘  ", sender="홍길동", isGroupChat=True,
            isMention=True, channelId="18398338829933568", logId="1", userHash="boss")
        replies = self.router.handleMessageNow(self.client, message)
        self.assertEqual(replies, [Reply("ok")])
        [context] = self.command.seen
        self.assertEqual(
            (context.room, context.channelId, context.sender, context.userHash, context.botName,
             context.isGroupChat, context.isMention, context.text, context.command, context.args,
             context.now, context.rest, context.options, context.match, context.client),
            ("테스트방", "18398338829933568", "홍길동", "boss", "kkobot", True, True,
             "  # CAPTURE  하나 둘  ", "capture", "하나 둘", 1795602310.25, "하나 둘", {}, None,
             self.client))
        self.assertTrue(context.isAdmin)
        self.assertIs(context.commands, self.router.commands)
        self.assertTrue(context.canUse(self.command))
        self.assertIs(context.extra.get("ran"), True)
        self.assertEqual(context.extra.get("roomSettings"), None)
        # Every context gets dicts of its own.
        self.router.handleMessageNow(self.client, message._replace(userHash="someone"))
        first, second = self.command.seen
        self.assertIsNot(first.extra, second.extra)
        self.assertIsNot(first.options, second.options)
        self.assertFalse(second.isAdmin)

    def test_rowsOfMessageAndReply(self) -> None:
        message = ChatMessage(room="방", text="# capture x", sender="홍길동", isGroupChat=True,
                              channelId="7", userHash="u")
        self.router.handleMessageNow(self.client, message)
        received, reply = self.chatlog.rows
        self.assertEqual((received.directive, reply.directive), ("# capture", "# capture"))
        self.assertEqual((reply.room_name, reply.channel_id, reply.message, reply.bot_name,
                          reply.is_group_chat, reply.is_our_bot_response), ("방", "7", "ok", "kkobot", 1, 1))
        self.assertEqual(reply.server_timestamp, received.server_timestamp)
