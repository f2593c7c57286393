"""The admin web in a real headless Chromium at phone width: log in, approve a waiting room, find its messages in the chat log."""

from __future__ import annotations

from twisted.internet import reactor, threads
from twisted.trial.unittest import TestCase

from tests.support import analyze, tempDir, waitUntil
from tests.support.adminhelpers import TOKEN, RunningServer
from tests.support.browser import DESKTOP, PHONE, fitsWidth, inBrowser, requireChromium, screenshot


class AdminInChromium(TestCase):
    timeout = 120

    def setUp(self):
        requireChromium()

    async def test_login_approve_a_room_then_search_the_chat_log(self):
        server = RunningServer(self, cfg={"rooms": {"approval": True, "refresh_interval": 0.2}})
        await server.start()
        client = await server.connectClient()
        rooms = server.service.commandParts.rooms
        client.send(analyze("# echo 들어왔어요", room="새 점심방", channelId="777", userHash="u7"))
        client.send(analyze("오늘 점심은 김치찌개", room="새 점심방", channelId="777", userHash="u7"))
        client.send(analyze("다른 방 이야기", room="다른방", channelId="778"))
        await waitUntil(lambda: rooms.status("777") == "pending" and rooms.status("778") == "pending",
                        "both rooms recorded")
        await server.rows()
        shots = tempDir(self)

        def askBot(text):
            # From the browser's thread: the bridge lives on the reactor.
            client.send(analyze(text, room="새 점심방", channelId="777", userHash="u7"))
            return client.waitForEvent("messageResponse", text=text.replace("# echo ", "에코: "))

        def script(browser):
            context = browser.new_context(**PHONE)
            page = context.new_page()
            seen = {}
            page.goto(server.base + "/rooms")
            page.fill("#token", TOKEN)
            with page.expect_navigation():
                page.click("form.login button")
            with page.expect_navigation():
                page.click("nav.menu >> text=방")
            row = 'tr.room[data-room="777"]'
            seen["before"] = page.get_attribute(row, "data-status")
            with page.expect_navigation():
                page.click(f"{row} button.approve")
            seen["notice"] = page.inner_text(".notice")
            seen["after"] = page.get_attribute(row, "data-status")
            seen["other"] = page.get_attribute('tr.room[data-room="778"]', "data-status")
            seen["roomsFit"] = fitsWidth(page)
            screenshot(page, shots, "admin-rooms-phone.png")
            # The approval reaches the bot within its refresh interval: it answers now.
            reply = threads.blockingCallFromThread(reactor, askBot, "# echo 승인됐나요")
            seen["reply"] = reply["data"]["text"]
            # Announcements have their place in the menu.
            with page.expect_navigation():
                page.click("nav.menu >> text=예약 메시지")
            seen["schedules"] = page.inner_text("h1")
            with page.expect_navigation():
                page.click("nav.menu >> text=채팅 로그")
            page.select_option("#room", "777")
            page.fill("#q", "점심")
            with page.expect_navigation():
                page.click("form.search button")
            seen["found"] = page.eval_on_selector_all(
                "tr.chat", "trs => trs.map(tr => tr.children[3].innerText)")
            seen["chatFit"] = fitsWidth(page)
            screenshot(page, shots, "admin-chatlog-phone.png")
            with page.expect_navigation():
                page.click("nav.menu >> text=변경 기록")
            seen["audit"] = page.eval_on_selector_all(
                "tr.audit", "trs => trs.map(tr => tr.children[2].innerText + ' ' + tr.children[3].innerText)")
            desktop = browser.new_context(storage_state=context.storage_state(), **DESKTOP)
            wide = desktop.new_page()
            wide.goto(server.base + "/rooms")
            screenshot(wide, shots, "admin-rooms.png")
            return seen

        seen = await inBrowser(script)
        self.assertEqual((seen["before"], seen["after"], seen["other"]), ("pending", "approved", "pending"))
        self.assertIn("777", seen["notice"])
        self.assertEqual(seen["reply"], "에코: 승인됐나요")
        self.assertEqual(seen["schedules"], "예약 메시지")
        self.assertEqual(seen["found"], ["오늘 점심은 김치찌개"])
        self.assertEqual(seen["audit"], ["room.approved 777"])
        self.assertTrue(seen["roomsFit"])
        self.assertTrue(seen["chatFit"])
        # The message sent while the room waited was logged but not answered.
        answered = [e["data"]["text"] for e in client.received if e.get("event") == "messageResponse"]
        self.assertEqual(answered, ["에코: 승인됐나요"])
