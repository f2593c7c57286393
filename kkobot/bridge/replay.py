"""Replay memory: the signatures accepted within the window, kept in memory and (ReplayFile) in <var>/replay."""

from __future__ import annotations

import math
import os
import struct
from heapq import heappop, heappush
from math import ceil
from typing import Any, Callable

from twisted.application.service import Service
from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from kkobot.interfaces import IReplayGuard
from kkobot.logs import Logger

log = Logger()

# One record per accepted signature: its first 128 bits and when it may be forgotten
# (epoch seconds). A segment file is MAGIC, then records, appended in batches.
RECORD = struct.Struct("<16sI")
MAGIC = b"kkobot-replay-1\n"
PREFIX = "replay-"
SUFFIX = ".bin"

# A signature is remembered until its timestamp (at most one window ahead of the clock)
# plus one window: a segment written for one window holds nothing needed past three.
SEGMENT_WINDOWS = 1
KEPT_WINDOWS = 3

# New signatures are written in one batch this often: a write per reactor turn (a
# thread hop and three system calls) cost a lock-step bridge a third more CPU per
# message. Only a process killed within this time forgets what it accepted in it.
FLUSH_INTERVAL = 0.1

Runner = Callable[..., "defer.Deferred[Any]"]


@implementer(IReplayGuard)
class ReplayGuard:
    """
    Remembers which connection first used each signature, in memory.

    A signature is a replay when it shows up on a different connection; on its own
    connection a repeat is normal (two events in one millisecond sign the same).
    Only verified signatures are kept, each by its first 128 bits (a collision is out
    of reach), until the whole second past its timestamp plus the window (later the
    timestamp check refuses it anyway): memory is bounded by what one window of
    accepted events signs. Signatures are grouped by the second they are forgotten
    in, so a check is two dictionary lookups and forgetting costs O(1) per signature.
    """

    def __init__(self, clock: IReactorTime, window: float) -> None:
        self.clock = clock
        self.window = window
        # First 32 hex digits -> the connection that used the signature first.
        self._seen: dict[str, int] = {}
        # The second a group is forgotten in -> its keys; the seconds, as a heap.
        self._bySecond: dict[int, list[str]] = {}
        self._seconds: list[int] = []
        self._nextForget: float = math.inf

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        seen, bySecond, seconds = self._seen, self._bySecond, self._seconds
        while seconds and seconds[0] <= now:
            for key in bySecond.pop(heappop(seconds)):
                del seen[key]
        self._nextForget = seconds[0] if seconds else math.inf

    def firstUse(self, sig: str, connectionId: int, stampSeconds: float) -> bool:
        """True when C{sig} is new or was first seen on C{connectionId}."""
        now = self.clock.seconds()
        if now >= self._nextForget:
            self._expire(now)
        key = sig[:32]
        owner = self._seen.get(key)
        if owner is not None:
            return owner == connectionId
        # Past its stamp plus the window the timestamp check refuses it anyway; a stamp
        # from the past counts from now, so every signature is kept a full window.
        forgetAt = self._add(key, connectionId, (stampSeconds if stampSeconds > now else now) + self.window)
        self.remembered(key, forgetAt)
        return True

    def _add(self, key: str, connectionId: int, forgetAt: float) -> int:
        """Keep C{key} (not kept yet) until the whole second at or after C{forgetAt}; that second."""
        second = ceil(forgetAt)
        group = self._bySecond.get(second)
        if group is None:
            group = self._bySecond[second] = []
            heappush(self._seconds, second)
            if second < self._nextForget:
                self._nextForget = second
        group.append(key)
        self._seen[key] = connectionId
        return second

    def remembered(self, key: str, forgetAt: int) -> None:
        """A new signature was kept until C{forgetAt} (a guard that persists them writes it down)."""


def _inThread(func: Callable[..., Any], *args: Any) -> defer.Deferred[Any]:
    from twisted.internet import threads

    return threads.deferToThread(func, *args)


def _segmentStart(name: str) -> int | None:
    if not (name.startswith(PREFIX) and name.endswith(SUFFIX)):
        return None
    digits = name[len(PREFIX):-len(SUFFIX)]
    return int(digits) if digits.isdigit() else None


def _segments(directory: str) -> list[tuple[int, str]]:
    """The segment files in C{directory}, oldest first."""
    found = []
    for name in os.listdir(directory):
        start = _segmentStart(name)
        if start is not None:
            found.append((start, os.path.join(directory, name)))
    return sorted(found)


def _removeBefore(directory: str, cutoff: float) -> list[str]:
    """Remove the segments started at C{cutoff} or before; the paths removed."""
    removed = []
    for start, path in _segments(directory):
        if start <= cutoff:
            try:
                os.unlink(path)
            except FileNotFoundError:
                continue
            removed.append(path)
    return removed


def _append(path: str, data: bytes, cutoff: float | None) -> None:
    """Runs in a thread: one batch onto the current segment, then old segments removed."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        if os.fstat(fd).st_size == 0:
            data = MAGIC + data
        os.write(fd, data)
    finally:
        os.close(fd)
    if cutoff is not None:
        _removeBefore(os.path.dirname(path), cutoff)


class ReplayFile(ReplayGuard, Service):
    """
    A L{ReplayGuard} whose signatures are also appended to segment files in
    C{directory} and read back at start, so a signed line captured before a restart
    is refused after it, as it would have been before.

    Writing never blocks the reactor: new signatures are collected for
    L{FLUSH_INTERVAL} and appended in a thread, one batch at a time; stopping writes
    the rest. A signature is on disk within that interval of its event; only a process
    killed within it forgets those. (The page cache outlives a killed process; only a
    power loss can lose more, and the machine's reboot takes longer than the window.)

    The files hold what one window of accepted events signs, no more: a segment is
    started every window and removed once nothing in it can be needed. Nothing is
    written before a signature has been verified, so strangers cannot fill them.
    """

    def __init__(
        self,
        directory: str,
        clock: IReactorTime,
        window: float,
        run: Runner = _inThread,
    ) -> None:
        ReplayGuard.__init__(self, clock, window)
        self.directory = directory
        self._run = run
        self._pending: list[tuple[str, int]] = []
        self._flushCall: Any = None
        self._writing: defer.Deferred[None] | None = None
        self._segment: int | None = None
        self._failing = False

    # -- service

    def startService(self) -> None:
        # Read at start, before the port opens: one window of signatures, bounded.
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        _removeBefore(self.directory, self.clock.seconds() - KEPT_WINDOWS * self.window)
        loaded = self._load()
        if loaded:
            log.info(
                "[AUTH] replay memory: {count} signature(s) of the last run still in their "
                "window, from {directory}",
                count=loaded,
                directory=self.directory,
            )
        Service.startService(self)

    def stopService(self) -> defer.Deferred[None]:
        Service.stopService(self)
        if self._flushCall is not None and self._flushCall.active():
            self._flushCall.cancel()
        self._flushCall = None
        d: defer.Deferred[None] = defer.Deferred()

        def last(_: Any = None) -> None:
            # After the write in flight (if any): what is still pending, then done.
            if self._pending:
                self._writeBatch().addBoth(lambda _: d.callback(None))
            else:
                d.callback(None)

        if self._writing is not None:
            self._writing.addBoth(last)
        else:
            last()
        return d

    # -- reading back

    def _load(self) -> int:
        now = self.clock.seconds()
        loaded = 0
        for start, path in _segments(self.directory):
            with open(path, "rb") as f:
                data = f.read()
            if not data.startswith(MAGIC):
                log.warn("[AUTH] {path} is not a replay memory file; ignored", path=path)
                continue
            body = memoryview(data)[len(MAGIC):]
            # A batch cut short by a crash leaves a partial record at the end.
            body = body[: len(body) - len(body) % RECORD.size]
            seen = self._seen
            for digest, forgetAt in RECORD.iter_unpack(body):
                key = digest.hex()
                if forgetAt > now and key not in seen:
                    # Connection 0 is none of this run's: any use is a replay.
                    self._add(key, 0, forgetAt)
                    loaded += 1
            self._segment = start
        return loaded

    # -- writing down

    def remembered(self, key: str, forgetAt: int) -> None:
        # Packed when the batch is written: one pass over the batch, not a call per event.
        self._pending.append((key, forgetAt))
        if self._flushCall is None and self._writing is None and self.running:
            self._scheduleFlush()

    def _scheduleFlush(self) -> None:
        self._flushCall = self.clock.callLater(FLUSH_INTERVAL, self._flush)

    def _flush(self) -> None:
        self._flushCall = None
        if self._pending and self._writing is None:
            self._writeBatch()

    def _writeBatch(self) -> defer.Deferred[None]:
        pack, fromhex = RECORD.pack, bytes.fromhex
        data = b"".join([pack(fromhex(key), forgetAt) for key, forgetAt in self._pending])
        self._pending = []
        now = self.clock.seconds()
        cutoff = None
        if self._segment is None or self._segment + SEGMENT_WINDOWS * self.window <= now:
            # A new segment every window; the old ones go once nothing in them counts.
            self._segment = int(now)
            cutoff = now - KEPT_WINDOWS * self.window
        path = os.path.join(self.directory, f"{PREFIX}{self._segment}{SUFFIX}")
        d = self._run(_append, path, data, cutoff)
        self._writing = d
        d.addCallbacks(self._written, self._writeFailed, errbackArgs=(path,))
        return d

    def _written(self, _: Any) -> None:
        self._writing = None
        if self._failing:
            log.info("[AUTH] replay memory written again to {directory}", directory=self.directory)
            self._failing = False
        self._next()

    def _next(self) -> None:
        # What came in during the write waits for the next interval, not less: under
        # load, writing as soon as the last write is done is a write per reactor turn.
        if self._pending and self.running and self._flushCall is None:
            self._scheduleFlush()

    def _writeFailed(self, failure: Failure, path: str) -> None:
        self._writing = None
        if not self._failing:
            # Serving goes on: replays are still refused until the next restart.
            log.error(
                "[AUTH] cannot write the replay memory to {path}: {error}; a restart "
                "would forget the signatures of this window",
                path=path,
                error=failure.getErrorMessage(),
            )
            self._failing = True
        self._next()
