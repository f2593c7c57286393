"""Only authenticated bots get answers: signatures, windows, replays, queued bursts."""

from __future__ import annotations

from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase

from kkobot.bridge.auth import HmacAuthenticator, ReplayGuard, signature
from tests.support.authrig import NOW, SALT, SECRET, Rig, errors, signedAuth
from tests.support import HELLO_290, HELLO_314, HELLO_320, analyze, line, sign

ECHO = "# echo 안녕하세요"
ECHOED = "에코: 안녕하세요"


class SignatureTests(SynchronousTestCase):
    def test_matches_independent_signer(self) -> None:
        auth = signedAuth()
        self.assertEqual(signature(SECRET, SALT, auth), auth["signature"])

    def test_missing_fields_sign_as_empty(self) -> None:
        auth = signedAuth(drop=("deviceID", "macAddress"))
        self.assertEqual(signature(SECRET, SALT, auth), sign(SECRET, SALT, auth))


class AuthTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.rig = Rig()
        self.addCleanup(self.rig.close)

    def echo(self, auth, conn=None, hello=HELLO_320, text=ECHO):
        """Send one signed `# echo`; the events the client got back."""
        if conn is None:
            conn = self.rig.connect(hello=hello)
            conn.received()
        conn.send(analyze(text, auth=auth))
        return conn, conn.received()

    def assertRefused(self, events, conn, why=None):
        failures = errors(events, "AUTH_FAILED")
        self.assertEqual(len(failures), 1, events)
        self.assertEqual(conn.replies(events), [])
        if why is not None:
            self.assertIn(why, failures[0]["message"])
        return failures[0]["message"]


class VerificationTests(AuthTestCase):
    def test_good_signature_gets_echo(self) -> None:
        conn, events = self.echo(signedAuth())
        self.assertEqual(conn.replies(events), [ECHOED])
        self.assertEqual(errors(events), [])
        self.assertEqual(len(self.rig.chatlog.rows), 2)  # the message and the reply

    def test_314_bridge_gets_echo(self) -> None:
        conn, events = self.echo(signedAuth(version="3.1.4"), hello=HELLO_314)
        self.assertEqual(conn.replies(events), [ECHOED])

    def test_legacy_bridge_without_client_type_signing_the_literal(self) -> None:
        auth = signedAuth(drop=("clientType", "deviceID"), version="2.9.0c")
        auth["signature"] = sign(SECRET, SALT, {**auth, "clientType": "MessengerBotR"})
        conn, events = self.echo(auth, hello=HELLO_290)
        self.assertEqual(conn.replies(events), [ECHOED])

    def test_wrong_secret_no_reply_no_row(self) -> None:
        conn, events = self.echo(signedAuth(secret="not-the-secret"))
        message = self.assertRefused(events, conn, "bad signature")
        self.assertIn("SECRET_KEY", message)
        self.assertEqual(self.rig.chatlog.rows, [])
        self.assertFalse(conn.closed)

    def test_wrong_salt(self) -> None:
        conn, events = self.echo(signedAuth(salt="other-salt"))
        self.assertRefused(events, conn, "bad signature")

    def test_each_tampered_field_refused(self) -> None:
        tampered = {
            "clientType": "Evil",
            "botName": "kkobot",  # replaced below with a different bot
            "deviceUUID": "0000000000000000",
            "macAddress": "02:00:00:00:00:01",
            "ipAddress": "10.9.9.9",
            "timestamp": int(NOW * 1000) + 1,
            "signature": "0" * 64,
        }
        tampered["botName"] = "other"
        for field, value in tampered.items():
            auth = signedAuth()
            auth[field] = value
            conn, events = self.echo(auth)
            self.assertRefused(events, conn)
        self.assertEqual(self.rig.chatlog.rows, [])

    def test_missing_auth_or_signature(self) -> None:
        conn, events = self.echo(None)
        self.assertRefused(events, conn, "no auth object")
        auth = signedAuth()
        del auth["signature"]
        conn, events = self.echo(auth)
        self.assertRefused(events, conn, "not signed")

    def test_auth_bot_must_be_the_handshake_bot(self) -> None:
        # Correctly signed for another configured bot: still not this connection's bot.
        self.rig.credentials["other"] = ("x" * 20, "y")
        auth = signedAuth(secret="x" * 20, salt="y", botName="other")
        conn, events = self.echo(auth)
        self.assertRefused(events, conn, "not the bot this connection introduced")

    def test_stale_and_future_timestamps(self) -> None:
        stale = int((NOW - 301) * 1000)
        conn, events = self.echo(signedAuth(stale))
        self.assertRefused(events, conn, "behind the server's clock")
        future = int((NOW + 301) * 1000)
        conn, events = self.echo(signedAuth(future))
        self.assertRefused(events, conn, "ahead of the server's clock")
        # Inside the window on both sides: answered.
        for stamp in (int((NOW - 290) * 1000), int((NOW + 290) * 1000)):
            conn, events = self.echo(signedAuth(stamp))
            self.assertEqual(conn.replies(events), [ECHOED])

    def test_window_never_below_two_minutes(self) -> None:
        auth = HmacAuthenticator(lambda bot: None, None, self.rig.clock, window=10)
        self.assertEqual(auth.window, 120)

    def test_replay_from_second_connection_refused(self) -> None:
        auth = signedAuth()
        first, events = self.echo(auth)
        self.assertEqual(first.replies(events), [ECHOED])
        second, events = self.echo(auth)
        self.assertRefused(events, second, "replayed")
        # Only the original message and its reply were logged.
        self.assertEqual(len(self.rig.chatlog.rows), 2)

    def test_same_signature_on_own_connection_is_not_a_replay(self) -> None:
        # Two events in one millisecond sign the same string.
        auth = signedAuth()
        conn, events = self.echo(auth)
        conn, events2 = self.echo(auth, conn=conn)
        self.assertEqual(conn.replies(events + events2), [ECHOED, ECHOED])

    def test_replay_memory_is_bounded_by_the_window(self) -> None:
        guard = ReplayGuard(self.rig.clock, 300)
        for i in range(50):
            guard.firstUse(f"sig{i}", 1, NOW)
        self.assertEqual(len(guard), 50)
        self.rig.clock.advance(301)
        guard.firstUse("fresh", 1, self.rig.clock.seconds())
        self.assertEqual(len(guard), 1)

    def test_queued_burst_after_reconnect_is_answered(self) -> None:
        # The phone was offline: 20 events signed 30 s ago, with ipAddress "unknown",
        # arrive in one burst on a new connection from a different address.
        conn = self.rig.connect(address="198.51.100.20", hello=HELLO_320)
        conn.received()
        burst = b"".join(
            line(
                analyze(
                    f"# echo {i}번",
                    auth=signedAuth(int((NOW - 30) * 1000) + i // 2, ipAddress="unknown"),
                )
            )
            for i in range(20)
        )
        conn.proto.dataReceived(burst)
        events = conn.received()
        self.assertEqual(errors(events), [])
        self.assertEqual(conn.replies(events), [f"에코: {i}번" for i in range(20)])

    def test_ping_needs_a_signature_too(self) -> None:
        conn = self.rig.connect(hello=HELLO_320)
        conn.received()
        conn.send({"event": "ping", "data": {"bot_name": "kkobot", "server_timestamp": 1,
                                              "auth": signedAuth(secret="bad")}})
        self.assertEqual(len(errors(conn.received(), "AUTH_FAILED")), 1)
        conn.send({"event": "ping", "data": {"bot_name": "kkobot", "server_timestamp": 1,
                                              "auth": signedAuth()}})
        self.assertEqual(errors(conn.received()), [])

    def test_unknown_bot_is_told_no_more_than_a_wrong_key(self) -> None:
        # Whether the server knows a bot name is not something a stranger may learn.
        known = self.rig.connect(hello=HELLO_320)
        stranger = self.rig.connect(hello={**HELLO_320, "botName": "stranger"})
        answers = [
            [e["data"] for e in conn.received() if e["event"] == "handshakeComplete"]
            for conn in (known, stranger)
        ]
        self.assertEqual(answers[0], answers[1])
        self.assertEqual(answers[0][0]["success"], True)
        known.send(analyze(ECHO, auth=signedAuth(secret="wrong")))
        stranger.send(analyze(ECHO, auth=signedAuth(secret="wrong", botName="stranger")))
        refusals = [errors(conn.received(), "AUTH_FAILED") for conn in (known, stranger)]
        self.assertEqual(
            [r[0]["message"].replace("stranger", "kkobot") for r in refusals],
            [refusals[0][0]["message"]] * 2,
        )
        self.assertIn("no credentials", refusals[1][0]["message"])
        self.assertIn("add-bot", refusals[1][0]["message"])


class FailureLimitTests(AuthTestCase):
    def test_repeated_failures_drop_and_refuse_the_address(self) -> None:
        # Verified connections: an unverified one is closed after a few failures anyway.
        conn = self.rig.verified(address="192.0.2.9")
        bystander = self.rig.verified(address="192.0.2.10")
        for _ in range(9):
            self.echo(signedAuth(secret="wrong"), conn=conn)
        self.assertFalse(conn.closed)
        self.echo(signedAuth(secret="wrong"), conn=conn)
        self.assertTrue(conn.closed)
        self.assertFalse(bystander.closed)
        again = self.rig.connect(address="192.0.2.9")
        (refusal,) = errors(again.received())
        self.assertIn("too many auth failures", refusal["message"])
        self.assertTrue(again.closed)
        # Other addresses are not affected; the ban ends.
        self.assertFalse(self.rig.connect(address="192.0.2.10").closed)
        self.rig.clock.advance(301)
        self.assertFalse(self.rig.connect(address="192.0.2.9").closed)

    def test_failures_spread_out_do_not_ban(self) -> None:
        conn = self.rig.verified(address="192.0.2.9")
        for _ in range(15):
            self.rig.clock.advance(7)
            conn.send({"event": "ping", "data": {"auth": signedAuth(secret="wrong")}})
        self.assertFalse(conn.closed)


class SecretHygieneTests(AuthTestCase):
    def test_logs_never_hold_secret_or_full_signature(self) -> None:
        seen: list[str] = []

        def observer(event):
            seen.append(formatEvent(event))

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)
        good = signedAuth()
        self.echo(good)
        bad = signedAuth(secret="wrong-secret-value")
        self.echo(bad)
        text = "\n".join(seen)
        self.assertIn("[AUTH]", text)
        self.assertIn("203.0.113.7", text)
        self.assertIn("bad signature", text)
        for leak in (SECRET, SALT, "wrong-secret-value", good["signature"], bad["signature"]):
            self.assertNotIn(leak, text)
        self.assertNotIn(SECRET, repr(self.rig.auth.__dict__))
