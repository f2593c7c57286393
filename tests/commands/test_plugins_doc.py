"""docs/plugins.md stays honest: its plugin file and its test run exactly as printed."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
import unittest

from twisted.trial.unittest import SynchronousTestCase
from tests.support.paths import DOCS

DOC = os.path.join(DOCS, "plugins.md")


def pythonBlocks() -> list[tuple[str, str]]:
    """Each complete ```python block with the file name (`x/y.py`) in the text just before it."""
    text = open(DOC, encoding="utf-8").read()
    blocks = []
    for found in re.finditer(r"```python\n(.*?)```", text, re.S):
        before = text[: found.start()].rstrip().splitlines()[-1]
        names = re.findall(r"`([\w/]+\.py)`", before)
        blocks.append((names[-1] if names else "", found.group(1)))
    return blocks


class PluginsDocTests(SynchronousTestCase):
    def test_first_block_is_a_named_drop_in_file_with_an_example_to_try(self):
        name, source = pythonBlocks()[0]
        self.assertRegex(name, r"^plugins/kkobot_\w+\.py$")
        compile(source, name, "exec")
        command = re.search(r'@command\(\s*"(\w+)"', source).group(1)
        self.assertIn(f"# {command} ", open(DOC, encoding="utf-8").read())

    def test_the_tutorial_test_passes_against_the_tutorial_plugin(self):
        (pluginName, plugin), (testName, testSource) = pythonBlocks()[:2]
        self.assertEqual(testName, "tests/test_hello.py")
        root = tempfile.mkdtemp()
        for name, source in ((pluginName, plugin), (testName, testSource)):
            os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
            with open(os.path.join(root, name), "w", encoding="utf-8") as f:
                f.write(source)
        cwd = os.getcwd()
        os.chdir(root)  # the tutorial test uses the relative `plugins` folder
        self.addCleanup(os.chdir, cwd)
        namespace: dict = {"__name__": "tutorial_test_hello"}
        exec(compile(testSource, testName, "exec"), namespace)
        suite = unittest.defaultTestLoader.loadTestsFromTestCase(namespace["HelloTests"])
        self.assertEqual(suite.countTestCases(), 4)
        result = unittest.TestResult()
        suite.run(result)
        self.assertEqual((result.failures, result.errors), ([], []))
        self.assertEqual(result.testsRun, 4)

    def test_every_python_block_is_a_named_file(self):
        names = [name for name, _ in pythonBlocks()]
        self.assertTrue(all(re.match(r"^(plugins/kkobot_\w+|tests/test_\w+)\.py$", n) for n in names), names)
        self.assertEqual(len(names), len(set(names)), names)

    def test_every_tutorial_test_passes_against_the_tutorial_plugins(self):
        """Every block, written where its name says, then the tests run as a reader would."""
        root = tempfile.mkdtemp()
        self.addCleanup(__import__("shutil").rmtree, root, True)
        tests = []
        for name, source in pythonBlocks():
            os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
            with open(os.path.join(root, name), "w", encoding="utf-8") as f:
                f.write(source)
            if name.startswith("tests/"):
                tests.append(name)
        self.assertGreaterEqual(len(tests), 5)
        done = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests],
            cwd=root, capture_output=True, text=True, timeout=300,
            env=dict(os.environ, PYTHONPATH=os.pathsep.join(p for p in sys.path if p)),
        )
        self.assertEqual(done.returncode, 0, done.stdout[-4000:] + done.stderr[-2000:])
        written = sum(len(re.findall(r"\n    def test_", src)) for n, src in pythonBlocks() if n.startswith("tests/"))
        self.assertIn(f"{written} passed", done.stdout)
