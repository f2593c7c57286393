"""The shipped example plugins (plugins/examples): 출석체크, 채팅 랭킹, 퀴즈, through kkobot.testing."""

from __future__ import annotations


from twisted.trial.unittest import SynchronousTestCase

from kkobot.commands.conversations import ASK_TIMEOUT_NOTICE
from kkobot.testing import CommandTester
from tests.support import forgetDropins
from tests.support.paths import EXAMPLES

DAY = 24 * 3600


def examplesBot(testcase, **kw) -> CommandTester:
    forgetDropins(testcase, EXAMPLES)
    bot = CommandTester(dropinDir=EXAMPLES, **kw)
    testcase.addCleanup(bot.stop)
    assert not bot.commands.failures, bot.commands.failures
    return bot


class AttendanceTests(SynchronousTestCase):
    def setUp(self):
        self.bot = examplesBot(self)

    def test_once_a_day_with_order_streak_and_points(self):
        self.bot.assertReply("# 출석", "홍길동님 출석 완료! 오늘 1번째, 연속 1일, +10점 (총 10점)")
        self.bot.assertReply("# 출석", "홍길동님은 오늘 이미 출석했습니다. (연속 1일)")
        self.bot.assertReply("# 출첵", "김영희님 출석 완료! 오늘 2번째, 연속 1일, +10점 (총 10점)",
                             user="u2", sender="김영희")
        # The clock starts at 09:00 in Seoul: 15 hours on it is the next day there.
        self.bot.advance(15 * 3600)
        self.bot.assertReply("# 출석", "홍길동님 출석 완료! 오늘 1번째, 연속 2일, +12점 (총 22점)")
        self.bot.advance(DAY)
        self.bot.assertReply("# 출석", "홍길동님 출석 완료! 오늘 1번째, 연속 3일, +14점 (총 36점)")
        self.bot.advance(2 * DAY)  # a day missed: the streak starts over
        self.bot.assertReply("# 출석", "홍길동님 출석 완료! 오늘 1번째, 연속 1일, +10점 (총 46점)")

    def test_rooms_are_separate_and_the_ranking_sorts_by_points(self):
        self.bot.assertReply("# 출석순위", "아직 출석한 사람이 없습니다. # 출석 으로 시작해 보세요.")
        self.bot.send("# 출석", user="u2", sender="김영희")
        self.bot.advance(DAY)
        self.bot.send("# 출석", user="u2", sender="김영희")
        self.bot.send("# 출석", user="u1", sender="홍길동")
        self.bot.send("# 출석", user="u3", sender="다른방", room="다른방")
        self.bot.assertReply("# 출석순위", "[출석 순위]\n1. 김영희 — 22점 (연속 2일, 총 2일)\n"
                                         "2. 홍길동 — 10점 (연속 1일, 총 1일)")

    def test_plugin_config_changes_the_points(self):
        bot = examplesBot(self, config={"plugins": {"attendance": {"points": 100, "streak_bonus": "many"}}})
        # A value of the wrong type falls back to the declared default (2), with a warning.
        bot.assertReply("# 출석", "홍길동님 출석 완료! 오늘 1번째, 연속 1일, +100점 (총 100점)")
        bot.advance(DAY)
        bot.assertReply("# 출석", "홍길동님 출석 완료! 오늘 1번째, 연속 2일, +102점 (총 202점)")

    def test_the_marker_of_a_day_expires_but_the_record_stays(self):
        self.bot.send("# 출석")
        self.bot.advance(3 * DAY)
        keys = sorted(i.key for i in self.bot.storage.items(plugin="attendance", now=self.bot.clock.seconds())
                      .result)
        self.assertEqual(keys, ["order:2026-01-01", "record"])


class ChatRankTests(SynchronousTestCase):
    def setUp(self):
        self.bot = examplesBot(self)

    def test_today_and_this_week(self):
        # 2026-01-01 is a Thursday. Yesterday (Wednesday) is this week, not today.
        self.bot.clock.advance(-DAY)
        for _ in range(5):
            self.bot.send("어제 이야기", user="u3", sender="박철수")
        self.bot.clock.advance(DAY)
        for _ in range(3):
            self.bot.send("안녕하세요", user="u1", sender="홍길동")
        self.bot.send("반가워요", user="u2", sender="김영희")
        self.bot.send("다른 방", user="u9", sender="외부인", room="다른방")
        self.bot.assertReply("# 채팅순위", "[오늘 채팅 순위]\n1. 홍길동 — 4개\n2. 김영희 — 1개", user="u1")
        self.bot.advance(10)  # the room's cooldown
        self.bot.assertReply("# 채팅순위 이번주", "[이번 주 채팅 순위]\n1. 박철수 — 5개\n2. 홍길동 — 4개\n3. 김영희 — 2개",
                             user="u2", sender="김영희")
        self.bot.advance(10)
        self.assertIn("기간은 오늘 또는 이번주", self.bot.send("# 채팅순위 작년").text)

    def test_bot_replies_are_not_counted_and_an_empty_day_says_so(self):
        self.bot.advance(15 * 3600)  # a new day in Seoul
        replies = self.bot.send("# 채팅순위")
        self.assertEqual(replies.texts, ["[오늘 채팅 순위]\n1. 홍길동 — 1개"])


class QuizTests(SynchronousTestCase):
    def setUp(self):
        self.bot = examplesBot(self)

    def test_right_wrong_and_too_late(self):
        self.bot.assertReply("# 퀴즈", "[퀴즈] 대한민국의 수도는? (30초)")
        self.bot.send("서울")
        self.assertEqual(self.bot.outbox[-1].text, "정답입니다! 홍길동님 누적 1점")
        self.bot.advance(5)
        self.bot.assertReply("# 퀴즈", "[퀴즈] 한글을 만든 왕은? (30초)")
        self.bot.send("이순신")
        self.assertEqual(self.bot.outbox[-1].text, "아쉽네요. 정답은 세종입니다.")
        self.bot.advance(5)
        self.bot.send("# 퀴즈")
        self.bot.advance(30)
        self.assertEqual(self.bot.outbox[-1].text, ASK_TIMEOUT_NOTICE)
        self.bot.assertReply("# 퀴즈점수", "홍길동님 퀴즈 점수: 1점")

    def test_only_the_asked_user_answers(self):
        self.bot.send("# 퀴즈", user="u1")
        self.bot.send("서울", user="u2", sender="김영희")
        self.assertEqual(self.bot.outbox, [])
        self.bot.send("서울특별시", user="u1")
        self.assertEqual(self.bot.outbox[-1].text, "정답입니다! 홍길동님 누적 1점")
        self.bot.assertReply("# 퀴즈점수", "김영희님 퀴즈 점수: 0점", user="u2", sender="김영희")


class AttendanceRaceTests(SynchronousTestCase):
    def test_two_taps_at_once_count_once(self):
        from twisted.internet import defer

        from kkobot.commands.store import MemoryStorage

        class SlowStorage(MemoryStorage):
            """Every call answers only when released: both taps read before either writes."""

            def __init__(self):
                super().__init__()
                self.held = []

            def _later(self, result):
                d = defer.Deferred()
                self.held.append((d, result))
                return d

            def get(self, *a):
                return super().get(*a).addCallback(self._later)

            def incr(self, *a):
                return super().incr(*a).addCallback(self._later)

        storage = SlowStorage()
        bot = examplesBot(self, storage=storage)
        first, second = bot.send("# 출석"), bot.send("# 출석")
        while storage.held:
            held, storage.held = storage.held, []
            for d, result in held:
                d.callback(result)
        self.assertEqual(sorted(first.texts + second.texts), [
            "홍길동님 출석 완료! 오늘 1번째, 연속 1일, +10점 (총 10점)",
            "홍길동님은 오늘 이미 출석했습니다. (연속 1일)"])
