"""The status page in a real headless Chromium: log in through the form, see the device row and the chart."""

from __future__ import annotations

import base64
import json
import os
import shutil

from twisted.internet import defer, reactor
from twisted.trial.unittest import SkipTest, TestCase

from tests.support import cdp
from tests.support.adminhelpers import TOKEN, RunningServer
from tests.support import tempDir
from tests.support import analyze

# Set to a directory (e.g. docs) to keep the screenshots this test takes.
SCREENSHOT_DIR = os.environ.get("KKOBOT_SCREENSHOT_DIR")
PHONE = {"width": 412, "height": 915, "deviceScaleFactor": 2, "mobile": True}
DESKTOP = {"width": 1200, "height": 900, "deviceScaleFactor": 1, "mobile": False}


class StatusPageInChromium(TestCase):
    timeout = 60

    def setUp(self):
        if not os.path.exists(cdp.CHROMIUM):
            raise SkipTest(f"{cdp.CHROMIUM} is missing: apt-get install chromium (.ci/run does)")

    @defer.inlineCallbacks
    def test_deviceRowAndChartAfterLoggingIn(self):
        server = RunningServer(self)
        yield server.start()
        client = yield server.connectClient()
        client.send(analyze("# echo 안녕하세요"))
        client.send(analyze("오늘 점심 뭐 먹지", room="점심방", channelId="555"))
        yield client.waitForEvent("messageResponse", text="에코: 안녕하세요")
        # A monitoring ping, as a 3.2.0 bridge answers the server's ping.
        client.send({"event": "ping", "data": {
            "bot_name": "kkobot", "server_timestamp": 1,
            "monitoring": {"total_memory": 6028, "memory_usage": 812, "memory_percent": 13.5,
                           "message_queue_size": 3, "active_rooms": 2}}})
        yield server.rows()

        profile = tempDir(self)
        pipe = cdp.launch(reactor, profile)
        self.addCleanup(self._stopChromium, pipe)
        page = yield cdp.Page.open(pipe)
        yield page.call("Emulation.setDeviceMetricsOverride", **PHONE)
        yield page.loading(lambda: page.call("Page.navigate", url=server.base + "/"))
        title = yield page.evaluate("document.title")
        self.assertEqual(title, "kkobot 로그인")  # no cookie yet: the login form

        # Type the token into the form like an operator would; the cookie does the rest.
        fill = (f"document.getElementById('token').value = {json.dumps(TOKEN)};"
                "document.querySelector('form.login').submit()")
        yield page.loading(lambda: page.evaluate(fill))
        html = yield page.evaluate("document.documentElement.outerHTML")
        self.assertIn("<title>kkobot 상태</title>", html)
        # The page's style sheet applies under its Content-Security-Policy (allowed by hash).
        display = yield page.evaluate(
            "getComputedStyle(document.querySelector('.summary')).display")
        self.assertEqual(display, "flex")

        row = yield page.evaluate(
            "Array.from(document.querySelectorAll('tr.device[data-bot=\"kkobot\"] td'))"
            ".map(td => td.innerText)"
        )
        self.assertEqual(row[0:4], ["kkobot", "5f3c2a1b9d8e7f60", "3.2.0", "127.0.0.1"])
        self.assertIn("812 / 6028 MB", row[6])
        self.assertEqual(row[7], "3")
        self.assertEqual(row[8], "승인됨")
        bars = yield page.evaluate(
            "(() => { const svg = document.getElementById('rate-chart');"
            " const box = svg.getBoundingClientRect();"
            " return {width: box.width, height: box.height,"
            "  bars: svg.querySelectorAll('g.bar rect').length}; })()"
        )
        self.assertGreater(bars["width"], 300)
        self.assertGreater(bars["height"], 50)
        self.assertGreaterEqual(bars["bars"], 1)
        rooms = yield page.evaluate(
            "Array.from(document.querySelectorAll('tr.room')).map(tr => tr.children[1].innerText)"
        )
        self.assertEqual(sorted(rooms), ["점심방", "테스트방"])
        # Phone width: no horizontal scrolling.
        overflow = yield page.evaluate(
            "document.documentElement.scrollWidth <= window.innerWidth"
        )
        self.assertTrue(overflow)
        yield self._screenshot(page, "status-page-phone.png")
        yield page.call("Emulation.setDeviceMetricsOverride", **DESKTOP)
        yield self._screenshot(page, "status-page.png")

    @defer.inlineCallbacks
    def _screenshot(self, page, name):
        shot = yield page.call("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        png = base64.b64decode(shot["data"])
        self.assertEqual(png[:8], b"\x89PNG\r\n\x1a\n")
        path = os.path.join(tempDir(self), name)
        with open(path, "wb") as f:
            f.write(png)
        if SCREENSHOT_DIR:
            shutil.copy(path, os.path.join(SCREENSHOT_DIR, name))

    @defer.inlineCallbacks
    def _stopChromium(self, pipe):
        if not pipe.ended.called:
            try:
                yield pipe.call("Browser.close")
            except Exception:
                pass
        if not pipe.ended.called:
            pipe.transport.signalProcess("KILL")
        yield pipe.ended
