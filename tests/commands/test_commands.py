"""Command plugins: parsing `# name args`, discovery (package and drop-in folder), running."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer, task
from twisted.plugin import IPlugin
from twisted.trial.unittest import SynchronousTestCase, TestCase
from zope.interface import implementer
from zope.interface.verify import verifyObject

from kkobot.commands import (
    ERROR_REPLY,
    CommandContext,
    CommandRegistry,
    Reply,
    directiveFor,
    normalizeReplies,
    parseInvocation,
    runCommand,
)
from kkobot.interfaces import ICommand, ICommandContext
from tests.support import captureLogs, logText


def context(text: str, command: str = "", args: str = "") -> CommandContext:
    return CommandContext(
        room="테스트방",
        channelId="18398338829933568",
        sender="홍길동",
        userHash="a1b2c3",
        botName="kkobot",
        isGroupChat=True,
        isMention=False,
        text=text,
        command=command,
        args=args,
        now=1795602310.0,
    )


def invoke(registry: CommandRegistry, text: str) -> defer.Deferred[list[Reply]]:
    """What the router does with one message text."""
    invocation = parseInvocation(text)
    assert invocation is not None, text
    command = registry.lookup(invocation[0])
    assert command is not None, invocation
    return runCommand(command, context(text, *invocation))


class ParseInvocationTests(SynchronousTestCase):
    def test_cases(self) -> None:
        cases = {
            "# echo 안녕하세요": ("echo", "안녕하세요"),
            "#echo 안녕하세요": ("echo", "안녕하세요"),
            "# ECHO 안녕하세요": ("echo", "안녕하세요"),
            "   #   Echo   앞뒤 공백   ": ("echo", "앞뒤 공백"),
            "# echo": ("echo", ""),
            "# echo    ": ("echo", ""),
            "# echo\n둘째 줄": ("echo", "둘째 줄"),
            "# echo 첫 줄\n둘째 줄": ("echo", "첫 줄\n둘째 줄"),
            "# echo a  b   c": ("echo", "a  b   c"),
            "#\techo\tx": ("echo", "x"),
            "# 날씨 서울": ("날씨", "서울"),
        }
        for text, expected in cases.items():
            self.assertEqual(parseInvocation(text), expected, text)

    def test_notCommands(self) -> None:
        for text in ["", "   ", "#", "#   ", "안녕하세요", "echo 안녕", "a # echo x",
                     "＃ echo x"]:
            self.assertIsNone(parseInvocation(text), text)

    def test_directive(self) -> None:
        self.assertEqual(directiveFor("echo"), "# echo")


class NormalizeRepliesTests(SynchronousTestCase):
    def test_shapes(self) -> None:
        self.assertEqual(normalizeReplies(None), [])
        self.assertEqual(normalizeReplies(""), [])
        self.assertEqual(normalizeReplies("a"), [Reply("a")])
        self.assertEqual(normalizeReplies(Reply("a", 500)), [Reply("a", 500)])
        self.assertEqual(normalizeReplies(["a", None, "", Reply("b")]), [Reply("a"), Reply("b")])
        self.assertEqual(normalizeReplies(("a", "b")), [Reply("a"), Reply("b")])

    def test_wrongType(self) -> None:
        self.assertRaises(TypeError, normalizeReplies, [1])
        self.assertRaises(TypeError, normalizeReplies, [b"bytes"])


class BuiltinDiscoveryTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.logs = captureLogs(self)
        self.registry = CommandRegistry()
        self.registry.load()

    def test_echoFound(self) -> None:
        echo = self.registry.lookup("echo")
        self.assertIsNotNone(echo)
        verifyObject(ICommand, echo)
        self.assertTrue(IPlugin.providedBy(echo))
        self.assertIs(self.registry.lookup("ECHO"), echo)
        self.assertIn(echo, self.registry.commands())
        self.assertEqual(echo.usage, "# echo {내용}")
        self.assertTrue(echo.description)
        self.assertEqual(self.registry.failures, [])
        self.assertIsNone(self.registry.lookup("없는명령"))

    def test_loadSaysWhichCommands(self) -> None:
        self.assertIn("[STARTUP] loaded", logText(self.logs))
        self.assertIn("echo", logText(self.logs))

    def test_echoReplies(self) -> None:
        self.assertEqual(self.successResultOf(invoke(self.registry, "# echo 안녕하세요")),
                         [Reply("에코: 안녕하세요")])
        self.assertEqual(self.successResultOf(invoke(self.registry, "# echo")),
                         [Reply("사용법: # echo {내용}")])
        self.assertEqual(self.successResultOf(invoke(self.registry, "#ECHO   😀 이모지  ")),
                         [Reply("에코: 😀 이모지")])

    def test_contextProvidesInterface(self) -> None:
        verifyObject(ICommandContext, context("# echo x", "echo", "x"))


@implementer(IPlugin, ICommand)
class Fake:
    name = "fake"
    aliases = ()
    description = "test"
    usage = "# fake"

    def __init__(self, run: Any) -> None:
        self.run = run


class RunCommandTests(TestCase):
    def setUp(self) -> None:
        self.logs = captureLogs(self)

    def run_(self, fn: Any, args: str = "x") -> defer.Deferred[list[Reply]]:
        return runCommand(Fake(fn), context(f"# fake {args}", "fake", args))

    def test_asyncDef(self) -> None:
        clock = task.Clock()

        async def run(ctx: Any) -> list[Any]:
            await task.deferLater(clock, 1.0, lambda: None)
            return [f"비동기: {ctx.args}", Reply("MEDIA_URL:https://example.invalid/a.png", 1500)]

        d = self.run_(run, "값")
        self.assertNoResult(d)
        clock.advance(1)
        self.assertEqual(
            self.successResultOf(d),
            [Reply("비동기: 값"), Reply("MEDIA_URL:https://example.invalid/a.png", 1500)],
        )

    def test_deferred(self) -> None:
        pending: defer.Deferred[str] = defer.Deferred()
        d = self.run_(lambda ctx: pending)
        self.assertNoResult(d)
        pending.callback("나중에")
        self.assertEqual(self.successResultOf(d), [Reply("나중에")])

    def test_realReactorDeferred(self) -> Any:
        from twisted.internet import reactor

        d = self.run_(lambda ctx: task.deferLater(reactor, 0, lambda: "곧"))
        d.addCallback(self.assertEqual, [Reply("곧")])
        return d

    def test_noneIsNoReply(self) -> None:
        self.assertEqual(self.successResultOf(self.run_(lambda ctx: None)), [])

    def test_raisingGivesKoreanErrorAndLogsTraceback(self) -> None:
        def run(ctx: Any) -> str:
            raise KeyError("no such thing")

        self.assertEqual(self.successResultOf(self.run_(run)), [Reply(ERROR_REPLY)])
        self.assertEqual(len(self.flushLoggedErrors(KeyError)), 1)
        self.assertIn("no such thing", logText(self.logs))
        self.assertIn("'fake'", logText(self.logs))

    def test_failingAsyncDef(self) -> None:
        async def run(ctx: Any) -> str:
            raise ValueError("async boom")

        self.assertEqual(self.successResultOf(self.run_(run)), [Reply(ERROR_REPLY)])
        self.assertEqual(len(self.flushLoggedErrors(ValueError)), 1)

    def test_failingDeferred(self) -> None:
        self.assertEqual(
            self.successResultOf(self.run_(lambda ctx: defer.fail(OSError("later boom")))),
            [Reply(ERROR_REPLY)],
        )
        self.assertEqual(len(self.flushLoggedErrors(OSError)), 1)

    def test_wrongReturnType(self) -> None:
        self.assertEqual(self.successResultOf(self.run_(lambda ctx: [42])), [Reply(ERROR_REPLY)])
        self.assertEqual(len(self.flushLoggedErrors(TypeError)), 1)
