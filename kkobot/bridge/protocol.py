"""One bridge connection: lines in (in the form its bridge speaks, within the limits of what it has proved), each event to its part."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver
from twisted.python.failure import Failure

from kkobot.bridge import wire, wireforms
from kkobot.bridge.auth import OpenAuthenticator
from kkobot.bridge.badlines import BadLines
from kkobot.bridge.handshake import Handshake
from kkobot.bridge.linewriter import LineWriter
from kkobot.bridge.pings import Pings
from kkobot.bridge.reading import LineReading
from kkobot.bridge.registry import ClientInfo, ClientRegistry
from kkobot.bridge.replies import RoomReplies
from kkobot.events import NO_EVENTS, IServerEvents
from kkobot.logs import Logger

log = Logger()

# After a deliberate close, a peer that does not read gets this long to take our
# last line before the socket is aborted.
ABORT_AFTER = 5.0

# Until one of its events is correctly signed a connection has proved nothing (the
# handshake is unsigned and travels in clear text): it has the handshake timeout to
# send one, short lines, and a few bad lines (L{BadLines}) before it is closed.
UNVERIFIED_LINE_BYTES = 16 * 1024
# Lists and objects in one unverified line (a bridge's first lines hold a handful):
# more are refused before parsing, which for a line of `[],[],...` is most of the cost.
UNVERIFIED_CONTAINERS = 64

# A phone's first queued message may still be long and must not be lost: this many
# unverified connections at a time may each hold one line up to the full limit.
LONG_LINE_SLOTS = 4


class BridgeProtocol(LineReading):
    """
    The server side of one MessengerBotR bridge connection.

    The protocol reads lines and decodes them; each event goes to the part of the
    connection it is for: L{handshake} (who the bridge is, whether it has proved it),
    L{replies} (chat messages, answered in order per room) or L{pings}. L{badLines}
    answers the lines that are no event; L{out} writes every server line.

    Reading pauses (L{pauseProducing}) for several independent reasons at once:
    the transport's send buffer is full (the client does not read), a handshake is
    being decided, or the chat log asks for backpressure. Reading resumes when the
    last reason is gone.
    """

    delimiter = b"\n"
    factory: BridgeFactory
    # The form lines are read and written in: once the client is introduced (by its
    # handshake, or a message before it), the form of that line; until then the form
    # of the last line received, so each is answered as it was written.
    form: wireforms.IWireFormat = wireforms.JSON_LINES
    _introduced = False
    # Neither closing nor gone: a new line may still be written (read per line out).
    writable = True

    def __init__(self) -> None:
        self.handshake = Handshake(self)
        self.badLines = BadLines(self)
        self.replies = RoomReplies(self)
        self.pings = Pings(self)
        self.out = LineWriter(self)
        self._pauseReasons: set[str] = set()
        self._closing = False
        self._gone = False
        self._abortCall: Any = None
        self._longLine = False
        # Fires when the connection is gone (the service waits on it when stopping).
        self.closed: defer.Deferred[None] = defer.Deferred()
        self.address = "?"

    @property
    def client(self) -> ClientInfo | None:
        """The bridge its accepted handshake describes (None before one)."""
        return self.handshake.client

    @property
    def verified(self) -> bool:
        """Whether an event of this connection verified (at the handshake, auth off)."""
        return self.handshake.verified

    @property
    def gone(self) -> bool:
        """Whether the connection is lost."""
        return self._gone

    # -- connection lifecycle

    def connectionMade(self) -> None:
        factory = self.factory
        peer = self.transport.getPeer()
        self.address = getattr(peer, "host", str(peer))
        self.MAX_LENGTH = min(factory.maxLineBytes, UNVERIFIED_LINE_BYTES)
        self.useClock(factory.clock)
        self.transport.registerProducer(self, True)
        self.out.connected()
        refusal = factory.admitConnection(self)
        if refusal is not None:
            log.warn(
                "[CLIENT] refused connection from {address}: {reason}",
                address=self.address,
                reason=refusal,
            )
            self.sendError(wire.TOO_MANY_CONNECTIONS, refusal)
            self.disconnect()
            return
        factory.connections.add(self)
        for reason in factory.pausedFor:
            self.pause(reason)
        self.setTimeout(factory.handshakeTimeout)
        log.info("[CLIENT] connection from {address}", address=self.address)

    def connectionLost(self, reason: Failure = None) -> None:  # type: ignore[assignment]
        self._gone = True
        self.writable = False
        self.badLines.lost()
        self.closed.callback(None)
        self._endLongLine()
        self.setTimeout(None)
        if self._abortCall is not None and self._abortCall.active():
            self._abortCall.cancel()
        self.pings.stop()
        self.factory.connections.discard(self)
        self.handshake.lost()

    def timeoutConnection(self) -> None:
        if self.client is None:
            code, why = wire.HANDSHAKE_TIMEOUT, "no handshake in time"
        elif not self.verified:
            code, why = wire.HANDSHAKE_TIMEOUT, "no signed event in time"
        else:
            code, why = wire.IDLE_TIMEOUT, "no line from the client in time"
        log.info("[CLIENT] closing {address}: {why}", address=self.address, why=why)
        self.sendError(code, why)
        self.disconnect()

    def disconnect(self) -> None:
        """Close after what was written; abort if the peer does not take it."""
        if self._closing:
            return
        self._closing = True
        self.writable = False
        self.out.beforeClose()
        # A registered producer keeps loseConnection from ever finishing.
        self.transport.unregisterProducer()
        self.transport.loseConnection()
        if not self._gone:
            self._abortCall = self.factory.clock.callLater(ABORT_AFTER, self._abortIfOpen)

    def _abortIfOpen(self) -> None:
        if not self._gone:
            self.transport.abortConnection()

    # -- reading, with several independent reasons to pause

    def pause(self, reason: str) -> None:
        self._pauseReasons.add(reason)
        if not self.paused:
            LineReceiver.pauseProducing(self)

    def resume(self, reason: str) -> None:
        self._pauseReasons.discard(reason)
        if not self._pauseReasons and self.paused and not self._closing:
            LineReceiver.resumeProducing(self)

    def pauseProducing(self) -> None:
        # Called by the transport when our replies pile up unread.
        self.pause("send-buffer")

    def resumeProducing(self) -> None:
        self.resume("send-buffer")

    def lineLengthExceeded(self, line: bytes) -> None:
        factory = self.factory
        if not self.handshake.verified and not self._longLine and factory.takeLongLine(self):
            self._longLine = True
            self.MAX_LENGTH = factory.maxLineBytes
            self._buffer = line
            self._reprocess = True
            return
        log.warn(
            "[CLIENT] {address} sent a line over {limit} bytes; disconnecting",
            address=self.address,
            limit=self.MAX_LENGTH,
        )
        self.sendError(
            wire.LINE_TOO_LONG, f"a line may be at most {self.MAX_LENGTH} bytes"
        )
        self.disconnect()

    def lineReceived(self, line: bytes) -> None:
        if self._closing:
            return
        if self._longLine:
            # The long line is in: the next one is held to the short limit again.
            self._endLongLine()
        verified = self.handshake.verified
        # Until verified the timer is a deadline: no line extends it.
        if verified:
            self._lastActivity = self._seconds()
        if not line or line.isspace():
            return
        if not verified and wire.tooManyContainers(line, UNVERIFIED_CONTAINERS):
            self.badLines.answer(
                wire.BAD_JSON,
                f"more than {UNVERIFIED_CONTAINERS} lists and objects before a signed event",
            )
            return
        if not self._introduced:
            self.form = wireforms.formOfLine(line)
        try:
            event = self.form.decode(line)
        except wire.WireError as e:
            self.badLines.answer(e.code, e.message)
            return
        if not self._introduced and isinstance(event, (wire.Hello, wire.ChatMessage)):
            self._introduced = True
        try:
            # A chat message straight to its part: what almost every line is.
            if type(event) is wire.ChatMessage:
                if self.handshake.admits(event):
                    self.replies.chatMessage(event)
            else:
                self.dispatch(event)
        except Exception:
            log.failure("[CLIENT] error handling a line from {address}", address=self.address)
            self.sendError(wire.INTERNAL_ERROR, "the server failed on this line")

    def dispatch(self, event: wire.Event) -> None:
        """Hand one decoded event to the part of the connection it is for."""
        handshake = self.handshake
        if isinstance(event, wire.Hello):
            handshake.hello(event)
        elif handshake.admits(event):
            self.handleAdmitted(event)

    def handleAdmitted(self, event: wire.ChatMessage | wire.Ping) -> None:
        """An event whose signature held: a chat message to answer, or a ping to record."""
        if isinstance(event, wire.ChatMessage):
            self.replies.chatMessage(event)
        else:
            self.pings.received(event)

    def liftLineLimit(self) -> None:
        """The connection proved itself: lines up to the server's limit, no long-line slot held."""
        self._endLongLine()
        self.MAX_LENGTH = self.factory.maxLineBytes

    def _endLongLine(self) -> None:
        if self._longLine:
            self._longLine = False
            self.factory.releaseLongLine(self)
            if not self.handshake.verified:
                self.MAX_LENGTH = min(self.factory.maxLineBytes, UNVERIFIED_LINE_BYTES)

    # -- writing (L{LineWriter}, in this connection's form)

    def sendEvent(self, event: str, data: dict[str, Any]) -> None:
        self.out.sendEvent(event, data)

    def sendError(self, code: str, message: str) -> None:
        self.out.sendError(code, message)

    def sendLine(self, line: bytes) -> None:
        """Deliver one already-encoded server line (used by L{ClientInfo.send})."""
        self.out.sendLine(line)


class BridgeFactory(Factory):
    """Builds L{BridgeProtocol}s and holds what they share: settings, registry, handler."""

    protocol = BridgeProtocol
    noisy = False

    def __init__(
        self,
        handler: Any,
        registry: ClientRegistry | None = None,
        authenticator: Any = None,
        clock: IReactorTime | None = None,
        pingInterval: float = 30.0,
        idleTimeout: float | None = None,
        handshakeTimeout: float = 30.0,
        maxLineBytes: int = wire.DEFAULT_MAX_LINE_BYTES,
        events: IServerEvents = NO_EVENTS,
        gate: Any = None,
    ) -> None:
        if clock is None:
            from twisted.internet import reactor as clock  # type: ignore[assignment]
        self.handler = handler
        self.registry = registry if registry is not None else ClientRegistry()
        self.authenticator = authenticator or OpenAuthenticator()
        self.clock = clock
        self.pingInterval = pingInterval
        # A client silent for three ping intervals is gone.
        self.idleTimeout = idleTimeout if idleTimeout is not None else 3 * pingInterval
        self.handshakeTimeout = handshakeTimeout
        self.maxLineBytes = maxLineBytes
        self.events = events
        # The chat log's journal barrier (journalPending, afterJournaled, flushJournal):
        # lines wait behind it; None sends at once (a chat log with no journal).
        self.gate = gate
        self.connections: set[BridgeProtocol] = set()
        # Unverified connections reading one long line right now (see LONG_LINE_SLOTS).
        self._longLines: set[BridgeProtocol] = set()
        # Reasons every connection is paused for; new connections start paused too.
        self.pausedFor: set[str] = set()

    def admitConnection(self, proto: BridgeProtocol) -> str | None:
        """A reason to refuse a new connection, or None to take it."""
        return None

    def takeLongLine(self, proto: BridgeProtocol) -> bool:
        """Let an unverified connection read one line past the short limit, if a slot is free."""
        if len(self._longLines) >= LONG_LINE_SLOTS:
            return False
        self._longLines.add(proto)
        return True

    def releaseLongLine(self, proto: BridgeProtocol) -> None:
        self._longLines.discard(proto)

    def authFailed(self, proto: BridgeProtocol) -> bool:
        """Count an auth failure; True when the connection should be dropped."""
        return False

    def pauseAll(self, reason: str) -> None:
        self.pausedFor.add(reason)
        for proto in list(self.connections):
            proto.pause(reason)

    def resumeAll(self, reason: str) -> None:
        self.pausedFor.discard(reason)
        for proto in list(self.connections):
            proto.resume(reason)
