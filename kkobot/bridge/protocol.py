"""One bridge connection: lines in (in the form its bridge speaks), handshake, chat messages, pings, error events out."""

from __future__ import annotations

from operator import itemgetter
from typing import Any

from twisted.internet import defer, task
from twisted.internet.interfaces import IReactorTime
from twisted.internet.protocol import Factory
from kkobot.logs import Logger
from twisted.protocols.basic import LineReceiver
from twisted.protocols.policies import TimeoutMixin
from twisted.python.failure import Failure

from kkobot import __version__

from kkobot.bridge import wire

from kkobot.bridge import wireforms
from kkobot.bridge.auth import REFUSED_STATUSES, Admission, OpenAuthenticator
from kkobot.commands import Reply
from kkobot.events import NO_EVENTS, IServerEvents
from kkobot.bridge.registry import ClientInfo, ClientRegistry

log = Logger()

# After a deliberate close, a peer that does not read gets this long to take our
# last line before the socket is aborted.
ABORT_AFTER = 5.0

# Bad lines logged per connection: every one is answered, but a garbage flood must not
# fill server.log and rotate its history away. The rest are counted at the close.
BAD_LINES_LOGGED = 10

# Our recent ping timestamps are remembered to tell an answer from an unprompted ping.
PINGS_REMEMBERED = 4

# An unprompted ping is answered only if we have not pinged this recently, so a
# bridge that answers our ping with a ping of its own cannot start a ping-pong.
UNPROMPTED_PING_GAP = 5.0

# Until one of its events is correctly signed a connection has proved nothing (the
# handshake is unsigned and travels in clear text): it has the handshake timeout to
# send one, short lines, and a few bad lines before it is closed.
UNVERIFIED_LINE_BYTES = 16 * 1024
UNVERIFIED_BAD_LINES = 5
# Lists and objects in one unverified line (a bridge's first lines hold a handful):
# more are refused before parsing, which for a line of `[],[],...` is most of the cost.
UNVERIFIED_CONTAINERS = 64

# A phone's first queued message may still be long and must not be lost: this many
# unverified connections at a time may each hold one line up to the full limit.
LONG_LINE_SLOTS = 4


class BridgeProtocol(LineReceiver, TimeoutMixin):
    """
    The server side of one MessengerBotR bridge connection.

    Reading pauses (L{pauseProducing}) for several independent reasons at once:
    the transport's send buffer is full (the client does not read), a handshake is
    being decided, or the chat log asks for backpressure. Reading resumes when the
    last reason is gone.
    """

    delimiter = b"\n"
    factory: BridgeFactory
    client: ClientInfo | None = None
    # The form lines are read and written in: once the client is introduced (by its
    # handshake, or a message before it), the form of that line; until then the form
    # of the last line received, so each is answered as it was written.
    form: wireforms.IWireFormat = wireforms.JSON_LINES
    _introduced = False
    # Lines waiting for the journal write of the rows they answer (None: none wait).
    _held: list[bytes] | None = None

    def __init__(self) -> None:
        self._pauseReasons: set[str] = set()
        self._roomTails: dict[str, defer.Deferred[None]] = {}
        self._pingsSent: list[int] = []
        self._pinger: task.LoopingCall | None = None
        self._handshaking = False
        self._closing = False
        self._gone = False
        self._abortCall: Any = None
        self._badLines = 0
        self._strikes = 0
        self._longLine = False
        self._reprocess = False
        # Set once an event of this connection verified (at the handshake, auth off).
        self.verified = False
        self._admission: Admission | None = None
        self._lastPingSentAt = float("-inf")
        # Fires when the connection is gone (the service waits on it when stopping).
        self.closed: defer.Deferred[None] = defer.Deferred()
        self.address = "?"

    # -- connection lifecycle

    def connectionMade(self) -> None:
        factory = self.factory
        peer = self.transport.getPeer()
        self.address = getattr(peer, "host", str(peer))
        self.MAX_LENGTH = min(factory.maxLineBytes, UNVERIFIED_LINE_BYTES)
        self.callLater = factory.clock.callLater  # TimeoutMixin's clock
        self.transport.registerProducer(self, True)
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
        if self._badLines > BAD_LINES_LOGGED:
            log.info(
                "[MSG] {address} sent {count} bad line(s); {hidden} were not logged",
                address=self.address,
                count=self._badLines,
                hidden=self._badLines - BAD_LINES_LOGGED,
            )
        self.closed.callback(None)
        self._endLongLine()
        self.setTimeout(None)
        if self._abortCall is not None and self._abortCall.active():
            self._abortCall.cancel()
        if self._pinger is not None and self._pinger.running:
            self._pinger.stop()
        self.factory.connections.discard(self)
        if self.client is not None:
            self.factory.registry.remove(self.client)
            log.info(
                "[CLIENT] {bot} ({device}) from {address} disconnected",
                bot=self.client.botName,
                device=self.client.deviceID,
                address=self.address,
            )
            self.client = None

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
        if self._held is not None:
            # What we already said goes out before the close; its rows first.
            self.factory.gate.flushJournal()
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

    def dataReceived(self, data: bytes) -> None:
        if self._closing:
            return
        LineReceiver.dataReceived(self, data)
        while self._reprocess and not self._closing:
            # A long line was allowed after all (lineLengthExceeded): read on.
            self._reprocess = False
            LineReceiver.dataReceived(self, b"")

    def lineLengthExceeded(self, line: bytes) -> None:
        factory = self.factory
        if not self.verified and not self._longLine and factory.takeLongLine(self):
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
        # Until verified the timer is a deadline: no line extends it.
        if self.verified:
            self.resetTimeout()
        if not line or line.isspace():
            return
        if not self.verified and wire.tooManyContainers(line, UNVERIFIED_CONTAINERS):
            self.badLine(
                wire.BAD_JSON,
                f"more than {UNVERIFIED_CONTAINERS} lists and objects before a signed event",
            )
            return
        if not self._introduced:
            self.form = wireforms.formOfLine(line)
        try:
            event = self.form.decode(line)
        except wire.WireError as e:
            self.badLine(e.code, e.message)
            return
        if not self._introduced and isinstance(event, (wire.Hello, wire.ChatMessage)):
            self._introduced = True
        try:
            self.dispatch(event)
        except Exception:
            log.failure("[CLIENT] error handling a line from {address}", address=self.address)
            self.sendError(wire.INTERNAL_ERROR, "the server failed on this line")

    def _endLongLine(self) -> None:
        if self._longLine:
            self._longLine = False
            self.factory.releaseLongLine(self)
            if not self.verified:
                self.MAX_LENGTH = min(self.factory.maxLineBytes, UNVERIFIED_LINE_BYTES)

    def _strike(self) -> None:
        """One more bad line or failed event: an unverified connection gets only a few."""
        if self.verified:
            return
        self._strikes += 1
        if self._strikes > UNVERIFIED_BAD_LINES:
            log.info(
                "[CLIENT] closing {address}: {count} bad lines before a signed event",
                address=self.address,
                count=self._strikes,
            )
            self.disconnect()

    def badLine(self, code: str, message: str) -> None:
        self._badLines += 1
        if self._badLines <= BAD_LINES_LOGGED:
            self._logBadLine(code, message)
            if self._badLines == BAD_LINES_LOGGED:
                log.info(
                    "[MSG] {address}: further bad lines on this connection are counted, "
                    "not logged",
                    address=self.address,
                )
        self.sendError(code, message)
        self._strike()

    def _logBadLine(self, code: str, message: str) -> None:
        # Not `message=`: legacy log observers (trial's, twistd's) own that key and
        # blank it in the shared event, so the reason would log as "()".
        if code == wire.UNKNOWN_EVENT:
            log.warn("[MSG] {address}: {why}", address=self.address, why=message)
        else:
            log.info(
                "[MSG] bad line from {address}: {code} {why}",
                address=self.address,
                code=code,
                why=message,
            )

    # -- writing

    def nowMillis(self) -> int:
        return int(self.factory.clock.seconds() * 1000)

    def sendEvent(self, event: str, data: dict[str, Any]) -> None:
        if not self._closing and not self._gone:
            self._write(self.form.encodeEvent(event, data))

    def sendError(self, code: str, message: str) -> None:
        if not self._closing and not self._gone:
            self._write(self.form.encodeError(code, message, self.nowMillis()))
            self.factory.events.errorSent(code)

    def sendReply(self, room: str, channelId: str | None, reply: Reply) -> None:
        """One `messageResponse`, in this connection's form."""
        if not self._closing and not self._gone:
            self._write(self.form.encodeReply(room, channelId, reply))

    def sendLine(self, line: bytes) -> None:
        """Deliver one already-encoded server line (used by L{ClientInfo.send})."""
        if not self._closing and not self._gone:
            self._write(line)

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
        gate = self.factory.gate
        if gate is not None and gate.journalPending:
            self._held = [data]
            gate.afterJournaled(self._release)
        else:
            self.transport.write(data)

    def _release(self) -> None:
        held, self._held = self._held, None
        if held and not self._gone:
            self.transport.writeSequence(held)

    # -- events

    def dispatch(self, event: wire.Event) -> None:
        if isinstance(event, wire.Hello):
            if self.client is not None:
                # A bridge that re-sends its handshake just gets the answer again
                # (and, unverified, no more time).
                if self.verified or self._admission is None:
                    self._answerHandshake(Admission(True, self.client.approved))
                else:
                    self._answerHandshake(self._admission)
                return
            self.handshake(event)
            return
        auth = event.auth
        if self.client is None:
            if isinstance(event, wire.ChatMessage):
                # Some bridges start with `analyze`: the event itself introduces them.
                self.handshake(_helloFromEvent(event), pending=event)
                return
            self.badLine(wire.HANDSHAKE_REQUIRED, "send the handshake first")
            return
        reason = self.factory.authenticator.verifyEvent(self.client, auth)
        if isinstance(reason, defer.Deferred):
            # The deployment's replay check: no later line is read until it answers.
            self.pause("auth")
            reason.addCallback(self._verified, event, auth)
            reason.addErrback(self._verifyFailed)
            reason.addBoth(lambda _: self.resume("auth"))
            return
        self._verified(reason, event, auth)

    def _verifyFailed(self, failure: Failure) -> None:
        log.failure("[AUTH] checking an event of {address} failed", failure, address=self.address)
        if not (self._closing or self._gone):
            self.sendError(wire.INTERNAL_ERROR, "the server failed on this line")

    def _verified(self, reason: str | None, event: wire.Event, auth: Any) -> None:
        if self._closing or self._gone or self.client is None:
            return
        if reason is not None:
            if not self.verified and self.client.deviceStatus in REFUSED_STATUSES:
                self._deviceRefused()
                return
            self.authFailed(reason)
            return
        if not self.verified:
            self._trust()
        if self.client.deviceID is None:
            # 2.9.x handshakes carry no deviceID: the device is its events' deviceUUID.
            self.client.deviceID = _authDevice(auth)
        if isinstance(event, wire.ChatMessage):
            self.chatMessage(event)
        else:
            self.ping(event)

    def authFailed(self, reason: str) -> None:
        log.warn(
            "[AUTH] refused an event of {bot} from {address}: {reason}",
            bot=self.client.botName if self.client else None,
            address=self.address,
            reason=reason,
        )
        self.factory.events.authFailed(self.client.botName if self.client else None)
        self.sendError(wire.AUTH_FAILED, reason)
        if self.factory.authFailed(self):
            self.disconnect()
        else:
            self._strike()

    def _trust(self) -> None:
        """The connection's first event verified: it is a bridge of its bot from now on."""
        client = self.client
        assert client is not None
        factory = self.factory
        self.verified = client.verified = True
        self._endLongLine()
        self.MAX_LENGTH = factory.maxLineBytes
        factory.registry.add(client)
        admission = factory.authenticator.admission(client)
        log.info(
            "[AUTH] {bot} ({device}) from {address} verified{pending}",
            bot=client.botName,
            device=client.deviceID,
            address=self.address,
            pending="" if admission.approved else " (device pending approval)",
        )
        # Now the bridge may learn its device's real state.
        self._answerHandshake(admission)
        self.setTimeout(factory.idleTimeout)

    def _deviceRefused(self) -> None:
        """A correctly signed first event of a denied, revoked or blocked device."""
        client = self.client
        assert client is not None
        admission = self.factory.authenticator.admission(client)
        log.warn(
            "[AUTH] {bot} ({device}) from {address} refused: {why}",
            bot=client.botName,
            device=client.deviceID,
            address=self.address,
            why=admission.message,
        )
        self.factory.events.authFailed(client.botName)
        self._answerHandshake(admission)
        self.disconnect()

    def handshake(self, hello: wire.Hello, pending: wire.ChatMessage | None = None) -> None:
        if self._handshaking:
            # Lines are paused during a handshake; this cannot normally happen.
            return
        try:
            hello = wire.boundHello(hello)
        except wire.WireError as e:
            self.badLine(e.code, e.message)
            return
        self._handshaking = True
        self.pause("handshake")
        d = self.factory.authenticator.checkHello(hello, self.address)
        d.addCallback(self._admitted, hello, pending)
        d.addErrback(self._handshakeFailed)

    def _handshakeFailed(self, failure: Failure) -> None:
        log.failure("[CLIENT] handshake of {address} failed", failure, address=self.address)
        self._handshaking = False
        self._answerHandshake(Admission(False, False, "server error, try again later"))
        self.disconnect()

    def _admitted(
        self, admission: Admission, hello: wire.Hello, pending: wire.ChatMessage | None
    ) -> None:
        self._handshaking = False
        if self._closing or self._gone:
            return
        if not admission.accepted:
            log.warn(
                "[AUTH] handshake of {bot} ({device}) from {address} refused: {why}",
                bot=hello.botName,
                device=hello.deviceID,
                address=self.address,
                why=admission.message,
            )
            self.factory.events.authFailed(hello.botName)
            self._answerHandshake(admission)
            self.disconnect()
            return
        factory = self.factory
        self._admission = admission
        self.client = ClientInfo(
            botName=hello.botName,
            version=hello.version,
            clientType=hello.clientType,
            deviceID=hello.deviceID,
            deviceInfo=hello.deviceInfo,
            address=self.address,
            connectedSince=factory.clock.seconds(),
            approved=admission.approved,
            verified=admission.verified,
            send=self.sendLine,
            form=self.form,
        )
        self._pinger = task.LoopingCall(self.sendPing)
        self._pinger.clock = factory.clock
        if admission.verified:
            self.verified = True
            self.MAX_LENGTH = factory.maxLineBytes
            factory.registry.add(self.client)
            log.info(
                "[CLIENT] {bot} v{version} ({device}) from {address} handshake ok{pending}",
                bot=hello.botName,
                version=hello.version,
                device=hello.deviceID,
                address=self.address,
                pending="" if admission.approved else " (device pending approval)",
            )
            self._answerHandshake(admission)
            self.setTimeout(factory.idleTimeout)
            self._pinger.start(factory.pingInterval, now=False)
        else:
            log.info(
                "[CLIENT] {bot} v{version} ({device}) from {address} handshake received; "
                "waiting for a signed event",
                bot=hello.botName,
                version=hello.version,
                device=hello.deviceID,
                address=self.address,
            )
            self._answerHandshake(admission)
            # A fresh deadline for the signed event, which nothing extends; the ping
            # now gets a signed answer from a live bridge without waiting for chat.
            self.setTimeout(factory.handshakeTimeout)
            self._pinger.start(factory.pingInterval, now=True)
        if pending is not None:
            self.dispatch(pending)
        self.resume("handshake")

    def _answerHandshake(self, admission: Admission) -> None:
        self.sendEvent(
            "handshakeComplete",
            {
                "success": admission.accepted,
                "approved": admission.approved,
                "message": admission.message,
                "server_version": __version__,
            },
        )

    def chatMessage(self, message: wire.ChatMessage) -> None:
        assert self.client is not None
        handler = self.factory.handler
        now = getattr(handler, "handleMessageNow", None)
        key = message.channelId or message.room
        if now is None:
            d = handler.handleMessage(self.client, message)
        else:
            result = now(self.client, message)
            if not isinstance(result, defer.Deferred):
                if key not in self._roomTails:
                    # Answered at once, with nothing of this room still pending:
                    # no Deferred chain needed to keep the order.
                    try:
                        self._sendReplies(result, message)
                    except Exception:
                        self._replyFailed(Failure(), message)
                    return
                d = defer.succeed(result)
            else:
                d = result
        # Replies leave in the order their messages came, per room.
        tail = self._roomTails.get(key)
        if tail is not None:
            d = defer.gatherResults([tail, d], consumeErrors=True)
            d.addCallback(itemgetter(1))
        d.addCallback(self._sendReplies, message)
        d.addErrback(self._replyFailed, message)
        if d.called:
            self._roomTails.pop(key, None)
        else:
            self._roomTails[key] = d
            d.addBoth(self._roomDone, key, d)

    def _roomDone(self, result: None, key: str, d: defer.Deferred[None]) -> None:
        if self._roomTails.get(key) is d:
            del self._roomTails[key]

    def _sendReplies(self, replies: list[Reply], message: wire.ChatMessage) -> None:
        for reply in replies:
            try:
                self.sendReply(message.room, message.channelId, reply)
            except ValueError as e:
                # A reply this form cannot carry (a media payload that is not base64).
                log.error(
                    "[MSG] a reply to {room} was not sent to {address}: {why}",
                    room=message.room,
                    address=self.address,
                    why=str(e),
                )

    def _replyFailed(self, failure: Failure, message: wire.ChatMessage) -> None:
        log.failure("[MSG] could not answer a message in {room}", failure, room=message.room)

    # -- pings

    def sendPing(self) -> None:
        assert self.client is not None
        stamp = self.nowMillis()
        self._pingsSent = (self._pingsSent + [stamp])[-PINGS_REMEMBERED:]
        self._lastPingSentAt = self.factory.clock.seconds()
        self.sendEvent(
            "ping", {"bot_name": self.client.botName, "server_timestamp": stamp}
        )

    def ping(self, ping: wire.Ping) -> None:
        assert self.client is not None
        client = self.client
        rtt = None
        if ping.server_timestamp is not None and ping.server_timestamp in self._pingsSent:
            rtt = self.nowMillis() - ping.server_timestamp
            client.lastRttMillis = rtt
        client.lastPingAt = self.factory.clock.seconds()
        status = ping.monitoring if ping.monitoring is not None else ping.client_status
        if status is not None:
            client.monitoring = status
        log.debug(
            "[PING] {bot} from {address} rtt={rtt}ms",
            bot=client.botName,
            address=self.address,
            rtt=rtt,
        )
        self.factory.handler.handlePing(client, ping, rtt)
        if (
            rtt is None
            and client.lastPingAt - self._lastPingSentAt >= UNPROMPTED_PING_GAP
            and not isinstance(ping, wire.Pong)
        ):
            # Older bridges ping on their own and expect a ping back (a 3.3 `pong`
            # is always an answer, if to a ping we no longer remember).
            self.sendPing()


def _authDevice(auth: Any) -> str | None:
    """The device an event's C{auth} names, if it names one."""
    # deviceUUID first: it is the one the signature covers.
    for name in ("deviceUUID", "deviceID"):
        value = (auth or {}).get(name)
        if isinstance(value, str) and value and value != "unknown":
            return value[: wire.HELLO_REFUSED_PAST["deviceID"]]
    return None


def _helloFromEvent(message: wire.ChatMessage) -> wire.Hello:
    auth = message.auth or {}

    def field(name: str) -> str | None:
        value = auth.get(name)
        return value if isinstance(value, str) else None

    return wire.Hello(
        botName=message.botName or field("botName") or "unknown",
        version=field("version") or "unknown",
        clientType=message.clientType or field("clientType") or "MessengerBotR",
        deviceID=_authDevice(auth),
        deviceIP=field("ipAddress"),
    )


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
