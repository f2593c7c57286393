"""A bot's key, keyed once, signs exactly as hmac.new does, and the signed text is the bridge's in every field shape."""

from __future__ import annotations

import hashlib
import hmac

from twisted.trial.unittest import SynchronousTestCase

from kkobot.bridge.auth import SigningKey, signatureMatches, signedText
from tests.support.authrig import SALT, SECRET, signedAuth

AUTH = {
    "clientType": "MessengerBotR",
    "botName": "kkobot",
    "deviceUUID": "5f3c2a1b9d8e7f60",
    "macAddress": "02:00:00:00:00:00",
    "ipAddress": "127.0.0.1",
    "timestamp": 1795602310517,
}


def reference(secret: str, text: str) -> str:
    return hmac.new(secret.encode("utf-8"), text.encode("utf-8"), hashlib.sha256).hexdigest()


class SigningKeyTests(SynchronousTestCase):
    def test_same_as_hmac_for_every_key_length(self) -> None:
        # Shorter than, exactly, and longer than SHA-256's 64-byte block; multi-byte UTF-8.
        for length in (0, 1, 31, 32, 63, 64, 65, 127, 128, 129, 300):
            for unit in ("k", "키"):
                secret = (unit * length)[:length]
                key = SigningKey(secret, SALT)
                text = signedText(AUTH, SALT)
                self.assertEqual(key.sign(AUTH), reference(secret, text), (length, unit))

    def test_a_key_signs_many_events_alike(self) -> None:
        key = SigningKey(SECRET, SALT)
        for offset in range(3):
            auth = signedAuth(int(1795602310517) + offset)
            self.assertEqual(key.sign(auth), auth["signature"])
            self.assertTrue(key.matches(auth, auth["signature"]))

    def test_matches_refuses_other_and_non_ascii_signatures(self) -> None:
        key = SigningKey(SECRET, SALT)
        auth = signedAuth()
        good = auth["signature"]
        for given in ("", good[:-1], good[:-1] + ("0" if good[-1] != "0" else "1"),
                      "é" + good[1:], good + "0"):
            self.assertFalse(key.matches(auth, given), given)
        self.assertTrue(signatureMatches(SECRET, SALT, auth, good.upper()))

    def test_text_is_the_same_for_every_shape_of_a_field(self) -> None:
        # What the bridge's JavaScript prints: an integral float as an integer, booleans
        # as true/false, missing fields as "".
        expected = "MessengerBotR|kkobot|5f3c2a1b9d8e7f60|02:00:00:00:00:00|127.0.0.1|1795602310517|s"
        self.assertEqual(signedText(AUTH, "s"), expected)
        self.assertEqual(signedText({**AUTH, "timestamp": 1795602310517.0}, "s"), expected)
        self.assertEqual(signedText({**AUTH, "timestamp": "1795602310517"}, "s"), expected)
        self.assertEqual(
            signedText({**AUTH, "macAddress": True, "ipAddress": None}, "s"),
            "MessengerBotR|kkobot|5f3c2a1b9d8e7f60|true||1795602310517|s",
        )
        self.assertEqual(
            signedText(AUTH, "s", clientType="other"),
            "other|kkobot|5f3c2a1b9d8e7f60|02:00:00:00:00:00|127.0.0.1|1795602310517|s",
        )
