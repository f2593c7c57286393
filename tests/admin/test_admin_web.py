"""The admin web over real TCP: token checks, health, metrics, client list, outbound API."""

from __future__ import annotations

import json
import os

from twisted.internet import defer, task
from twisted.logger import formatEvent, globalLogPublisher
from twisted.trial.unittest import SynchronousTestCase, TestCase

from kkobot.admin.web.settings import AdminConfigError, adminSettings
from kkobot.admin.web.throttle import LoginThrottle, RefusalLog
from tests.support.adminhelpers import TOKEN, RunningServer, metricValue
from tests.support import analyze, captureLogs

GUARDED = [
    (b"GET", "/"),
    (b"GET", "/healthz"),
    (b"GET", "/readyz"),
    (b"GET", "/metrics"),
    (b"GET", "/api/clients"),
    (b"POST", "/api/messages"),
]


class AdminWebTests(TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.server = RunningServer(self)
        yield self.server.start()
        self.logged: list[str] = []

        def observer(event):
            fmt = event.get("log_format") or ""
            if "[ADMIN]" in fmt:
                from twisted.logger import formatEvent

                self.logged.append(formatEvent(event))

        globalLogPublisher.addObserver(observer)
        self.addCleanup(globalLogPublisher.removeObserver, observer)

    @defer.inlineCallbacks
    def test_everyEndpointRefusesWithoutOrWithWrongToken(self):
        for method, path in GUARDED:
            body = {"bot": "kkobot", "room": "r", "text": "t"} if method == b"POST" else None
            code, headers, _ = yield self.server.request(method, path, token=None, body=body)
            self.assertEqual(code, 401, (method, path))
            self.assertEqual(headers.getRawHeaders(b"www-authenticate"), [b'Bearer realm="kkobot"'])
        # The backoff's time stands still: every later guess falls in the first wait.
        self.server.service.admin.site.guard.throttle.clock = task.Clock()
        codes = []
        for token in ("wrong-token", TOKEN + "x"):
            for method, path in GUARDED:
                body = {"bot": "kkobot", "room": "r", "text": "t"} if method == b"POST" else None
                code, headers, _ = yield self.server.request(method, path, token=token, body=body)
                codes.append(code)
                if code == 429:
                    self.assertEqual(headers.getRawHeaders(b"retry-after"), [b"1"])
        # Five wrong tokens are heard; then the address backs off.
        self.assertEqual(codes, [401] * 5 + [429] * 7)
        # One line at once for the address, the rest summed up when the minute ends.
        self.assertEqual(self.logged, ["[ADMIN] 401 GET / from 127.0.0.1: no token"])
        self.server.service.admin.site.guard.refusals.flush()
        [summary] = self.logged[1:]
        self.assertTrue(summary.startswith(
            "[ADMIN] 17 more refused request(s) in the last 60 s: 127.0.0.1 17 ("), summary)
        self.assertIn("too many wrong tokens; backing off", summary)
        self.assertIn("no token 5", summary)
        for entry in self.logged:
            self.assertNotIn(TOKEN, entry)
            self.assertNotIn("wrong-token", entry)

    @defer.inlineCallbacks
    def test_malformedAuthorizationIsRefused(self):
        code, _, _ = yield self.server.request(
            b"GET", "/healthz", token=None, headers={b"authorization": b"Basic " + TOKEN.encode()}
        )
        self.assertEqual(code, 401)

    @defer.inlineCallbacks
    def test_everyEndpointAnswersWithTheToken(self):
        code, headers, body = yield self.server.request(b"GET", "/healthz")
        self.assertEqual((code, json.loads(body)), (200, {"status": "ok"}))
        code, _, body = yield self.server.request(b"GET", "/readyz")
        self.assertEqual(code, 200)
        state = json.loads(body)
        tables = state.pop("tables")
        self.assertEqual(
            state,
            {"ready": True, "listening": True, "database": "ok", "spooling": False,
             "journal_full": False, "backlog": {"buffered": 0, "spooled": 0},
             "rejected_rows": 0, "tables_refused": []},
        )
        self.assertEqual(
            {kind: (t["table"], t["state"], t["waiting"]) for kind, t in tables.items()},
            {"chat": ("kb_chat_logs", "ok", 0), "ping": ("kb_ping_monitor", "ok", 0)},
        )
        code, headers, body = yield self.server.request(b"GET", "/metrics")
        self.assertEqual(code, 200)
        self.assertTrue(headers.getRawHeaders(b"content-type")[0].startswith(b"text/plain"))
        self.assertIn(b"# TYPE kkobot_messages_received_total counter", body)
        code, _, body = yield self.server.request(b"GET", "/api/clients")
        self.assertEqual((code, json.loads(body)), (200, {"clients": []}))
        code, headers, body = yield self.server.request(b"GET", "/")
        self.assertEqual(code, 200)
        self.assertIn("연결된 기기가 없습니다.", body.decode("utf-8"))
        self.assertIn("<b>정상</b>채팅 로그 DB", body.decode("utf-8"))
        code, _, _ = yield self.server.request(b"GET", "/nope")
        self.assertEqual(code, 404)

    @defer.inlineCallbacks
    def test_unauthenticatedStatusPageShowsTheLoginForm(self):
        code, _, body = yield self.server.request(b"GET", "/", token=None)
        self.assertEqual(code, 401)
        self.assertIn(b'action="/login"', body)

    @defer.inlineCallbacks
    def test_loginSetsAStrictSecureHttpOnlyCookieThatOpensThePage(self):
        code, _, _ = yield self.server.request(
            b"POST", "/login", token=None, body=b"token=nope",
            contentType=b"application/x-www-form-urlencoded",
        )
        self.assertEqual(code, 401)
        self.assertEqual(self.logged,
                         ["[ADMIN] 401 POST /login from 127.0.0.1: login with a wrong token"])
        code, headers, _ = yield self.server.request(
            b"POST", "/login", token=None, body=b"token=" + TOKEN.encode(),
            contentType=b"application/x-www-form-urlencoded",
        )
        self.assertEqual(code, 303)
        self.assertEqual(headers.getRawHeaders(b"location"), [b"/"])
        [cookie] = headers.getRawHeaders(b"set-cookie")
        attributes = [part.strip().lower() for part in cookie.split(b";")]
        for expected in (b"secure", b"httponly", b"samesite=strict", b"path=/"):
            self.assertIn(expected, attributes)
        self.assertNotIn(TOKEN.encode(), cookie)
        sessionCookie = cookie.split(b";")[0]
        code, _, body = yield self.server.request(
            b"GET", "/", token=None, headers={b"cookie": sessionCookie}
        )
        self.assertEqual(code, 200)
        self.assertIn("kkobot 상태", body.decode("utf-8"))
        code, _, _ = yield self.server.request(
            b"GET", "/healthz", token=None, headers={b"cookie": b"kkobot_admin=forged"}
        )
        self.assertEqual(code, 401)
        code, _, _ = yield self.server.request(
            b"POST", "/logout", token=None, headers={b"cookie": sessionCookie}
        )
        self.assertEqual(code, 303)
        code, _, _ = yield self.server.request(
            b"GET", "/", token=None, headers={b"cookie": sessionCookie}
        )
        self.assertEqual(code, 401)

    @defer.inlineCallbacks
    def test_clientsListsTheConnectedBridge(self):
        client = yield self.server.connectClient()
        code, _, body = yield self.server.request(b"GET", "/api/clients")
        self.assertEqual(code, 200)
        [entry] = json.loads(body)["clients"]
        self.assertEqual(entry["bot_name"], "kkobot")
        self.assertEqual(entry["version"], "3.2.0")
        self.assertEqual(entry["device_id"], "5f3c2a1b9d8e7f60")
        self.assertEqual(entry["address"], "127.0.0.1")
        self.assertTrue(entry["approved"])
        client.transport.loseConnection()
        yield client.lost

    @defer.inlineCallbacks
    def test_outboundMessageReachesTheClientAndIsLogged(self):
        client = yield self.server.connectClient()
        code, _, body = yield self.server.request(
            b"POST", "/api/messages",
            body={"bot": "kkobot", "room": "공지방", "channel_id": "777", "text": "점검 안내"},
        )
        self.assertEqual(code, 202)
        answer = json.loads(body)
        self.assertEqual(len(answer["id"]), 32)
        self.assertEqual((answer["bot"], answer["room"], answer["channel_id"]), ("kkobot", "공지방", "777"))
        event = yield client.waitForEvent("messageResponse", text="점검 안내")
        self.assertEqual(event["data"], {"room": "공지방", "text": "점검 안내", "channel_id": "777"})
        rows = yield self.server.rows("is_our_bot_response = 1")
        self.assertEqual(rows, [("공지방", "777", "점검 안내", 1, "kkobot")])

    @defer.inlineCallbacks
    def test_outboundByChannelIdUsesTheRoomNameLastSeen(self):
        client = yield self.server.connectClient()
        client.send(analyze("안녕하세요", room="이름바뀐방", channelId="4242"))
        yield self.server.rows()  # the message is in: the room is known
        code, _, body = yield self.server.request(
            b"POST", "/api/messages", body={"bot": "kkobot", "channel_id": 4242, "text": "hi"}
        )
        self.assertEqual(code, 202, body)
        event = yield client.waitForEvent("messageResponse", text="hi")
        self.assertEqual(event["data"]["room"], "이름바뀐방")
        self.assertEqual(event["data"]["channel_id"], "4242")

    @defer.inlineCallbacks
    def test_outboundRefusals(self):
        yield self.server.connectClient()
        cases = [
            ({"bot": "kkobot", "channel_id": "unseen", "text": "t"}, 404),
            ({"bot": "kkobot", "text": "t"}, 400),
            ({"bot": "kkobot", "room": "r", "text": ""}, 400),
            ({"bot": "kkobot", "room": "r", "text": 5}, 400),
            ({"room": "r", "text": "t"}, 400),
            ({"bot": "kkobot", "room": "r", "text": "x" * 65_001}, 400),
            (["not", "an", "object"], 400),
            (b"{not json", 400),
        ]
        for body, expected in cases:
            code, _, answer = yield self.server.request(b"POST", "/api/messages", body=body)
            self.assertEqual(code, expected, (body if len(str(body)) < 100 else "long", answer))
            self.assertIn("error", json.loads(answer))
        code, _, _ = yield self.server.request(
            b"POST", "/api/messages", body=b"bot=kkobot&room=r&text=t",
            contentType=b"application/x-www-form-urlencoded",
        )
        self.assertEqual(code, 415)
        self.assertEqual(self.server.service.outbound.registry.forBot("kkobot")[0].botName, "kkobot")
        rows = yield self.server.rows("is_our_bot_response = 1")
        self.assertEqual(rows, [])

    @defer.inlineCallbacks
    def test_metricsChangeAfterTraffic(self):
        _, _, before = yield self.server.request(b"GET", "/metrics")
        self.assertIsNone(metricValue(before, "kkobot_messages_received_total", bot="kkobot"))
        self.assertIsNone(metricValue(before, "kkobot_clients_connected", bot="kkobot"))
        client = yield self.server.connectClient()
        client.send(analyze("# echo 안녕"))
        yield client.waitForEvent("messageResponse", text="에코: 안녕")
        client.send(analyze("그냥 대화"))
        client.transport.write(b"{broken\n")
        yield client.waitForEvent("error", code="BAD_JSON")
        yield self.server.request(
            b"POST", "/api/messages", body={"bot": "kkobot", "room": "r", "text": "공지"}
        )
        yield client.waitForEvent("messageResponse", text="공지")
        yield self.server.rows()
        _, _, after = yield self.server.request(b"GET", "/metrics")
        self.assertEqual(metricValue(after, "kkobot_clients_connected", bot="kkobot", version="3.2.0"), 1)
        self.assertEqual(metricValue(after, "kkobot_messages_received_total", bot="kkobot", command="echo"), 1)
        self.assertEqual(metricValue(after, "kkobot_messages_received_total", bot="kkobot", command=""), 1)
        self.assertEqual(metricValue(after, "kkobot_messages_sent_total", bot="kkobot", command="echo"), 1)
        self.assertEqual(metricValue(after, "kkobot_messages_sent_total", bot="kkobot", command="outbound"), 1)
        self.assertEqual(metricValue(after, "kkobot_command_duration_seconds_count", command="echo"), 1)
        self.assertEqual(metricValue(after, "kkobot_errors_total", code="BAD_JSON"), 1)
        self.assertEqual(metricValue(after, "kkobot_chatlog_rows_written_total"), 4)
        self.assertGreaterEqual(metricValue(after, "kkobot_chatlog_flush_duration_seconds_count"), 1)
        self.assertEqual(metricValue(after, "kkobot_chatlog_rows_spooled_total"), 0)
        self.assertEqual(metricValue(after, "kkobot_chatlog_rows_replayed_total"), 0)
        # The status page counts the same traffic per room.
        _, _, page = yield self.server.request(b"GET", "/")
        self.assertIn("테스트방", page.decode("utf-8"))
        client.transport.loseConnection()
        yield client.lost
        _, _, gone = yield self.server.request(b"GET", "/metrics")
        self.assertIsNone(metricValue(gone, "kkobot_clients_connected", bot="kkobot"))


FORM = b"application/x-www-form-urlencoded"


class AdminHardeningTests(TestCase):
    """What a page of another site, or a guesser on the network, gets from the admin web."""

    timeout = 30

    @defer.inlineCallbacks
    def setUp(self):
        self.server = RunningServer(self)
        yield self.server.start()
        self.guard = self.server.service.admin.site.guard
        self.clock = self.guard.throttle.clock = task.Clock()

    def login(self, token: str, headers=None):
        return self.server.request(b"POST", "/login", token=None, body=b"token=" + token.encode(),
                                   contentType=FORM, headers=headers)

    @defer.inlineCallbacks
    def test_guessingBacksOffAndEvenTheRightTokenWaits(self):
        heard = 0
        for i in range(100):
            code, headers, body = yield self.login(f"guess-{i:04d}-abcdefghijkl")
            self.assertIn(code, (401, 429))
            heard += code == 401
        # Of 100 guesses in a row, five were compared with the token.
        self.assertEqual(heard, 5)
        self.assertEqual(headers.getRawHeaders(b"retry-after"), [b"1"])
        self.assertIn("1초 후에 다시 시도하세요", body.decode("utf-8"))
        # While backing off, the right token is not even looked at (nor as a Bearer).
        code, _, _ = yield self.login(TOKEN)
        self.assertEqual(code, 429)
        code, _, _ = yield self.server.request(b"GET", "/healthz")
        self.assertEqual(code, 429)
        self.clock.advance(1)
        code, _, _ = yield self.login("still-wrong-abcdefghijkl")
        self.assertEqual(code, 401)
        code, headers, _ = yield self.login(TOKEN)
        self.assertEqual(code, 429)
        self.assertEqual(headers.getRawHeaders(b"retry-after"), [b"2"])
        self.clock.advance(2)
        code, _, _ = yield self.login(TOKEN)
        self.assertEqual(code, 303)
        # Success starts the address over.
        code, _, _ = yield self.login("wrong-again-abcdefghijkl")
        self.assertEqual(code, 401)

    @defer.inlineCallbacks
    def test_aSessionKeepsWorkingWhileItsAddressBacksOff(self):
        _, headers, _ = yield self.login(TOKEN)
        session = headers.getRawHeaders(b"set-cookie")[0].split(b";")[0]
        for i in range(10):
            yield self.login(f"guess-{i:04d}-abcdefghijkl")
        code, _, _ = yield self.server.request(b"GET", "/", token=None,
                                               headers={b"cookie": session})
        self.assertEqual(code, 200)

    @defer.inlineCallbacks
    def test_otherHostNamesAreRefused(self):
        for host in (b"evil.example", b"evil.example:%d" % self.server.adminPort,
                     b"127.0.0.1.nip.io", b"[::2]"):
            for path in ("/healthz", "/login", "/"):
                code, _, body = yield self.server.request(b"GET", path, headers={b"host": host})
                self.assertEqual(code, 400, (host, path))
                self.assertIn(b"admin.allowed_hosts", body)
        for host in (b"localhost:%d" % self.server.adminPort, b"LOCALHOST", b"127.0.0.1",
                     b"[::1]:%d" % self.server.adminPort):
            code, _, _ = yield self.server.request(b"GET", "/healthz", headers={b"host": host})
            self.assertEqual(code, 200, host)

    @defer.inlineCallbacks
    def test_securityHeadersOnEveryResponse(self):
        requests = [
            (b"GET", "/", TOKEN, None, None, 200),
            (b"GET", "/", None, None, None, 401),
            (b"GET", "/login", None, None, None, 200),
            (b"GET", "/healthz", TOKEN, None, None, 200),
            (b"GET", "/metrics", TOKEN, None, None, 200),
            (b"GET", "/nope", TOKEN, None, None, 404),
            (b"PUT", "/login", None, None, None, 501),
            (b"POST", "/api/messages", TOKEN, b"x", None, 415),
            (b"GET", "/healthz", TOKEN, None, {b"host": b"evil.example"}, 400),
        ]
        for method, path, token, body, headers, expected in requests:
            code, answer, _ = yield self.server.request(
                method, path, token=token, body=body, contentType=FORM, headers=headers)
            self.assertEqual(code, expected, (method, path))
            self.assertEqual(answer.getRawHeaders(b"x-frame-options"), [b"DENY"], path)
            self.assertEqual(answer.getRawHeaders(b"x-content-type-options"), [b"nosniff"])
            self.assertEqual(answer.getRawHeaders(b"referrer-policy"), [b"no-referrer"])
            [csp] = answer.getRawHeaders(b"content-security-policy")
            self.assertIn(b"frame-ancestors 'none'", csp)
            self.assertIn(b"default-src 'none'", csp)

    @defer.inlineCallbacks
    def test_thePolicyAllowsThePagesOwnStyleAndNothingElse(self):
        import base64
        import hashlib
        import re

        code, headers, body = yield self.server.request(b"GET", "/")
        self.assertEqual(code, 200)
        [style] = re.findall(rb"<style>(.*?)</style>", body, re.S)
        digest = base64.b64encode(hashlib.sha256(style).digest())
        [csp] = headers.getRawHeaders(b"content-security-policy")
        self.assertIn(b"style-src 'sha256-" + digest + b"'", csp)
        self.assertNotIn(b"<script", body)
        self.assertNotIn(b"unsafe-inline", csp)


class LoginThrottleTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.throttle = LoginThrottle(self.clock)

    def test_fourFreeThenDoublingUpToFiveMinutes(self) -> None:
        waits = [self.throttle.failed("203.0.113.7") for _ in range(14)]
        self.assertEqual(waits, [0, 0, 0, 0, 1, 2, 4, 8, 16, 32, 64, 128, 256, 300])
        self.assertEqual(self.throttle.retryAfter("198.51.100.1"), 0)
        self.clock.advance(299)
        self.assertEqual(self.throttle.retryAfter("203.0.113.7"), 1)

    def test_quietAddressesAreForgottenAndSuccessResets(self) -> None:
        for _ in range(6):
            self.throttle.failed("a")
        self.clock.advance(901)
        self.assertEqual(self.throttle.failed("a"), 0)
        for _ in range(6):
            self.throttle.failed("b")
        self.throttle.succeeded("b")
        self.assertEqual(self.throttle.retryAfter("b"), 0)
        self.assertEqual(self.throttle.failed("b"), 0)

    def test_anIPv6HostIsItsSlash64(self) -> None:
        for i in range(6):
            self.throttle.failed(f"2001:db8:1:2::{i + 1:x}")
        self.assertEqual(self.throttle.retryAfter("2001:db8:1:2:ffff::9"), 2)
        self.assertEqual(self.throttle.retryAfter("2001:db8:1:3::1"), 0)

    def test_memoryIsBounded(self) -> None:
        throttle = LoginThrottle(self.clock, maxAddresses=100)
        for i in range(1000):
            throttle.failed(f"10.0.{i // 256}.{i % 256}")
        self.assertEqual(len(throttle._records), 100)


class RefusalLogTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = task.Clock()
        self.refusals = RefusalLog(self.clock)
        self.logs = captureLogs(self)

    def lines(self):
        return [formatEvent(e) for e in self.logs]

    def test_aFloodIsTwoLinesAMinute(self) -> None:
        for _ in range(1300):
            self.refusals.refused("203.0.113.7", 401, "POST", "/login", "login with a wrong token")
        self.assertEqual(self.lines(),
                         ["[ADMIN] 401 POST /login from 203.0.113.7: login with a wrong token"])
        self.clock.advance(60)
        self.assertEqual(self.lines()[1:], [
            "[ADMIN] 1299 more refused request(s) in the last 60 s: "
            "203.0.113.7 1299 (login with a wrong token 1299)"])
        self.assertEqual(self.clock.getDelayedCalls(), [])
        # A new minute: its first refusal is shown at once again.
        self.refusals.refused("203.0.113.7", 401, "GET", "/", "no token")
        self.assertEqual(len(self.lines()), 3)

    def test_manyAddressesStillFewLines(self) -> None:
        for i in range(5000):
            self.refusals.refused(f"10.{i // 65536}.{i // 256 % 256}.{i % 256}", 401, "GET",
                                  "/metrics", "no token")
        self.assertEqual(len(self.lines()), 10)
        self.refusals.stop()
        self.assertEqual(len(self.lines()), 11)
        self.assertIn("4990 more refused request(s)", self.lines()[-1])
        self.assertIn("from further addresses", self.lines()[-1])
        self.assertEqual(self.clock.getDelayedCalls(), [])


class AdminSettingsTests(SynchronousTestCase):
    def settings(self, **admin):
        return adminSettings({"admin": {"port": 1499, **admin}}, None)

    def test_shortTokenRefusedAtStart(self) -> None:
        with self.assertRaises(AdminConfigError) as cm:
            self.settings(token="a" * 13)
        self.assertIn("admin.token is 13 characters long; it must have at least 16",
                      str(cm.exception))
        self.assertIn("| kkobot-config set admin.token -", str(cm.exception))
        self.assertEqual(self.settings(token="a" * 16).token, "a" * 16)

    def test_shortTokenStopsTheServer(self) -> None:
        from kkobot import config
        from kkobot.service import Settings, StartupError, resolve
        from tests.support import tempDir

        directory = os.path.join(tempDir(self), "cfg")
        data = config.skeleton()
        data["SERVER"]["server_ip"] = "127.0.0.1"
        data["admin"] = {"port": 1499, "token": "0123456789abc"}
        config.init(directory, data)
        with self.assertRaises(StartupError) as cm:
            resolve(Settings(configDir=directory))
        self.assertIn("admin.token is 13 characters long", str(cm.exception))
        self.assertNotIn("0123456789abc", str(cm.exception))

    def test_allowedHosts(self) -> None:
        default = self.settings(token=TOKEN)
        self.assertEqual(default.allowedHosts, {"localhost", "127.0.0.1", "::1"})
        wide = adminSettings({"admin": {"port": "tcp:1499:interface=192.168.0.5", "token": TOKEN,
                                        "allowed_hosts": ["Kkobot.Example.org"]}}, None)
        self.assertEqual(wide.allowedHosts,
                         {"localhost", "127.0.0.1", "::1", "192.168.0.5", "kkobot.example.org"})
        with self.assertRaises(AdminConfigError):
            self.settings(token=TOKEN, allowed_hosts="kkobot.example.org")
