"""RedisLink against real servers: commands, fail-fast while down, one log line per change, reconnect."""

from __future__ import annotations

from twisted.internet import defer
from twisted.logger import globalLogPublisher
from twisted.trial import unittest

from kkobot.cluster.link import RedisLink, RedisUnavailable
from kkobot.cluster.settings import RedisAddress
from tests.support.redisrig import PrivateRedis, deletePrefix, eventually as until, requireRedis, scratchKeys, startedLink


class LogCapture:
    def __init__(self, case: unittest.TestCase) -> None:
        self.lines: list[str] = []
        globalLogPublisher.addObserver(self)
        case.addCleanup(globalLogPublisher.removeObserver, self)

    def __call__(self, event: dict) -> None:
        from twisted.logger import formatEvent

        text = formatEvent(event)
        if "Redis" in text:
            self.lines.append(text)


class SharedRedisTests(unittest.TestCase):
    @defer.inlineCallbacks
    def test_commandsAndScripts(self):
        """Commands and Lua scripts go through txredisapi; replies are text, not numbers."""
        address = requireRedis()
        keys = scratchKeys()
        link = yield startedLink(address)
        self.addCleanup(link.stop)
        self.addCleanup(deletePrefix, link, keys)
        self.assertEqual(link.state, "up")
        yield link.execute("SET", keys.prefix + ":k", "0042")
        value = yield link.execute("GET", keys.prefix + ":k")
        self.assertEqual(value, "0042")  # not converted to the number 42
        result = yield link.eval("return {ARGV[1], #KEYS}", [keys.prefix + ":x"], ["한글"])
        self.assertEqual(result, ["한글", 1])
        status = link.status()
        self.assertEqual(status["state"], "up")
        self.assertEqual(status["redis"], f"redis://{address.host}:{address.port}/0")


class OutageTests(unittest.TestCase):
    timeout = 60

    def setUp(self):
        requireRedis()
        self.server = PrivateRedis()
        self.addCleanup(self.server.destroy)
        self.server.start()

    @defer.inlineCallbacks
    def test_downThenRejoined(self):
        """Each change is one clear line; commands fail at once while down; it reconnects."""
        logs = LogCapture(self)
        link = RedisLink(self.server.address, maxRetryDelay=0.2)
        link.start()
        self.addCleanup(link.stop)
        events = []

        class Listener:
            def redisUp(self):
                events.append("up")

            def redisDown(self, reason):
                events.append("down")

        link.subscribe(Listener())
        yield link.whenUp()
        self.server.stop()
        yield until(lambda: link.state == "down")
        failure = yield self.assertFailure(link.execute("PING"), RedisUnavailable)
        self.assertIn("is down", str(failure))
        self.server.start()
        yield until(lambda: link.up)
        pong = yield link.execute("PING")
        self.assertEqual(pong, "PONG")
        self.assertEqual(events, ["up", "down", "up"])
        unreachable = [l for l in logs.lines if "unreachable: local-only mode" in l]
        rejoined = [l for l in logs.lines if "rejoined after" in l and "cluster mode" in l]
        self.assertEqual(len(unreachable), 1, logs.lines)
        self.assertEqual(len(rejoined), 1, logs.lines)
        self.assertTrue(unreachable[0].startswith("[SERVER] Redis redis://127.0.0.1:"))

    @defer.inlineCallbacks
    def test_unreachableAtStart(self):
        """A Redis that is down when the server starts: local-only at once, cluster once it comes."""
        logs = LogCapture(self)
        self.server.stop()
        link = RedisLink(self.server.address, maxRetryDelay=0.2)
        link.start()
        self.addCleanup(link.stop)
        yield until(lambda: link.state == "down")
        self.assertIsNotNone(link.status()["last_error"])
        self.server.start()
        yield link.whenUp()
        self.assertEqual(len([l for l in logs.lines if "unreachable" in l]), 1, logs.lines)

    @defer.inlineCallbacks
    def test_hungServerIsDown(self):
        """A server that stops answering (SIGSTOP) is taken for down after the reply timeout."""
        import signal

        link = RedisLink(self.server.address, replyTimeout=0.5, maxRetryDelay=0.2)
        link.start()
        self.addCleanup(link.stop)
        yield link.whenUp()
        self.server.proc.send_signal(signal.SIGSTOP)
        self.addCleanup(lambda: self.server.running and self.server.proc.send_signal(signal.SIGCONT))
        d = link.execute("PING")
        yield self.assertFailure(d, RedisUnavailable)
        yield until(lambda: link.state == "down")
        self.server.proc.send_signal(signal.SIGCONT)
        yield link.whenUp()


class PasswordTests(unittest.TestCase):
    timeout = 30

    @defer.inlineCallbacks
    def test_passwordInUrlAuthenticatesAndIsNeverShown(self):
        requireRedis()
        server = PrivateRedis()
        self.addCleanup(server.destroy)
        server.start()
        admin = yield startedLink(server.address)
        yield admin.execute("CONFIG", "SET", "requirepass", "s3cret/pw")
        yield admin.stop()
        address = RedisAddress.parse(f"redis://:s3cret%2Fpw@127.0.0.1:{server.port}/2")
        link = yield startedLink(address)
        self.addCleanup(link.stop)
        yield link.execute("SET", "k", "v")
        self.assertNotIn("s3cret", repr(address) + address.display() + str(link.status()))
        wrong = RedisLink(RedisAddress.parse(f"redis://:nope@127.0.0.1:{server.port}/0"),
                          maxRetryDelay=0.2)
        wrong.start()
        self.addCleanup(wrong.stop)
        yield until(lambda: wrong.state == "down")
        self.assertIn("auth", wrong.status()["last_error"].lower())
