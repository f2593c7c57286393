"""context.ask: a command waits for the same user's next message in the same room (task.Clock)."""

from __future__ import annotations

import os

from twisted.trial.unittest import SynchronousTestCase

from kkobot.command import command
from kkobot.commands.conversations import ASK_TIMEOUT_NOTICE
from kkobot.testing import CommandTester
from tests.support import forgetDropins, tempDir


@command("예약", "인원을 물어 예약합니다.")
async def reserve(context):
    people = await context.ask("몇 명인가요?", timeout=60)
    if people is None:
        return None
    when = await context.ask(f"{people}명, 몇 시에 오시나요?", timeout=60)
    if when is None:
        return None
    return f"{people}명 {when} 예약했습니다."


@command("느림", "오래 일합니다.")
async def slow(context):
    from twisted.internet import task

    await task.deferLater(context.services.clock, 30, lambda: None)
    return "끝"


class AskTests(SynchronousTestCase):
    def setUp(self):
        self.bot = CommandTester(reserve, slow, timeout=10)
        self.addCleanup(self.bot.stop)

    def pushed(self):
        return [(m.room, m.text) for m in self.bot.outbox]

    def test_the_question_is_the_reply_and_the_answers_continue_the_command(self):
        first = self.bot.send("# 예약")
        self.assertTrue(first.done)
        self.assertEqual(first.texts, ["몇 명인가요?"])
        answer = self.bot.send("4")
        self.assertEqual((answer.done, answer.texts), (True, []))
        self.assertEqual(self.pushed(), [("테스트방", "4명, 몇 시에 오시나요?")])
        self.bot.send("저녁 7시")
        self.assertEqual(self.pushed()[-1], ("테스트방", "4명 저녁 7시 예약했습니다."))
        # Every message, answers included, is in the chat log; so is every bot message.
        messages = [r.message for r in self.bot.chatlog.rows]
        self.assertEqual(messages, ["# 예약", "몇 명인가요?", "4", "4명, 몇 시에 오시나요?",
                                    "저녁 7시", "4명 저녁 7시 예약했습니다."])
        answerRow = self.bot.chatlog.rows[2]
        self.assertEqual((answerRow.directive, answerRow.is_our_bot_response), (None, 0))
        self.assertFalse(self.bot.conversations.active)

    def test_no_answer_in_time_gets_a_notice_and_none(self):
        self.bot.send("# 예약")
        self.bot.advance(59)
        self.assertEqual(self.pushed(), [])
        self.bot.advance(1)
        self.assertEqual(self.pushed(), [("테스트방", ASK_TIMEOUT_NOTICE)])
        self.assertFalse(self.bot.conversations.active)
        # The conversation is over: the next message is just a message.
        self.assertEqual(self.bot.send("4").texts, [])
        self.assertEqual(self.pushed(), [("테스트방", ASK_TIMEOUT_NOTICE)])

    def test_the_users_thinking_time_does_not_count_against_the_command_timeout(self):
        self.bot.send("# 예약")
        self.bot.advance(50)  # far past commands.timeout (10 s)
        self.bot.send("2")
        self.bot.advance(50)
        self.bot.send("정오")
        self.assertEqual(self.pushed(), [("테스트방", "2명, 몇 시에 오시나요?"),
                                         ("테스트방", "2명 정오 예약했습니다.")])

    def test_the_command_timeout_still_bounds_the_work_itself(self):
        replies = self.bot.send("# 느림")
        self.bot.advance(10)
        self.assertEqual(replies.texts, ["명령 처리 시간이 초과되었습니다. 잠시 후 다시 시도해 주세요."])

    def test_other_users_are_not_taken_as_the_answer_and_keep_being_answered(self):
        self.bot.send("# 예약", user="u1")
        self.assertEqual(self.bot.send("# echo 안녕", user="u2").texts, ["에코: 안녕"])
        self.assertEqual(self.bot.send("3", user="u2").texts, [])
        self.assertEqual(self.pushed(), [])
        self.bot.send("5", user="u1")
        self.assertEqual(self.pushed(), [("테스트방", "5명, 몇 시에 오시나요?")])

    def test_a_command_typed_meanwhile_is_still_a_command(self):
        self.bot.send("# 예약")
        self.assertEqual(self.bot.send("# echo 잠깐").texts, ["에코: 잠깐"])
        self.assertTrue(self.bot.conversations.active)
        self.bot.send("2")
        self.assertEqual(self.pushed(), [("테스트방", "2명, 몇 시에 오시나요?")])

    def test_two_rooms_in_parallel(self):
        self.assertEqual(self.bot.send("# 예약", room="A방").texts, ["몇 명인가요?"])
        self.assertEqual(self.bot.send("# 예약", room="B방").texts, ["몇 명인가요?"])
        self.bot.send("2", room="B방")
        self.bot.send("7", room="A방")
        self.bot.send("8시", room="A방")
        self.bot.send("9시", room="B방")
        self.assertEqual(self.pushed(), [
            ("B방", "2명, 몇 시에 오시나요?"), ("A방", "7명, 몇 시에 오시나요?"),
            ("A방", "7명 8시 예약했습니다."), ("B방", "2명 9시 예약했습니다.")])

    def test_the_same_user_in_two_rooms_answers_each_separately(self):
        self.bot.send("# 예약", room="A방", user="u1")
        self.bot.advance(30)
        self.bot.send("# 예약", room="B방", user="u1")
        self.bot.advance(30)  # A's question times out; B's has 30 s left
        self.assertEqual(self.pushed(), [("A방", ASK_TIMEOUT_NOTICE)])
        self.bot.send("1", room="B방", user="u1")
        self.assertEqual(self.pushed()[-1], ("B방", "1명, 몇 시에 오시나요?"))


class AskAcrossReloadTests(SynchronousTestCase):
    def test_a_conversation_outlives_a_reload_of_other_plugins(self):
        folder = tempDir(self)
        forgetDropins(self, folder)
        other = os.path.join(folder, "kkobot_convother.py")
        with open(other, "w", encoding="utf-8") as f:
            f.write('from kkobot.command import command\n\n@command("다른")\ndef other(c):\n    return "v1"\n')
        bot = CommandTester(reserve, dropinDir=folder, admins=["boss"])
        self.addCleanup(bot.stop)
        bot.send("# 예약")
        with open(other, "w", encoding="utf-8") as f:
            f.write('from kkobot.command import command\n\n@command("다른")\ndef other(c):\n    return "v2"\n')
        self.assertIn("변경: kkobot_convother", bot.send("# reload", user="boss").text)
        self.assertEqual(bot.send("# 다른", user="u2").texts, ["v2"])
        bot.send("6")
        bot.send("지금")
        self.assertEqual([m.text for m in bot.outbox], ["6명, 몇 시에 오시나요?", "6명 지금 예약했습니다."])
