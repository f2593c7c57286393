"""docs/plugins.md stays honest: its plugin file and its test run exactly as printed."""

from __future__ import annotations

import os
import re
import tempfile
import unittest

from twisted.trial.unittest import SynchronousTestCase

DOC = os.path.join(os.path.dirname(__file__), "..", "docs", "plugins.md")


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
