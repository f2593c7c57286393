"""Lines out of one bridge connection, in its wire form, never before the rows they answer are journaled."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from kkobot.bridge.sending import Send, senderFor
from kkobot.commands import Reply

if TYPE_CHECKING:
    from kkobot.bridge.protocol import BridgeProtocol


class LineWriter:
    """
    Writes one connection's server lines (events, errors, replies) in the form the
    connection speaks (L{BridgeProtocol.form}), while it is neither closing nor gone.
    """

    def __init__(self, proto: BridgeProtocol) -> None:
        self.proto = proto
        # Lines waiting for the journal write of the rows they answer (None: none wait).
        self._held: list[bytes] | None = None
        self._send: Send | None = None

    def connected(self) -> None:
        """The transport is there: choose how lines reach it (L{senderFor})."""
        self._send = senderFor(self.proto.transport)

    def nowMillis(self) -> int:
        return int(self.proto.factory.clock.seconds() * 1000)

    def sendEvent(self, event: str, data: dict[str, Any]) -> None:
        proto = self.proto
        if proto.writable:
            self._write(proto.form.encodeEvent(event, data))

    def sendError(self, code: str, message: str) -> None:
        proto = self.proto
        if proto.writable:
            self._write(proto.form.encodeError(code, message, self.nowMillis()))
            proto.factory.events.errorSent(code)

    def sendReply(self, room: str, channelId: str | None, reply: Reply) -> None:
        """One `messageResponse`, in the connection's form."""
        proto = self.proto
        if proto.writable:
            self._write(proto.form.encodeReply(room, channelId, reply))

    def sendLine(self, line: bytes) -> None:
        """Deliver one already-encoded server line."""
        if self.proto.writable:
            self._write(line)

    def beforeClose(self) -> None:
        """What was already said goes out before the close: its rows are journaled now."""
        if self._held is not None:
            self.proto.factory.gate.flushJournal()

    def _write(self, data: bytes) -> None:
        # Rows are journaled once per reactor turn; a line written while rows are
        # still queued waits for that write, so a reply never reaches the socket
        # before the rows it answers (the reactor may send a transport's buffer in
        # the same poll as it reads, before any callLater(0) runs). Later lines of
        # this connection queue behind it, keeping their order.
        held = self._held
        if held is not None:
            held.append(data)
            return
        gate = self.proto.factory.gate
        if gate is not None and gate.journalPending:
            self._held = [data]
            gate.afterJournaled(self._release)
        else:
            (self._send or self.proto.transport.write)(data)

    def _release(self) -> None:
        held, self._held = self._held, None
        if held and not self.proto.gone:
            send = self._send or self.proto.transport.write
            send(held[0] if len(held) == 1 else b"".join(held))
