"""context.http against a local twisted.web server on 127.0.0.1: answers, timeouts, size and concurrency limits."""

from __future__ import annotations

import json

from twisted.internet import defer, reactor
from twisted.trial.unittest import TestCase
from twisted.web import resource, server

from kkobot.command import command
from kkobot.commands.http import HttpPool, HttpTimeout, ResponseTooLarge
from kkobot.testing import CommandTester


class Api(resource.Resource):
    """/json, /big (2 MiB), /slow (never answers), /hold (answers when released)."""

    isLeaf = True

    def __init__(self) -> None:
        super().__init__()
        self.held: list = []
        self.inFlight = 0
        self.mostInFlight = 0
        self.seen: list[bytes] = []

    def render_GET(self, request):
        self.seen.append(request.uri)
        if request.path == b"/json":
            request.setHeader(b"content-type", b"application/json")
            return json.dumps({"도시": "서울", "q": request.args.get(b"q", [b""])[0].decode()},
                              ensure_ascii=False).encode("utf-8")
        if request.path == b"/big":
            return b"x" * (2 * 1024 * 1024)
        if request.path == b"/chunked":
            for _ in range(64):
                request.write(b"y" * 32 * 1024)
            request.finish()
            return server.NOT_DONE_YET
        if request.path == b"/hold":
            self.inFlight += 1
            self.mostInFlight = max(self.mostInFlight, self.inFlight)
            self.held.append(request)
            return server.NOT_DONE_YET
        if request.path == b"/slow":
            return server.NOT_DONE_YET
        request.setResponseCode(404)
        return b"no"

    def release(self) -> None:
        held, self.held = self.held, []
        for request in held:
            self.inFlight -= 1
            request.write(b"done")
            request.finish()


class HttpTests(TestCase):
    timeout = 30

    def setUp(self):
        self.api = Api()
        site = server.Site(self.api)
        site.log = lambda request: None  # this test server keeps no access log
        self.port = reactor.listenTCP(0, site, interface="127.0.0.1")
        self.addCleanup(self.port.stopListening)
        self.base = f"http://127.0.0.1:{self.port.getHost().port}"
        self.pool = HttpPool(reactor, timeout=2.0, maxBytes=1024 * 1024, concurrency=2)
        self.addCleanup(self.pool.close)
        self.http = self.pool.forPlugin("test")

    @defer.inlineCallbacks
    def test_get_with_params_and_json_like_treq(self):
        response = yield self.http.get(self.base + "/json", params={"q": "날씨"})
        self.assertEqual(response.code, 200)
        self.assertEqual((yield response.json()), {"도시": "서울", "q": "날씨"})
        self.assertIn("서울", (yield response.text()))
        missing = yield self.http.get(self.base + "/nothing")
        self.assertEqual((missing.code, (yield missing.content())), (404, b"no"))

    @defer.inlineCallbacks
    def test_a_server_that_never_answers_times_out(self):
        started = reactor.seconds()
        yield self.assertFailure(self.http.get(self.base + "/slow", timeout=0.5), HttpTimeout)
        self.assertLess(reactor.seconds() - started, 1.5)

    @defer.inlineCallbacks
    def test_bodies_over_the_limit_are_refused(self):
        yield self.assertFailure(self.http.get(self.base + "/big"), ResponseTooLarge)  # Content-Length
        yield self.assertFailure(self.http.get(self.base + "/chunked", maxBytes=100_000), ResponseTooLarge)
        ok = yield self.http.get(self.base + "/chunked", maxBytes=4 * 1024 * 1024)
        self.assertEqual(len(ok.body), 64 * 32 * 1024)

    @defer.inlineCallbacks
    def test_at_most_the_plugins_limit_in_flight(self):
        calls = [self.http.get(self.base + "/hold") for _ in range(5)]
        other = self.pool.forPlugin("other").get(self.base + "/json")
        self.assertEqual((yield other).code, 200)  # another plugin is not held up
        while self.api.inFlight < 2:
            yield deferLater(0.01)
        yield deferLater(0.1)
        self.assertEqual(self.api.inFlight, 2)
        done = defer.gatherResults(calls)
        while not done.called:
            self.api.release()
            yield deferLater(0.01)
        self.assertEqual(self.api.mostInFlight, 2)
        self.assertEqual([r.body for r in (yield done)], [b"done"] * 5)

    def test_only_http_urls(self):
        self.failureResultOf(self.http.get("file:///etc/passwd"), ValueError)

    @defer.inlineCallbacks
    def test_a_command_uses_context_http_and_the_query_string_is_not_logged(self):
        from tests.support import captureLogs, logText

        @command("도시", "도시를 물어봅니다.")
        async def city(context):
            response = await context.http.get(self.base + "/json", params={"q": context.rest})
            return (await response.json())["도시"]

        @command("느린도시", "느린 서버.")
        async def slowCity(context):
            await context.http.get(self.base + "/slow", params={"key": context.config["key"]}, timeout=0.2)

        events = captureLogs(self)
        bot = CommandTester(city, slowCity, http=self.pool,
                            config={"plugins": {"test_plugin_http": {"key": "SECRET-KEY"}}})
        self.addCleanup(bot.stop)
        replies = bot.send("# 도시 부산")
        while not replies.done:
            yield deferLater(0.01)
        self.assertEqual(replies.texts, ["서울"])
        replies = bot.send("# 느린도시")
        while not replies.done:
            yield deferLater(0.01)
        self.assertEqual(replies.texts, ["명령을 처리하는 중 오류가 발생했습니다. 잠시 후 다시 시도해 주세요."])
        text = logText(events)
        self.assertIn("HTTP GET http://127.0.0.1", text)
        self.assertNotIn("SECRET-KEY", text)
        self.flushLoggedErrors(HttpTimeout)


def deferLater(seconds: float) -> defer.Deferred[None]:
    from twisted.internet import task

    return task.deferLater(reactor, seconds, lambda: None)
