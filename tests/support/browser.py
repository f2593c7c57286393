"""A real headless Chromium (Debian's) driven by Playwright's sync API in a worker thread, so trial's reactor keeps serving."""

from __future__ import annotations

import os
import shutil
from typing import Any, Callable

from twisted.internet import threads
from twisted.trial.unittest import SkipTest

CHROMIUM = "/usr/bin/chromium"
# Set to a directory (e.g. docs) to keep the screenshots the browser tests take.
SCREENSHOT_DIR = os.environ.get("KKOBOT_SCREENSHOT_DIR")
PHONE = {"viewport": {"width": 412, "height": 915}, "device_scale_factor": 2, "is_mobile": True,
         "has_touch": True, "locale": "ko-KR"}
DESKTOP = {"viewport": {"width": 1200, "height": 900}, "device_scale_factor": 1, "locale": "ko-KR"}


def requireChromium() -> None:
    """Skip (with the reason) where the browser or the library is missing; CI installs both."""
    if not os.path.exists(CHROMIUM):
        raise SkipTest(f"{CHROMIUM} is missing: apt-get install chromium (.ci/run does)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        raise SkipTest("the playwright package is missing: pip install -e '.[test]'")


def inBrowser(script: Callable[[Any], Any]) -> Any:
    """
    A Deferred of C{script(browser)}, run in a reactor worker thread with a launched
    Chromium (closed afterwards). Playwright's sync objects belong to that thread:
    everything touching them stays inside C{script}; it reaches the reactor (a
    bridge sending a message) with L{threads.blockingCallFromThread}.
    """

    def run() -> Any:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
            try:
                return script(browser)
            finally:
                browser.close()

    return threads.deferToThread(run)


def screenshot(page: Any, directory: str, name: str, fullPage: bool = True) -> str:
    """A PNG of the page in C{directory}, copied to KKOBOT_SCREENSHOT_DIR when set."""
    path = os.path.join(directory, name)
    page.screenshot(path=path, full_page=fullPage)
    with open(path, "rb") as f:
        assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    if SCREENSHOT_DIR:
        shutil.copy(path, os.path.join(SCREENSHOT_DIR, name))
    return path


def fitsWidth(page: Any) -> bool:
    """No horizontal scrolling (the phone-width check)."""
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))
