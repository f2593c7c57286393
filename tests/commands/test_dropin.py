"""Drop-in command files: a .py file in the plugin folder is a command after a restart."""

from __future__ import annotations

import os
import re
import textwrap
import uuid
from typing import Any

from twisted.trial.unittest import SkipTest, SynchronousTestCase

from kkobot.commands import CommandRegistry, Reply
from kkobot.commands.reload import describeReport
from tests.support import captureLogs, forgetDropins, logText, tempDir
from tests.commands.test_commands import invoke
from tests.support.paths import REPO

ROOT = REPO


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


# The built-in plugins every registry has (kkobot/plugins/).
BUILTINS = ["echo", "help", "ping", "reload"]


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
        self.assertEqual({c.name for c in registry.commands()}, {*BUILTINS, name})
        self.assertIn(name, logText(self.logs))

    def test_dropinAddedBeforeARestartIsFound(self) -> None:
        # The folder exists but is empty at the first start; a file appears; restart.
        first = self.load()
        self.assertEqual([c.name for c in first.commands()], BUILTINS)
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
        self.assertEqual([c.name for c in registry.commands()], BUILTINS)

    def test_duplicateTriggerKeepsTheFirstAndWarns(self) -> None:
        writePlugin(self.dir, HELLO_PLUGIN.replace('name = "NAME"', 'name = "echo"'))
        registry = self.load()
        self.assertEqual(self.successResultOf(invoke(registry, "# echo 안녕하세요")),
                         [Reply("에코: 안녕하세요")])
        warnings = [e for e in self.logs if e["log_level"].name == "warn"]
        self.assertEqual(len(warnings), 1)
        self.assertIn("'echo'", logText(warnings))


# A file that leaves a mark when it runs: a refused file must never run at all.
MARKING_PLUGIN = HELLO_PLUGIN + """
    import pathlib
    pathlib.Path(__file__ + ".ran").touch()
"""

OTHER_UID = 65534


class UntrustedDropinTests(SynchronousTestCase):
    """Plugin code others could have written is never run (as the config key is checked)."""

    def setUp(self) -> None:
        self.logs = captureLogs(self)
        self.dir = tempDir(self)
        forgetDropins(self, self.dir)

    def errors(self) -> str:
        return logText([e for e in self.logs if e["log_level"].name == "error"])

    def test_folderWritableByOthersRunsNothing(self) -> None:
        name, path = writePlugin(self.dir, MARKING_PLUGIN)
        os.chmod(self.dir, 0o777)
        registry = CommandRegistry(self.dir)
        registry.load()
        self.assertIsNone(registry.lookup(name))
        self.assertFalse(os.path.exists(path + ".ran"))
        self.assertIsNotNone(registry.lookup("echo"))
        [failure] = registry.failures
        self.assertTrue(failure.refused)
        self.assertIn(f"plugin folder {self.dir} is writable by group or others (mode 0777); "
                      f"fix it with: chmod go-w {self.dir}", self.errors())

    def test_fileWritableByGroupIsRefusedOthersLoad(self) -> None:
        good, _ = writePlugin(self.dir, HELLO_PLUGIN)
        bad, path = writePlugin(self.dir, MARKING_PLUGIN, stem="kkobot_loose")
        os.chmod(path, 0o664)
        registry = CommandRegistry(self.dir)
        registry.load()
        self.assertIsNotNone(registry.lookup(good))
        self.assertIsNone(registry.lookup(bad))
        self.assertFalse(os.path.exists(path + ".ran"))
        self.assertIn(f"refusing to run plugins: plugin file {path} is writable by group or "
                      "others (mode 0664)", self.errors())

    def test_fileOwnedByAnotherUserIsRefused(self) -> None:
        if os.geteuid() != 0:
            raise SkipTest("giving a file to another user needs root")
        bad, path = writePlugin(self.dir, MARKING_PLUGIN, stem="kkobot_theirs")
        os.chown(path, OTHER_UID, -1)
        registry = CommandRegistry(self.dir)
        registry.load()
        self.assertIsNone(registry.lookup(bad))
        self.assertFalse(os.path.exists(path + ".ran"))
        self.assertIn(f"plugin file {path} is owned by", self.errors())
        self.assertIn(f"fix it with: chown root {path}", self.errors())

    def test_reloadAfterTheFolderWasOpenedRunsNothingNew(self) -> None:
        kept, keptPath = writePlugin(self.dir, HELLO_PLUGIN)
        registry = CommandRegistry(self.dir)
        registry.load()
        self.assertIsNotNone(registry.lookup(kept))
        os.chmod(self.dir, 0o757)
        added, addedPath = writePlugin(self.dir, MARKING_PLUGIN)
        with open(keptPath, "a", encoding="utf-8") as f:
            f.write("\nimport pathlib\npathlib.Path(__file__ + '.ran').touch()\n")
        report = registry.reload()
        self.assertEqual((report.added, report.changed, report.removed), ([], [], []))
        self.assertIsNone(registry.lookup(added))
        self.assertFalse(os.path.exists(addedPath + ".ran"))
        self.assertFalse(os.path.exists(keptPath + ".ran"))
        # What was loaded while the folder was safe keeps answering.
        self.assertIsNotNone(registry.lookup(kept))
        self.assertIn("writable by group or others (mode 0757)", self.errors())
        self.assertIn(f"거부: {os.path.basename(self.dir)} — 다른 사용자가 바꿀 수 있어",
                      describeReport(report, len(registry.commands())))


def firstPythonBlock(path: str) -> tuple[str, str]:
    """The first ```python block of a document and the file name its first line gives."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    match = re.search(r"```python\n(.*?)```", text, re.S)
    assert match, f"{path} has no ```python block"
    source = match.group(1)
    named = re.match(r"#\s*(\S+\.py)", source)
    assert named, f"the block in {path} does not start with its file name"
    return os.path.basename(named.group(1)), source


class DocumentedExampleTests(SynchronousTestCase):
    """The plugin examples users copy from the docs work as they are."""

    def setUp(self) -> None:
        self.dir = tempDir(self)
        forgetDropins(self, self.dir)

    def check(self, doc: str) -> Any:
        path = os.path.join(ROOT, doc)
        if not os.path.exists(path):
            raise SkipTest(f"{doc} is not written yet")
        filename, source = firstPythonBlock(path)
        self.assertTrue(filename.startswith("kkobot_"), filename)
        # A distinct basename: twisted.plugin caches by it across folders.
        stem = filename[:-3] + "_" + uuid.uuid4().hex[:8]
        with open(os.path.join(self.dir, stem + ".py"), "w", encoding="utf-8") as f:
            f.write(source)
        registry = CommandRegistry(self.dir)
        registry.load()
        self.assertEqual(registry.failures, [])
        [command] = [c for c in registry.commands() if c.name not in BUILTINS]
        text = f"# {command.name}"
        replies = self.successResultOf(invoke(registry, text))
        self.assertEqual(len(replies), 1)
        return command, replies[0]

    def test_readme(self) -> None:
        command, reply = self.check("README.md")
        self.assertEqual(command.name, "hello")
        # The README promises this exact answer for the sender 홍길동.
        self.assertEqual(reply, Reply("안녕하세요, 홍길동님!"))

    def test_pluginsGuide(self) -> None:
        self.check("docs/plugins.md")
