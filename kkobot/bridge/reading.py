"""A connection's lines read in one loop, and a deadline that the lines of a verified connection extend."""

from __future__ import annotations

from typing import Any, Callable

from twisted.internet.interfaces import IReactorTime
from twisted.protocols.basic import LineReceiver


class LineReading(LineReceiver):
    """
    L{LineReceiver}'s reading, in one method (the line found with one memchr: its
    split walked every byte), and L{twisted.protocols.policies.TimeoutMixin}'s deadline without a
    C{DelayedCall.reset} per line: a line only notes its time (L{_lastActivity}),
    and when the timer fires a deadline that has moved since is waited for in turn.

    The subclass sets L{_closing} when it closes, may set L{_reprocess} in
    C{lineLengthExceeded} to read a long line after all, extends the deadline by
    C{self._lastActivity = self._seconds()}, and answers C{timeoutConnection}.
    """

    delimiter = b"\n"
    # The deadline: its length, the timer, and when it was last moved (setTimeout,
    # or a line the subclass counts).
    timeOut: float | None = None
    _timeoutCall: Any = None
    _lastActivity = 0.0
    _seconds: Callable[[], float]
    _callLater: Callable[..., Any]
    _closing = False
    # Set by lineLengthExceeded when the long line is allowed after all: read on.
    _reprocess = False

    def useClock(self, clock: IReactorTime) -> None:
        """The clock the deadline is kept by (set before the first setTimeout)."""
        self._seconds = clock.seconds
        self._callLater = clock.callLater

    def timeoutConnection(self) -> None:
        raise NotImplementedError

    def setTimeout(self, period: float | None) -> None:
        """A fresh deadline C{period} seconds from now (None: no deadline)."""
        self.timeOut = period
        call = self._timeoutCall
        if call is not None:
            self._timeoutCall = None
            if call.active():
                call.cancel()
        if period is not None:
            self._lastActivity = self._seconds()
            self._timeoutCall = self._callLater(period, self._deadlineReached)

    def _deadlineReached(self) -> None:
        self._timeoutCall = None
        if self.timeOut is None:
            return
        deadline = self._lastActivity + self.timeOut
        now = self._seconds()
        if deadline > now:
            self._timeoutCall = self._callLater(deadline - now, self._deadlineReached)
        else:
            self.timeoutConnection()

    def dataReceived(self, data: bytes) -> None:
        # LineReceiver.dataReceived's limits, pausing and re-entry, and a long line
        # that lineLengthExceeded allows after all read on at once.
        if self._closing:
            return
        if self._busyReceiving:
            self._buffer += data
            return
        self._busyReceiving = True
        try:
            buffer = self._buffer = self._buffer + data
            while buffer and not self.paused:
                end = buffer.find(b"\n")
                if end < 0 or end > self.MAX_LENGTH:
                    if end >= 0 or len(buffer) > self.MAX_LENGTH:
                        self._buffer = b""
                        self.lineLengthExceeded(buffer)
                        if self._reprocess and not self._closing:
                            self._reprocess = False
                            buffer = self._buffer
                            continue
                    return
                line = buffer[:end]
                self._buffer = buffer[end + 1:]
                self.lineReceived(line)
                if self._closing or self.transport.disconnecting:
                    return
                buffer = self._buffer
        finally:
            self._busyReceiving = False
