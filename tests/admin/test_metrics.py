"""Prometheus metrics kept as plain numbers on the hot path: what a scrape shows."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from kkobot.admin.metrics import Metrics
from tests.support.adminhelpers import metricValue


class MetricsTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.metrics = Metrics()

    def test_messagesCountedByBotAndCommand(self) -> None:
        m = self.metrics
        for _ in range(3):
            m.messageIn("kkobot", "방", "1", "echo")
        m.messageIn("kkobot", "방", "1", None)
        m.messageOut("other", "방", None, "outbound")
        body = m.render()
        self.assertEqual(metricValue(body, "kkobot_messages_received_total", bot="kkobot", command="echo"), 3)
        self.assertEqual(metricValue(body, "kkobot_messages_received_total", bot="kkobot", command=""), 1)
        self.assertEqual(metricValue(body, "kkobot_messages_sent_total", bot="other", command="outbound"), 1)
        self.assertIsNone(metricValue(body, "kkobot_messages_sent_total", bot="kkobot"))
        self.assertIn(b"# TYPE kkobot_messages_received_total counter", body)

    def test_anAnsweredMessageCountsAsItsSingleEvents(self) -> None:
        single, combined = Metrics(), Metrics()
        for m in (single, combined):
            m.messageIn("other", "방", None, None)
        single.messageIn("kkobot", "방", "1", "echo")
        single.commandTimed("echo", 0.003)
        single.messageOut("kkobot", "방", "1", "echo")
        single.messageOut("kkobot", "방", "1", "echo")
        combined.messageAnswered("kkobot", "방", "1", "echo", 0.003, 2)
        combined.messageAnswered("kkobot", "방", "1", None, None, 0)
        single.messageIn("kkobot", "방", "1", None)
        expected, body = single.render(), combined.render()
        for name, labels in [
            ("kkobot_messages_received_total", {"bot": "kkobot", "command": "echo"}),
            ("kkobot_messages_received_total", {"bot": "kkobot", "command": ""}),
            ("kkobot_messages_received_total", {"bot": "other", "command": ""}),
            ("kkobot_messages_sent_total", {"bot": "kkobot", "command": "echo"}),
            ("kkobot_command_duration_seconds_bucket", {"command": "echo", "le": "0.005"}),
            ("kkobot_command_duration_seconds_count", {"command": "echo"}),
            ("kkobot_command_duration_seconds_sum", {"command": "echo"}),
        ]:
            self.assertEqual(metricValue(body, name, **labels), metricValue(expected, name, **labels),
                             (name, labels))
        self.assertEqual(metricValue(body, "kkobot_messages_sent_total", bot="kkobot", command="echo"), 2)

    def test_commandLatencyBuckets(self) -> None:
        m = self.metrics
        for seconds in (0.001, 0.003, 0.003, 20.0):
            m.commandTimed("echo", seconds)
        m.commandTimed("help", 0.0)
        body = m.render()

        def bucket(le: str, command: str = "echo") -> float | None:
            return metricValue(body, "kkobot_command_duration_seconds_bucket", command=command, le=le)

        # A value on a bound counts in that bucket (Prometheus' le is "<=").
        self.assertEqual(bucket("0.001"), 1)
        self.assertEqual(bucket("0.0025"), 1)
        self.assertEqual(bucket("0.005"), 3)
        self.assertEqual(bucket("10.0"), 3)
        self.assertEqual(bucket("+Inf"), 4)
        self.assertEqual(bucket("0.001", "help"), 1)
        self.assertEqual(metricValue(body, "kkobot_command_duration_seconds_count", command="echo"), 4)
        self.assertAlmostEqual(
            metricValue(body, "kkobot_command_duration_seconds_sum", command="echo"), 20.007
        )
        self.assertIn(b"# TYPE kkobot_command_duration_seconds histogram", body)


class BoundedLabelTests(SynchronousTestCase):
    """Finding 4: a refused client's bot name became a metric label of any size, for good."""

    def test_a_stranger_cannot_grow_the_metrics(self) -> None:
        from kkobot.admin.metrics import MAX_AUTH_FAILURE_BOTS, MAX_LABEL_CHARS, OTHER_LABEL

        m = Metrics()
        m.authFailed("kkobot")
        for i in range(1000):
            m.authFailed(f"{i:06d}" + "x" * 3000)
        m.authFailed("kkobot")
        body = m.render()
        self.assertLess(len(body), 300 * (MAX_AUTH_FAILURE_BOTS + 20))
        self.assertEqual(metricValue(body, "kkobot_auth_failures_total", bot="kkobot"), 2)
        self.assertEqual(
            metricValue(body, "kkobot_auth_failures_total", bot=OTHER_LABEL),
            1000 - (MAX_AUTH_FAILURE_BOTS - 1),
        )
        self.assertEqual(
            metricValue(body, "kkobot_auth_failures_total", bot="000000" + "x" * (MAX_LABEL_CHARS - 6)),
            1,
        )
