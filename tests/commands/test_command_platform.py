"""The command platform as a plugin author and a chat user see it, through kkobot.testing."""

from __future__ import annotations

import os
import tempfile

from twisted.internet import defer
from twisted.trial.unittest import SynchronousTestCase

from kkobot.command import Cooldown, Option, Reply, command, daily, every
from kkobot.commands import TIMEOUT_REPLY
from kkobot.commands.permissions import ADMIN_ONLY_REPLY, DISABLED_REPLY
from kkobot.testing import CommandTester


@command(
    "imgext",
    "이미지를 보냅니다.",
    options=[Option("media-wait-time", int, default=3000, min=0, max=60000, help="대기 ms")],
    examples=[("# imgext http://x/a.png", "MEDIA_URL:http://x/a.png")],
)
def imgext(context):
    urls = context.rest.split()
    return Reply.media(*urls, waitTime=context.options["media_wait_time"])


@command("secret", "관리자 명령", adminOnly=True)
def secret(context):
    return "비밀"


@command("roll", "주사위", cooldown=Cooldown(user=30, room=5, overall=2))
def roll(context):
    return "🎲 4"


@command("lol", "웃음에 반응", pattern=r"ㅋ{3,}", cooldown=60)
def lol(context):
    return f"웃음 {len(context.match.group(0))}개"


@command("only", "한 방 전용", rooms=("공지방",))
def only(context):
    return "여기서만"


class BuiltinsTests(SynchronousTestCase):
    def setUp(self):
        self.bot = CommandTester(imgext, secret, roll, lol, only, admins=["boss"],
                                 config={"rooms": {"ch:잠긴방": {"disabled_commands": ["roll"]}}})
        self.addCleanup(self.bot.stop)

    def test_help_lists_what_this_user_may_use_one_line_each(self):
        lines = self.bot.send("# help").text.splitlines()
        self.assertTrue(all(line.startswith("# ") for line in lines), lines)
        names = [line.split()[1] for line in lines]
        self.assertIn("echo", names)
        self.assertIn("ping", names)
        self.assertNotIn("secret", names)
        self.assertNotIn("reload", names)
        self.assertNotIn("only", names)  # not in this room
        admin = [line.split()[1] for line in self.bot.send("# help", user="boss").text.splitlines()]
        self.assertIn("secret", admin)
        self.assertIn("reload", admin)
        locked = self.bot.send("# help", room="잠긴방").text
        self.assertNotIn("# roll", locked)
        self.assertIn("# only", self.bot.send("# help", room="공지방").text)

    def test_help_for_one_command_shows_usage_options_examples(self):
        text = self.bot.send("# help imgext").text
        self.assertIn("사용법: # imgext [--media-wait-time=값]", text)
        self.assertIn("--media-wait-time=정수 (기본 3000, 0~60000): 대기 ms", text)
        self.assertIn("# imgext http://x/a.png → MEDIA_URL:http://x/a.png", text)
        self.assertIn("사용법: # echo {내용}", self.bot.send("# 도움말 echo").text)
        self.assertIn("쿨다운: 사용자별 30초, 방별 5초, 전체 2초", self.bot.send("# help roll").text)
        self.assertIn("알 수 없는 명령", self.bot.send("# help secret").text)

    def test_echo_has_no_cooldown_and_a_usage_reply(self):
        for _ in range(5):
            self.bot.assertReply("# echo 안녕하세요", "에코: 안녕하세요")
        self.bot.assertReply("# echo", "사용법: # echo {내용}")
        self.bot.checkExamples(self.bot.commands.lookup("echo"))

    def test_ping_reports_the_phones_round_trip(self):
        self.assertIn("아직 측정된 왕복 시간이 없습니다", self.bot.send("# ping").text)
        self.bot.setRtt(87)
        self.bot.advance(3)
        self.bot.assertReply("# 핑", "퐁! kkobot 왕복 시간 87ms (3초 전 측정)")

    def test_reload_is_admin_only(self):
        self.bot.assertReply("# reload", ADMIN_ONLY_REPLY)
        self.assertIn("플러그인을 다시 불러왔습니다", self.bot.send("# reload", user="boss").text)


class OptionsTests(SynchronousTestCase):
    def setUp(self):
        self.bot = CommandTester(imgext)
        self.addCleanup(self.bot.stop)

    def test_typed_option_and_media_reply(self):
        replies = self.bot.send("# IMGEXT --media-wait-time=5000 http://x/a.png http://x/b.png")
        self.assertEqual(replies.texts, ["MEDIA_URL:http://x/a.png|||http://x/b.png"])
        self.assertEqual(replies[0].mediaWaitTime, 5000)
        self.assertEqual(self.bot.send("# imgext http://x/a.png")[0].mediaWaitTime, 3000)
        self.bot.checkExamples(imgext)

    def test_bad_options_get_the_usage_back(self):
        text = self.bot.send("# imgext --media-wait-time=99999 http://x").text
        self.assertIn("--media-wait-time 값은 60000 이하여야 합니다.", text)
        self.assertIn("사용법: # imgext", text)
        self.assertIn("정수여야", self.bot.send("# imgext --media-wait-time=abc u").text)
        self.assertIn("알 수 없는 옵션입니다: --bogus", self.bot.send("# imgext --bogus u").text)


class CooldownTests(SynchronousTestCase):
    def setUp(self):
        self.bot = CommandTester(roll, lol, admins=["boss"])
        self.addCleanup(self.bot.stop)

    def test_one_notice_with_seconds_then_silence_until_it_ends(self):
        self.bot.assertReply("# roll", "🎲 4")
        self.bot.advance(10)
        self.bot.assertReply("# roll", "잠시 후 다시 사용해 주세요. 20초 남았습니다.")
        self.bot.assertNoReply("# roll")
        self.bot.assertNoReply("# roll")
        self.bot.advance(20)
        self.bot.assertReply("# roll", "🎲 4")

    def test_room_and_overall_scopes(self):
        self.bot.assertReply("# roll", "🎲 4", user="a")
        # Another user in the same room: the 5 s room cooldown applies.
        self.bot.assertReply("# roll", "잠시 후 다시 사용해 주세요. 5초 남았습니다.", user="b")
        # Another room: only the 2 s overall cooldown.
        self.bot.assertReply("# roll", "잠시 후 다시 사용해 주세요. 2초 남았습니다.", user="c", room="다른방")
        self.bot.advance(2)
        self.bot.assertReply("# roll", "🎲 4", user="c", room="다른방")

    def test_admins_are_exempt(self):
        for _ in range(3):
            self.bot.assertReply("# roll", "🎲 4", user="boss")

    def test_admins_not_exempt_when_configured(self):
        bot = CommandTester(roll, admins=["boss"], exemptAdmins=False)
        self.addCleanup(bot.stop)
        bot.assertReply("# roll", "🎲 4", user="boss")
        self.assertIn("남았습니다", bot.send("# roll", user="boss").text)

    def test_passive_pattern_command_is_silent_when_cooling_down(self):
        self.bot.assertReply("그거 웃기네 ㅋㅋㅋㅋ", "웃음 4개")
        self.bot.assertNoReply("ㅋㅋㅋ")
        self.bot.assertNoReply("그냥 대화")
        self.bot.advance(60)
        self.bot.assertReply("ㅋㅋㅋ", "웃음 3개")


class RoomsAndPermissionsTests(SynchronousTestCase):
    def setUp(self):
        self.bot = CommandTester(secret, only, roll, admins=["boss"],
                                 config={"rooms": {"ch:잠긴방": {"disabled_commands": ["roll"]}}})
        self.addCleanup(self.bot.stop)

    def test_admin_only_and_room_limits_answer_with_a_refusal(self):
        self.bot.assertReply("# secret", ADMIN_ONLY_REPLY)
        self.bot.assertReply("# secret", "비밀", user="boss")
        self.bot.assertReply("# only", DISABLED_REPLY)
        self.bot.assertReply("# only", "여기서만", room="공지방")
        self.bot.assertReply("# roll", DISABLED_REPLY, room="잠긴방")


class RunningTests(SynchronousTestCase):
    def test_sync_deferred_async_and_lists(self):
        slow = defer.Deferred()

        @command("later", "Deferred")
        def later(context):
            return slow

        @command("coro", "async")
        async def coro(context):
            value = await defer.succeed("비동기")
            return [value, "둘째", None, Reply.image(b"\x89PNG", waitTime=500)]

        bot = CommandTester(later, coro)
        self.addCleanup(bot.stop)
        replies = bot.send("# coro")
        self.assertEqual(replies.texts, ["비동기", "둘째", "IMAGE_BASE64:iVBORw=="])
        self.assertEqual(replies[2].mediaWaitTime, 500)
        pending = bot.send("# later")
        self.assertFalse(pending.done)
        slow.callback("늦은 답")
        self.assertEqual(pending.texts, ["늦은 답"])

    def test_slow_command_is_cancelled_with_a_short_reply(self):
        cancelled = []

        @command("slow", "느림", timeout=3)
        def slow(context):
            return defer.Deferred(lambda d: cancelled.append(True))

        @command("hang", "기본 시간 제한")
        async def hang(context):
            try:
                await defer.Deferred()
            except defer.CancelledError:
                cancelled.append("coro")
                raise

        bot = CommandTester(slow, hang)
        self.addCleanup(bot.stop)
        replies = bot.send("# slow")
        bot.advance(2.9)
        self.assertFalse(replies.done)
        bot.advance(0.2)
        self.assertEqual(replies.texts, [TIMEOUT_REPLY])
        other = bot.send("# hang")
        bot.advance(10)
        self.assertEqual(other.texts, [TIMEOUT_REPLY])
        self.assertEqual(cancelled, [True, "coro"])

    def test_a_failing_command_gets_an_error_reply(self):
        @command("boom", "오류")
        def boom(context):
            raise RuntimeError("bug")

        bot = CommandTester(boom)
        self.addCleanup(bot.stop)
        self.assertIn("오류가 발생했습니다", bot.send("# boom").text)
        self.flushLoggedErrors(RuntimeError)

    def test_context_send_reaches_the_room_later_and_is_logged(self):
        from twisted.internet import task

        @command("remind", "나중에 알림")
        def remind(context):
            task.deferLater(clock, 60, context.send, f"알림: {context.rest}")
            return "1분 뒤에 알려 드릴게요."

        bot = CommandTester(remind)
        clock = bot.clock
        self.addCleanup(bot.stop)
        bot.assertReply("# remind 회의", "1분 뒤에 알려 드릴게요.", room="회의실")
        self.assertEqual(bot.outbox, [])
        bot.advance(60)
        self.assertEqual([(m.room, m.text, m.channelId) for m in bot.outbox],
                         [("회의실", "알림: 회의", "ch:회의실")])
        self.assertEqual(bot.chatlog.rows[-1].message, "알림: 회의")
        self.assertEqual(bot.chatlog.rows[-1].is_our_bot_response, 1)


class ScheduleTests(SynchronousTestCase):
    def test_daily_job_at_seoul_time_is_sent_and_logged_as_scheduled(self):
        job = daily("08:30", bot="kkobot", room="공지방", channelId="42", text="출석 체크!")
        bot = CommandTester(job)  # clock: 2026-01-01 09:00 KST
        self.addCleanup(bot.stop)
        bot.advance(23 * 3600 + 29 * 60)
        self.assertEqual(bot.outbox, [])
        bot.advance(60)
        self.assertEqual([(m.room, m.text, m.channelId) for m in bot.outbox], [("공지방", "출석 체크!", "42")])
        rows = bot.scheduledRows()
        self.assertEqual([(r.message, r.is_scheduled, r.is_our_bot_response) for r in rows],
                         [("출석 체크!", 1, 1)])
        bot.advance(24 * 3600)
        self.assertEqual(len(bot.outbox), 2)

    def test_periodic_job_with_a_function(self):
        @every(600, bot="kkobot", room="방")
        def tick(job):
            return f"{int(job.scheduledFor - job.now)}"

        bot = CommandTester(tick)
        self.addCleanup(bot.stop)
        bot.advance(1800)
        self.assertEqual([m.text for m in bot.outbox], ["0", "0", "0"])

    def test_offline_bot_gets_the_job_when_it_reconnects_within_lateness(self):
        job = every(100, bot="kkobot", room="방", text="정기 알림")
        bot = CommandTester(job, lateness=60)
        self.addCleanup(bot.stop)
        bot.disconnect()
        bot.advance(100)
        self.assertEqual(bot.outbox, [])
        bot.advance(30)
        bot.connect()
        bot.advance(2)
        self.assertEqual([m.text for m in bot.outbox], ["정기 알림"])
        self.assertEqual(len(bot.scheduledRows()), 1)

    def test_offline_past_lateness_is_dropped(self):
        job = every(1000, bot="kkobot", room="방", text="정기 알림")
        bot = CommandTester(job, lateness=60)
        self.addCleanup(bot.stop)
        bot.disconnect()
        bot.advance(1070)
        bot.connect()
        bot.advance(10)
        self.assertEqual(bot.outbox, [])
        self.assertEqual(bot.scheduler.pending, [])


HELLO_V1 = '''
from kkobot.command import command

@command("greet", "인사")
def greet(context):
    return "v1"
'''


class ReloadTests(SynchronousTestCase):
    def setUp(self):
        self.dropin = tempfile.mkdtemp()
        self.bot = CommandTester(dropinDir=self.dropin, admins=["boss"])
        self.addCleanup(self.bot.stop)

    def write(self, name, text):
        with open(os.path.join(self.dropin, name), "w", encoding="utf-8") as f:
            f.write(text)

    def reload(self):
        return self.bot.send("# reload", user="boss").text

    def test_new_changed_removed_and_broken_files(self):
        self.bot.assertNoReply("# greet")
        self.write("kkobot_greet_t.py", HELLO_V1)
        self.assertIn("추가: kkobot_greet_t", self.reload())
        self.bot.assertReply("# greet", "v1")
        # Same size, same second: still new code.
        self.write("kkobot_greet_t.py", HELLO_V1.replace("v1", "v2"))
        self.assertIn("변경: kkobot_greet_t", self.reload())
        self.bot.assertReply("# greet", "v2")
        # Broken: the old version keeps answering and the admin is told why.
        self.write("kkobot_greet_t.py", HELLO_V1.replace('return "v1"', "return (") )
        text = self.reload()
        self.assertIn("실패: kkobot_greet_t.py", text)
        self.assertIn("SyntaxError", text)
        self.assertIn("이전 버전 유지", text)
        self.bot.assertReply("# greet", "v2")
        self.flushLoggedErrors()
        os.remove(os.path.join(self.dropin, "kkobot_greet_t.py"))
        self.assertIn("삭제: kkobot_greet_t", self.reload())
        self.bot.assertNoReply("# greet")
        self.assertNotIn("# greet", self.bot.send("# help").text)

    def test_reload_replaces_and_removes_schedules(self):
        self.write("kkobot_sched_t.py",
                   'from kkobot.command import every\nj = every(60, bot="kkobot", room="방", text="A")\n')
        self.reload()
        self.bot.advance(60)
        self.write("kkobot_sched_t.py",
                   'from kkobot.command import every\nj = every(60, bot="kkobot", room="방", text="B")\n')
        self.reload()
        self.bot.advance(60)
        os.remove(os.path.join(self.dropin, "kkobot_sched_t.py"))
        self.reload()
        self.bot.advance(600)
        self.assertEqual([m.text for m in self.bot.outbox], ["A", "B"])
