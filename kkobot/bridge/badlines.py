"""A bridge connection's bad lines: each answered, the first few logged, an unproved connection closed after a few."""

from __future__ import annotations

from typing import TYPE_CHECKING

from kkobot.bridge import wire
from kkobot.logs import Logger

if TYPE_CHECKING:
    from kkobot.bridge.protocol import BridgeProtocol

log = Logger()

# Bad lines logged per connection: every one is answered, but a garbage flood must not
# fill server.log and rotate its history away. The rest are counted at the close.
BAD_LINES_LOGGED = 10

# Bad lines and failed events a connection that has proved nothing yet may send
# before it is closed.
UNVERIFIED_BAD_LINES = 5


class BadLines:
    """Answers a connection's bad lines with `error` events and counts them."""

    def __init__(self, proto: BridgeProtocol) -> None:
        self.proto = proto
        self.count = 0
        self._strikes = 0

    def answer(self, code: str, message: str) -> None:
        """One bad line: an `error` line back, logged while few, and a strike."""
        self.count += 1
        if self.count <= BAD_LINES_LOGGED:
            self._log(code, message)
            if self.count == BAD_LINES_LOGGED:
                log.info(
                    "[MSG] {address}: further bad lines on this connection are counted, "
                    "not logged",
                    address=self.proto.address,
                )
        self.proto.sendError(code, message)
        self.strike()

    def strike(self) -> None:
        """One more bad line or failed event: an unverified connection gets only a few."""
        proto = self.proto
        if proto.handshake.verified:
            return
        self._strikes += 1
        if self._strikes > UNVERIFIED_BAD_LINES:
            log.info(
                "[CLIENT] closing {address}: {count} bad lines before a signed event",
                address=proto.address,
                count=self._strikes,
            )
            proto.disconnect()

    def lost(self) -> None:
        """The connection is gone: the bad lines not logged are counted in one line."""
        if self.count > BAD_LINES_LOGGED:
            log.info(
                "[MSG] {address} sent {count} bad line(s); {hidden} were not logged",
                address=self.proto.address,
                count=self.count,
                hidden=self.count - BAD_LINES_LOGGED,
            )

    def _log(self, code: str, message: str) -> None:
        # Not `message=`: legacy log observers (trial's, twistd's) own that key and
        # blank it in the shared event, so the reason would log as "()".
        if code == wire.UNKNOWN_EVENT:
            log.warn("[MSG] {address}: {why}", address=self.proto.address, why=message)
        else:
            log.info(
                "[MSG] bad line from {address}: {code} {why}",
                address=self.proto.address,
                code=code,
                why=message,
            )
