"""Prometheus metrics: counters fed by the server's event hooks, gauges read from the registry at scrape time."""

from __future__ import annotations

from bisect import bisect_left
from typing import Any, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector
from zope.interface import implementer

from kkobot.events import IServerEvents
from kkobot.bridge.registry import ClientRegistry

# Commands answer in milliseconds; a slow plugin (HTTP lookups) can take seconds.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
# Auth failures are labelled with the bot a client named, which may be a stranger's
# invention: labels are clipped, and past this many distinct ones counted as "(other)",
# so neither the registry nor /metrics can be grown from outside.
MAX_LABEL_CHARS = 64
MAX_AUTH_FAILURE_BOTS = 100
OTHER_LABEL = "(other)"

FLUSH_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class ClientsCollector(Collector):
    """Connected clients and their last ping RTT, read from the registry when scraped."""

    def __init__(self, registry: ClientRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterator[Metric]:
        connected = GaugeMetricFamily(
            "kkobot_clients_connected",
            "Verified bridge connections, by bot and client version.",
            labels=["bot", "version"],
        )
        rtt = GaugeMetricFamily(
            "kkobot_ping_rtt_seconds",
            "Round trip of the last answered server ping, by bot and device.",
            labels=["bot", "device"],
        )
        counts: dict[tuple[str, str], int] = {}
        for client in self.registry:
            key = (client.botName, client.version)
            counts[key] = counts.get(key, 0) + 1
            if client.lastRttMillis is not None:
                rtt.add_metric(
                    [client.botName, client.deviceID or f"conn-{client.connectionId}"],
                    client.lastRttMillis / 1000.0,
                )
        for (bot, version), n in sorted(counts.items()):
            connected.add_metric([bot, version], n)
        yield connected
        yield rtt


class MessageCountsCollector(Collector):
    """
    Messages in and out by bot and command, and command latencies, kept as plain
    numbers by L{Metrics} and turned into samples only when scraped.
    """

    def __init__(
        self,
        received: dict[tuple[str, str], int],
        sent: dict[tuple[str, str], int],
        latencies: dict[str, list[float]],
    ) -> None:
        self.received = received
        self.sent = sent
        self.latencies = latencies

    def collect(self) -> Iterator[Metric]:
        for name, doc, counts in (
            ("kkobot_messages_received", "Chat messages received, by bot and command.", self.received),
            ("kkobot_messages_sent", "Messages the bot sent, by bot and command.", self.sent),
        ):
            family = CounterMetricFamily(name, doc, labels=["bot", "command"])
            for (bot, command), n in sorted(counts.items()):
                family.add_metric([bot, command], n)
            yield family
        latency = HistogramMetricFamily(
            "kkobot_command_duration_seconds",
            "Time from a command's message to its replies.",
            labels=["command"],
        )
        bounds = [str(float(b)) for b in LATENCY_BUCKETS] + ["+Inf"]
        for command, counts in sorted(self.latencies.items()):
            # counts: one per bucket (the last is +Inf), then the sum of seconds.
            cumulative, running = [], 0
            for bound, n in zip(bounds, counts):
                running += int(n)
                cumulative.append((bound, running))
            latency.add_metric([command], cumulative, counts[-1])
        yield latency


class TablesCollector(Collector):
    """Each table kkobot writes (chat, ping, device): does it take rows, how many wait."""

    def __init__(self, tables: Callable[[], list[dict[str, Any]]]) -> None:
        self.tables = tables

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "kkobot_table_up",
            "1 when the table takes its rows; 0 while they wait (database away, or the "
            "table refuses them).",
            labels=["kind", "table", "state"],
        )
        waiting = GaugeMetricFamily(
            "kkobot_table_rows_waiting",
            "Rows (devices, for the device table) kept locally until the table takes them.",
            labels=["kind", "table"],
        )
        for t in self.tables():
            up.add_metric([t["kind"], t["table"], t["state"]], 1 if t["state"] == "ok" else 0)
            waiting.add_metric([t["kind"], t["table"]], t["waiting"])
        yield up
        yield waiting


@implementer(IServerEvents)
class Metrics:
    """
    kkobot's metrics in a registry of its own (not prometheus_client's global one),
    so every service, and every test, counts from zero.
    """

    def __init__(self, clients: ClientRegistry | None = None) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        # Counted several times per message: a prometheus_client Counter takes a
        # lock and two calls per increment, a dict entry one addition.
        self.messagesIn: dict[tuple[str, str], int] = {}
        self.messagesOut: dict[tuple[str, str], int] = {}
        self.commandLatency: dict[str, list[float]] = {}
        r.register(MessageCountsCollector(self.messagesIn, self.messagesOut, self.commandLatency))
        self.errors = Counter(
            "kkobot_errors", "error events sent to clients, by code.", ["code"], registry=r,
        )
        self.authFailures = Counter(
            "kkobot_auth_failures", "Failed handshake or event authentications, by bot.",
            ["bot"], registry=r,
        )
        self._authFailureBots: set[str] = set()
        self.rowsWrittenTotal = Counter(
            "kkobot_chatlog_rows_written", "Chat-log rows written to the database.", registry=r,
        )
        self.rowsSpooledTotal = Counter(
            "kkobot_chatlog_rows_spooled", "Chat-log rows written to the local spool.", registry=r,
        )
        self.rowsReplayedTotal = Counter(
            "kkobot_chatlog_rows_replayed", "Spooled chat-log rows replayed into the database.",
            registry=r,
        )
        self.rowsRejectedTotal = Counter(
            "kkobot_chatlog_rows_rejected",
            "Rows the database refused for good, set aside in rejected.jsonl.", registry=r,
        )
        self.flushLatency = Histogram(
            "kkobot_chatlog_flush_duration_seconds", "Time to write one chat-log batch.",
            buckets=FLUSH_BUCKETS, registry=r,
        )
        if clients is not None:
            r.register(ClientsCollector(clients))

    def watchTables(self, tables: Callable[[], list[dict[str, Any]]]) -> None:
        """Report C{tables()} (L{kkobot.chatlog.kindlogs.KindLogs.tables}) at every scrape."""
        self.registry.register(TablesCollector(tables))

    def render(self) -> bytes:
        """The Prometheus text exposition of everything above."""
        return generate_latest(self.registry)

    # -- IServerEvents

    def messageIn(self, botName: str, room: str, channelId: str | None, command: str | None) -> None:
        key = (botName, command or "")
        counts = self.messagesIn
        counts[key] = counts.get(key, 0) + 1

    def messageOut(self, botName: str, room: str, channelId: str | None, command: str | None) -> None:
        key = (botName, command or "")
        counts = self.messagesOut
        counts[key] = counts.get(key, 0) + 1

    def messageAnswered(self, botName: str, room: str, channelId: str | None, command: str | None,
                        seconds: float | None, replies: int) -> None:
        key = (botName, command or "")
        counts = self.messagesIn
        counts[key] = counts.get(key, 0) + 1
        if replies:
            counts = self.messagesOut
            counts[key] = counts.get(key, 0) + replies
        if seconds is not None and command is not None:
            self.commandTimed(command, seconds)

    def commandTimed(self, command: str, seconds: float) -> None:
        counts = self.commandLatency.get(command)
        if counts is None:
            counts = self.commandLatency[command] = [0] * (len(LATENCY_BUCKETS) + 1) + [0.0]
        counts[bisect_left(LATENCY_BUCKETS, seconds)] += 1
        counts[-1] += seconds

    def errorSent(self, code: str) -> None:
        self.errors.labels(code).inc()

    def authFailed(self, botName: str | None) -> None:
        label = (botName or "")[:MAX_LABEL_CHARS]
        if label not in self._authFailureBots:
            if len(self._authFailureBots) >= MAX_AUTH_FAILURE_BOTS:
                label = OTHER_LABEL
            self._authFailureBots.add(label)
        self.authFailures.labels(label).inc()

    def rowsWritten(self, count: int, seconds: float) -> None:
        self.rowsWrittenTotal.inc(count)
        self.flushLatency.observe(seconds)

    def rowsSpooled(self, count: int) -> None:
        self.rowsSpooledTotal.inc(count)

    def rowsReplayed(self, count: int) -> None:
        self.rowsReplayedTotal.inc(count)

    def rowsRejected(self, count: int) -> None:
        self.rowsRejectedTotal.inc(count)
