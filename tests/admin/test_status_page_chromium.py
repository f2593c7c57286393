"""The status page in a real headless Chromium: log in through the form, see the device row and the chart."""

from __future__ import annotations

from twisted.trial.unittest import TestCase

from tests.support import analyze, tempDir
from tests.support.adminhelpers import TOKEN, RunningServer
from tests.support.browser import DESKTOP, PHONE, fitsWidth, inBrowser, requireChromium, screenshot


class StatusPageInChromium(TestCase):
    timeout = 90

    def setUp(self):
        requireChromium()

    async def test_deviceRowAndChartAfterLoggingIn(self):
        server = RunningServer(self)
        await server.start()
        client = await server.connectClient()
        client.send(analyze("# echo 안녕하세요"))
        client.send(analyze("오늘 점심 뭐 먹지", room="점심방", channelId="555"))
        await client.waitForEvent("messageResponse", text="에코: 안녕하세요")
        # A monitoring ping, as a 3.2.0 bridge answers the server's ping.
        client.send({"event": "ping", "data": {
            "bot_name": "kkobot", "server_timestamp": 1,
            "monitoring": {"total_memory": 6028, "memory_usage": 812, "memory_percent": 13.5,
                           "message_queue_size": 3, "active_rooms": 2}}})
        await server.rows()
        shots = tempDir(self)

        def script(browser):
            context = browser.new_context(**PHONE)
            page = context.new_page()
            page.goto(server.base + "/")
            seen = {"loginTitle": page.title()}  # no cookie yet: the login form
            # Type the token into the form like an operator would; the cookie does the rest.
            page.fill("#token", TOKEN)
            with page.expect_navigation():
                page.click("form.login button")
            seen["title"] = page.title()
            # The page's style sheet applies under its Content-Security-Policy (allowed by hash).
            seen["display"] = page.eval_on_selector(".summary", "e => getComputedStyle(e).display")
            seen["row"] = page.eval_on_selector_all(
                'tr.device[data-bot="kkobot"] td', "tds => tds.map(td => td.innerText)")
            seen["chart"] = page.evaluate(
                "(() => { const svg = document.getElementById('rate-chart');"
                " const box = svg.getBoundingClientRect();"
                " return {width: box.width, height: box.height,"
                "  bars: svg.querySelectorAll('g.bar rect').length}; })()")
            seen["rooms"] = page.eval_on_selector_all(
                "tr.room", "trs => trs.map(tr => tr.children[1].innerText)")
            seen["fits"] = fitsWidth(page)
            screenshot(page, shots, "status-page-phone.png")
            desktop = browser.new_context(storage_state=context.storage_state(), **DESKTOP)
            wide = desktop.new_page()
            wide.goto(server.base + "/")
            seen["desktopTitle"] = wide.title()
            screenshot(wide, shots, "status-page.png")
            return seen

        seen = await inBrowser(script)
        self.assertEqual(seen["loginTitle"], "kkobot 로그인")
        self.assertEqual(seen["title"], "kkobot 상태")
        self.assertEqual(seen["display"], "flex")
        row = seen["row"]
        self.assertEqual(row[0:4], ["kkobot", "5f3c2a1b9d8e7f60", "3.2.0", "127.0.0.1"])
        self.assertIn("812 / 6028 MB", row[6])
        self.assertEqual(row[7], "3")
        self.assertEqual(row[8], "승인됨")
        self.assertGreater(seen["chart"]["width"], 300)
        self.assertGreater(seen["chart"]["height"], 50)
        self.assertGreaterEqual(seen["chart"]["bars"], 1)
        self.assertEqual(sorted(seen["rooms"]), ["점심방", "테스트방"])
        self.assertTrue(seen["fits"])
        self.assertEqual(seen["desktopTitle"], "kkobot 상태")
