"""Command plugins: parsing `# name args`, discovery (package and drop-in folder), running."""

from __future__ import annotations

import os
import textwrap
import uuid
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
from tests.support import captureLogs, forgetDropins, logText, tempDir


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


def writePlugin(directory: str, source: str, stem: str = "kkobot_dropin") -> tuple[str, str]:
    """
    Write a drop-in file with a basename no other test uses (twisted.plugin caches
    plugins by module basename); return (command name, path).
    """
    suffix = uuid.uuid4().hex[:10]
    name = f"cmd{suffix}"
    path = os.path.join(directory, f"{stem}_{suffix}.py")
    with open(path, "w", encoding="utf-8") as f:
        f.write(textwrap.dedent(source).replace("NAME", name))
    return name, path


HELLO_PLUGIN = '''
    from twisted.plugin import IPlugin
    from zope.interface import implementer

    from kkobot.interfaces import ICommand


    @implementer(IPlugin, ICommand)
    class Hello:
        name = "NAME"
        aliases = ("NAME-alias",)
        description = "인사합니다."
        usage = "# NAME {이름}"

        def run(self, context):
            return f"안녕하세요, {context.args or context.sender}님!"


    hello = Hello()
'''


class DropinTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.logs = captureLogs(self)
        self.dir = tempDir(self)
        forgetDropins(self, self.dir)

    def load(self) -> CommandRegistry:
        registry = CommandRegistry(self.dir)
        registry.load()
        return registry

    def test_dropinFileBecomesACommand(self) -> None:
        name, path = writePlugin(self.dir, HELLO_PLUGIN)
        registry = self.load()
        self.assertEqual(registry.failures, [])
        self.assertEqual(self.successResultOf(invoke(registry, f"# {name} 철수")),
                         [Reply("안녕하세요, 철수님!")])
        self.assertEqual(self.successResultOf(invoke(registry, f"# {name}-alias")),
                         [Reply("안녕하세요, 홍길동님!")])
        self.assertIsNotNone(registry.lookup("echo"))
        self.assertEqual({c.name for c in registry.commands()}, {"echo", name})
        self.assertIn(name, logText(self.logs))

    def test_dropinAddedBeforeARestartIsFound(self) -> None:
        # The folder exists but is empty at the first start; a file appears; restart.
        first = self.load()
        self.assertEqual([c.name for c in first.commands()], ["echo"])
        name, _ = writePlugin(self.dir, HELLO_PLUGIN)
        second = self.load()
        self.assertIsNotNone(second.lookup(name))

    def test_brokenFileIsReportedAndOthersStillLoad(self) -> None:
        good, _ = writePlugin(self.dir, HELLO_PLUGIN)
        _, broken = writePlugin(self.dir, "def run(:\n    pass\n", stem="kkobot_broken")
        registry = self.load()
        [failure] = registry.failures
        self.assertEqual(failure.path, os.path.abspath(broken))
        self.assertIn("SyntaxError", failure.error)
        self.assertTrue(failure.module.startswith("kkobot.plugins.kkobot_broken_"))
        self.assertIsNotNone(registry.lookup("echo"))
        self.assertIsNotNone(registry.lookup(good))
        # twisted.plugin logs the import error itself too (anonymously).
        self.flushLoggedErrors(SyntaxError)
        errors = [e for e in self.logs if e["log_level"].name == "error"]
        self.assertEqual(len(errors), 1)
        self.assertIn(os.path.abspath(broken), logText(errors))
        self.assertIn("failed to import", logText(errors))

    def test_fileRaisingOnImportIsReported(self) -> None:
        _, broken = writePlugin(
            self.dir, "import kkobot_no_such_module_for_tests\n", stem="kkobot_missing"
        )
        registry = self.load()
        [failure] = registry.failures
        self.assertEqual(failure.path, os.path.abspath(broken))
        self.assertIn("kkobot_no_such_module_for_tests", failure.error)
        self.assertIsNotNone(registry.lookup("echo"))
        self.flushLoggedErrors(ImportError)

    def test_fileWithoutCommandsIsHarmless(self) -> None:
        writePlugin(self.dir, "HELPER = 1\n", stem="kkobot_helper")
        registry = self.load()
        self.assertEqual(registry.failures, [])
        self.assertEqual([c.name for c in registry.commands()], ["echo"])

    def test_duplicateTriggerKeepsTheFirstAndWarns(self) -> None:
        writePlugin(self.dir, HELLO_PLUGIN.replace('name = "NAME"', 'name = "echo"'))
        registry = self.load()
        self.assertEqual(self.successResultOf(invoke(registry, "# echo 안녕하세요")),
                         [Reply("에코: 안녕하세요")])
        warnings = [e for e in self.logs if e["log_level"].name == "warn"]
        self.assertEqual(len(warnings), 1)
        self.assertIn("'echo'", logText(warnings))


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
