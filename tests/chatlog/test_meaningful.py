"""Which messages count as meaningful (kb_chat_logs.is_meaningful)."""

from twisted.trial import unittest

from kkobot.chatlog.rows import isMeaningful


class MeaningfulTests(unittest.TestCase):
    def test_twoLettersOrDigitsBesidesLaughter(self) -> None:
        cases = {
            "점심 뭐 먹지": True,
            "hi": True,
            "1 2": True,
            "가\n나": True,
            "ㅋㅋ가ㅋㅋ나ㅋㅋ": True,
            "٣٤": True,  # digits of other scripts count
            "ㄱㄴ": True,  # jamo other than laughter and crying count
            "": False,
            "ㅋㅋㅋㅋ": False,
            "ㅎㅎ ㅠㅠ ㅜㅜ": False,
            "ㅋㅋㅋ가": False,
            "a": False,
            "?!.~ ^^": False,
            "_ _": False,  # underscores are not letters
            "a_": False,
            "!" * 10_000 + "a": False,
            "a" + "!" * 10_000 + "b": True,
        }
        self.assertEqual({text: isMeaningful(text, False) for text in cases}, cases)

    def test_commandsAlwaysAre(self) -> None:
        self.assertTrue(isMeaningful("ㅋ", True))
