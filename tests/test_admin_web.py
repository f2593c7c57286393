"""The admin web over real TCP: token checks, health, metrics, client list, outbound API."""

from __future__ import annotations

import json

from twisted.internet import defer
from twisted.logger import globalLogPublisher
from twisted.trial.unittest import TestCase

from tests.adminhelpers import TOKEN, RunningServer, metricValue
from tests.support import analyze

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
        for token in (None, "wrong-token", TOKEN + "x"):
            for method, path in GUARDED:
                body = {"bot": "kkobot", "room": "r", "text": "t"} if method == b"POST" else None
                code, headers, _ = yield self.server.request(method, path, token=token, body=body)
                self.assertEqual(code, 401, (method, path, token))
                self.assertEqual(headers.getRawHeaders(b"www-authenticate"), [b'Bearer realm="kkobot"'])
        self.assertEqual(len(self.logged), 3 * len(GUARDED))
        self.assertIn("[ADMIN] 401 GET /metrics from 127.0.0.1: no token", self.logged)
        self.assertIn("[ADMIN] 401 GET /metrics from 127.0.0.1: wrong token", self.logged)
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
        self.assertIn("[ADMIN] 401 POST /login from 127.0.0.1: login with a wrong token", self.logged)
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
            ({"bot": "nobody", "room": "r", "text": "t"}, 404),
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
