"""Reading this instance's inbox stream with a consumer group, and draining the inbox of a dead one."""

from __future__ import annotations

from typing import Any

import txredisapi
from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime

from kkobot.cluster import lua
from kkobot.cluster.keys import GROUP, Keys
from kkobot.cluster.link import RedisUnavailable
from kkobot.cluster.message import RoutedMessage
from kkobot.cluster.presence import millis
from kkobot.logs import Logger

log = Logger()

# A dead instance's inbox is locked for this long by the instance draining it.
SWEEP_LOCK_MILLIS = 30_000

_UNAVAILABLE = (RedisUnavailable, txredisapi.ConnectionError, defer.TimeoutError,
                defer.CancelledError)

Entries = list[tuple[str, dict[str, str]]]


def _inboxGone(e: Exception) -> bool:
    return isinstance(e, txredisapi.ResponseError) and str(e).startswith(("UNBLOCKED", "NOGROUP"))


def pairsOf(raw: list[Any]) -> Entries:
    """Stream entries [[entryId, [field, value, ...]], ...] as (entryId, fields)."""
    # An entry deleted while pending comes back without fields.
    return [(entryId, dict(zip(flat[::2], flat[1::2])) if flat else {}) for entryId, flat in raw]


def entriesOf(reply: Any) -> Entries:
    """XREADGROUP's [[stream, entries]] (or nothing) as (entryId, fields)."""
    return pairsOf(reply[0][1]) if reply else []


class InboxReader:
    """
    Delivers what arrives in C{keys.inbox(instance)} through the router.

    C{reader} is a link of its own: XREADGROUP BLOCK holds its connection. Entries
    are taken (lua.TAKE, one round trip each, sent together), written in stream
    order, then acknowledged and deleted together (lua.ACK). Anything not acknowledged stays pending
    under this consumer and is read again (from id 0) after a failure or a restart,
    or claimed by another instance if this one dies.
    """

    def __init__(
        self,
        reader: Any,
        link: Any,
        keys: Keys,
        instance: str,
        router: Any,
        clock: IReactorTime,
        reactor: Any = None,
        block: float = 1.0,
        count: int = 100,
    ) -> None:
        if reactor is None:
            from twisted.internet import reactor
        self.reader = reader
        self.link = link
        self.keys = keys
        self.instance = instance
        self.router = router
        self.clock = clock
        self.reactor = reactor
        self.block = block
        self.count = count
        self.stream = keys.inbox(instance)
        self.running = False
        self.done: defer.Deferred[None] | None = None

    def start(self) -> None:
        self.running = True
        self.done = self._run()

    def stop(self) -> defer.Deferred[None]:
        """Ends the loop; the caller stops the reader link, which ends a blocked read."""
        self.running = False
        return self.done if self.done is not None else defer.succeed(None)

    @defer.inlineCallbacks
    def _run(self):
        while self.running:
            try:
                yield self.reader.whenUp()
                yield self.link.whenUp()
                yield ensureGroup(self.reader, self.stream)
                backlog = True
                while self.running:
                    entries = yield self._read("0" if backlog else ">")
                    if backlog and not entries:
                        backlog = False
                    elif entries:
                        yield self._handle(entries)
            except Exception as e:
                if not self.running:
                    break
                if _inboxGone(e):
                    # Taken for dead and swept (a long pause), or Redis lost its data:
                    # the group is made again; presence is written again at the next beat.
                    log.info("[MSG] inbox {stream} was removed; reading it anew", stream=self.stream)
                    continue
                if not isinstance(e, _UNAVAILABLE):
                    log.failure("[MSG] reading inbox {stream} failed; retrying", stream=self.stream)
                # The link notices a dead connection itself; this only keeps a
                # flapping server from turning the loop into a busy one.
                yield task.deferLater(self.reactor, 0.2, lambda: None)

    def _read(self, start: str) -> defer.Deferred[Entries]:
        d = self.reader.execute(
            "XREADGROUP", "GROUP", GROUP, self.instance, "COUNT", self.count,
            "BLOCK", millis(self.block), "STREAMS", self.stream, start, timeout=False,
        )
        # A hung server never answers a blocked read: give up a little after BLOCK.
        d.addTimeout(self.block + self.reader.replyTimeout, self.reactor)
        return d.addCallback(entriesOf)

    @defer.inlineCallbacks
    def _handle(self, entries: Entries):
        now = millis(self.clock.seconds())
        takes = [
            self.link.eval(lua.TAKE, (), (self.keys.prefix, fields.get("id", ""),
                                         self.router.incarnation, now))
            for _, fields in entries
        ]
        results = yield defer.DeferredList(takes, consumeErrors=True)
        done, failure = [], None
        for (entryId, _), (ok, reply) in zip(entries, results):
            if not ok:
                failure = failure or reply
                continue
            if reply[0] in ("take", "mine"):
                message = RoutedMessage.fromJSON(reply[1])
                self.router.deliverTaken(message, mine=reply[0] == "mine")
            done.append(entryId)
        if done:
            yield self.link.eval(lua.ACK, (self.stream,), done)
        if failure is not None:
            failure.raiseException()


@defer.inlineCallbacks
def ensureGroup(link: Any, stream: str):
    """The consumer group of an inbox (created with the stream; BUSYGROUP is fine)."""
    try:
        yield link.execute("XGROUP", "CREATE", stream, GROUP, "0", "MKSTREAM")
    except txredisapi.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise


@defer.inlineCallbacks
def drain(link: Any, keys: Keys, dead: str, instance: str, clock: IReactorTime, timeout: float):
    """
    Take over the inbox of C{dead} (an instance past its heartbeat, or this one
    leaving): its pending entries (XAUTOCLAIM) and unread ones are routed to where
    their bots are now, or wait for them. A Deferred of the number routed, or None
    when the instance is alive again or another instance is draining it.
    """
    prefix = keys.prefix
    claimed = yield link.eval(lua.CLAIM_DEAD, (), (
        prefix, dead, instance, millis(clock.seconds()), millis(timeout), SWEEP_LOCK_MILLIS,
    ))
    if not int(claimed):
        return None
    stream = keys.inbox(dead)
    moved = 0
    try:
        # Entries added before the instance ever read its inbox have no group yet.
        yield ensureGroup(link, stream)
        start = "0-0"
        while True:
            cursor, entries, *_ = yield link.execute(
                "XAUTOCLAIM", stream, GROUP, instance, 0, start, "COUNT", 100
            )
            moved += yield _forward(link, keys, dead, stream, pairsOf(entries), clock, timeout)
            if cursor == "0-0":
                break
            start = cursor
        while True:
            reply = yield link.execute(
                "XREADGROUP", "GROUP", GROUP, instance, "COUNT", 100, "STREAMS", stream, ">"
            )
            entries = entriesOf(reply)
            if not entries:
                break
            moved += yield _forward(link, keys, dead, stream, entries, clock, timeout)
    except txredisapi.ResponseError as e:
        if "NOGROUP" not in str(e):
            raise
    yield link.eval(lua.FINISH_DEAD, (), (prefix, dead))
    if dead != instance:
        log.warn(
            "[SERVER] instance {dead} stopped beating; {moved} message(s) from its inbox "
            "routed again",
            dead=dead,
            moved=moved,
        )
    return moved


@defer.inlineCallbacks
def _forward(link: Any, keys: Keys, dead: str, stream: str, entries: Entries,
             clock: IReactorTime, timeout: float):
    now = millis(clock.seconds())
    forwards = []
    for entryId, fields in entries:
        forwards.append(link.eval(lua.FORWARD, (), (
            keys.prefix, fields.get("id", ""), dead, now, millis(timeout), stream, entryId,
        )))
    replies = yield defer.gatherResults(forwards, consumeErrors=True)
    return sum(1 for r in replies if r[0] != "skip")
