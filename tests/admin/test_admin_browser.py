"""The admin web in a real headless Chromium at phone width: log in, approve a room, schedule an announcement, see it sent, find it in the chat log."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from twisted.internet import reactor, threads
from twisted.trial.unittest import TestCase

from kkobot.announcements.rules import WEEKDAYS
from tests.support import analyze, tempDir, waitUntil
from tests.support.adminhelpers import TOKEN, RunningServer
from tests.support.browser import DESKTOP, PHONE, fitsWidth, inBrowser, requireChromium, screenshot

SEOUL = ZoneInfo("Asia/Seoul")
# The announcement is due this long after the form is filled: time to preview and save it.
LEAD = timedelta(seconds=15)
NOTICE = "오늘 점심 공지: 12시 30분에 식당 앞에서 만나요"


class AdminInChromium(TestCase):
    timeout = 150

    def setUp(self):
        requireChromium()

    async def test_login_approve_a_room_schedule_an_announcement_see_it_sent_then_search_the_chat_log(self):
        # The runner looks often: the announcement leaves at its second, the test waits little.
        server = RunningServer(self, cfg={"rooms": {"approval": True, "refresh_interval": 0.2},
                                          "schedules": {"poll_interval": 0.5, "timezone": "Asia/Seoul"}})
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
            seen.update(scheduleAnnouncement(page, shots))
            # The bot's announcement reaches the table before the search.
            threads.blockingCallFromThread(reactor, server.service.chatlog.flush)
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
            wide.goto(server.base + "/schedules")
            screenshot(wide, shots, "admin-schedules.png")
            return seen

        seen = await inBrowser(script)
        self.assertEqual((seen["before"], seen["after"], seen["other"]), ("pending", "approved", "pending"))
        self.assertIn("777", seen["notice"])
        self.assertEqual(seen["reply"], "에코: 승인됐나요")
        self.assertEqual(seen["schedules"], "예약 메시지")
        self.assertIn("미리보기", seen["preview"])
        self.assertIn(seen["slot"], seen["preview"])
        self.assertIn(NOTICE, seen["preview"])
        self.assertIn("만들었습니다", seen["created"])
        self.assertEqual(seen["sent"], ["success"])
        self.assertEqual(seen["found"], [NOTICE, "오늘 점심은 김치찌개"])
        self.assertEqual(seen["audit"], ["schedule.add 1", "room.approved 777"])
        for fit in ("roomsFit", "chatFit", "formFit", "logFit"):
            self.assertTrue(seen[fit], fit)
        # The message sent while the room waited was logged but not answered; the
        # announcement was sent once.
        answered = [e["data"]["text"] for e in client.received if e.get("event") == "messageResponse"]
        self.assertEqual(answered, ["에코: 승인됐나요", NOTICE])


def scheduleAnnouncement(page, shots):
    """
    From the menu: a weekly announcement for today's weekday a few seconds ahead,
    previewed, saved, then its send log until the send shows (the page reloads
    itself while a send is near).
    """
    from playwright.sync_api import expect

    seen = {}
    with page.expect_navigation():
        page.click("nav.menu >> text=예약 메시지")
    seen["schedules"] = page.inner_text("h1")
    with page.expect_navigation():
        page.click("a.new")
    slot = datetime.now(SEOUL).replace(tzinfo=None, microsecond=0) + LEAD
    page.select_option("#room", "777")
    page.check("#kind-weekly")
    page.check(f"#day-{WEEKDAYS[slot.weekday()]}")
    page.fill("#times", slot.strftime("%H:%M:%S"))
    page.fill("#text", NOTICE)
    with page.expect_navigation():
        page.click("button.preview")
    seen["slot"] = slot.strftime("%Y-%m-%d")
    seen["preview"] = page.inner_text("section.preview")
    seen["formFit"] = fitsWidth(page)
    screenshot(page, shots, "admin-schedule-preview-phone.png", fullPage=False)
    with page.expect_navigation():
        page.click("button.save")
    seen["created"] = page.inner_text(".notice")
    screenshot(page, shots, "admin-schedules-phone.png")
    with page.expect_navigation():
        page.click('tr.schedule[data-id="1"] a.log')
    expect(page.locator("tr.send span[data-result=success]")).to_have_count(1, timeout=60_000)
    seen["sent"] = page.eval_on_selector_all("tr.send span[data-result]", "s => s.map(e => e.dataset.result)")
    seen["logFit"] = fitsWidth(page)
    screenshot(page, shots, "admin-schedule-log-phone.png")
    return seen
