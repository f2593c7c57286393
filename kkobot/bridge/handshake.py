"""Who the bridge on one connection says it is, when it has proved it, and what it is answered."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from twisted.internet import defer
from twisted.python.failure import Failure

from kkobot import __version__
from kkobot.bridge import wire
from kkobot.bridge.auth import REFUSED_STATUSES, Admission
from kkobot.bridge.registry import ClientInfo
from kkobot.logs import Logger

if TYPE_CHECKING:
    from kkobot.bridge.protocol import BridgeProtocol

log = Logger()


class Handshake:
    """
    One connection's handshake and trust: its client (once a handshake was
    accepted) and whether it is verified (one of its events was correctly signed, or
    the authenticator trusts handshakes). Every event but the handshake passes
    L{admits} before it is handled.
    """

    client: ClientInfo | None = None
    # Set once an event of this connection verified (at the handshake, auth off).
    verified = False

    def __init__(self, proto: BridgeProtocol) -> None:
        self.proto = proto
        self._admission: Admission | None = None
        self._deciding = False

    def hello(self, hello: wire.Hello) -> None:
        """A handshake line: the first starts the handshake, a later one is answered again."""
        client = self.client
        if client is None:
            self.start(hello)
        # A bridge that re-sends its handshake just gets the answer again (and,
        # unverified, no more time).
        elif self.verified or self._admission is None:
            self.answer(Admission(True, client.approved))
        else:
            self.answer(self._admission)

    def admits(self, event: wire.ChatMessage | wire.Ping) -> bool:
        """
        Whether the connection may handle C{event} now: its client is known and the
        event's signature holds. The first such event verifies the connection.
        """
        proto = self.proto
        auth = event.auth
        client = self.client
        if client is None:
            if isinstance(event, wire.ChatMessage):
                # Some bridges start with `analyze`: the event itself introduces them.
                self.start(_helloFromEvent(event), pending=event)
                return False
            proto.badLines.answer(wire.HANDSHAKE_REQUIRED, "send the handshake first")
            return False
        # The device's approval as it stood before this event's check.
        approved = client.approved
        reason = proto.factory.authenticator.verifyEvent(client, auth)
        if reason is None:
            if self.verified and client.approved == approved and client.deviceID is not None:
                # What every event after the first is: nothing to settle.
                return True
            return self._settle(None, auth, approved)
        # isinstance on Deferred goes through ABCMeta in Python: after the None test.
        if isinstance(reason, defer.Deferred):
            # The deployment's replay check: no later line is read until it answers.
            proto.pause("auth")
            reason.addCallback(self._decided, event, approved)
            reason.addErrback(self._verifyFailed)
            reason.addBoth(lambda _: proto.resume("auth"))
            return False
        return self._settle(reason, auth, approved)

    def _decided(
        self, reason: str | None, event: wire.ChatMessage | wire.Ping, approved: bool
    ) -> None:
        if not self.proto.writable or self.client is None:
            return
        if self._settle(reason, event.auth, approved):
            self.proto.handleAdmitted(event)

    def _verifyFailed(self, failure: Failure) -> None:
        proto = self.proto
        log.failure("[AUTH] checking an event of {address} failed", failure, address=proto.address)
        if proto.writable:
            proto.sendError(wire.INTERNAL_ERROR, "the server failed on this line")

    def _settle(self, reason: str | None, auth: Any, approved: bool) -> bool:
        client = self.client
        assert client is not None
        if reason is not None:
            if not self.verified and client.deviceStatus in REFUSED_STATUSES:
                self._deviceRefused()
                return False
            self.authFailed(reason)
            return False
        if not self.verified:
            self._trust()
        elif client.approved != approved:
            # The check saw the device's new status (approved, or back to pending).
            self.proto.factory.registry.changed(client)
        if client.deviceID is None:
            # 2.9.x handshakes carry no deviceID: the device is its events' deviceUUID.
            client.deviceID = _authDevice(auth)
        return True

    def authFailed(self, reason: str) -> None:
        """An event whose signature does not hold: refused, counted, and perhaps the connection closed."""
        proto = self.proto
        log.warn(
            "[AUTH] refused an event of {bot} from {address}: {reason}",
            bot=self.client.botName if self.client else None,
            address=proto.address,
            reason=reason,
        )
        proto.factory.events.authFailed(self.client.botName if self.client else None)
        proto.sendError(wire.AUTH_FAILED, reason)
        if proto.factory.authFailed(proto):
            proto.disconnect()
        else:
            proto.badLines.strike()

    def lost(self) -> None:
        """The connection is gone: its client leaves the registry."""
        client = self.client
        if client is not None:
            self.proto.factory.registry.remove(client)
            log.info(
                "[CLIENT] {bot} ({device}) from {address} disconnected",
                bot=client.botName,
                device=client.deviceID,
                address=self.proto.address,
            )
            self.client = None

    def _trust(self) -> None:
        """The connection's first event verified: it is a bridge of its bot from now on."""
        client = self.client
        assert client is not None
        proto = self.proto
        factory = proto.factory
        self.verified = client.verified = True
        proto.liftLineLimit()
        factory.registry.add(client)
        admission = factory.authenticator.admission(client)
        log.info(
            "[AUTH] {bot} ({device}) from {address} verified{pending}",
            bot=client.botName,
            device=client.deviceID,
            address=proto.address,
            pending="" if admission.approved else " (device pending approval)",
        )
        # Now the bridge may learn its device's real state.
        self.answer(admission)
        proto.setTimeout(factory.idleTimeout)

    def _deviceRefused(self) -> None:
        """A correctly signed first event of a denied, revoked or blocked device."""
        client = self.client
        assert client is not None
        proto = self.proto
        admission = proto.factory.authenticator.admission(client)
        log.warn(
            "[AUTH] {bot} ({device}) from {address} refused: {why}",
            bot=client.botName,
            device=client.deviceID,
            address=proto.address,
            why=admission.message,
        )
        proto.factory.events.authFailed(client.botName)
        self.answer(admission)
        proto.disconnect()

    def start(self, hello: wire.Hello, pending: wire.ChatMessage | None = None) -> None:
        """Ask the authenticator about C{hello}; lines wait for its answer."""
        proto = self.proto
        if self._deciding:
            # Lines are paused during a handshake; this cannot normally happen.
            return
        try:
            hello = wire.boundHello(hello)
        except wire.WireError as e:
            proto.badLines.answer(e.code, e.message)
            return
        self._deciding = True
        proto.pause("handshake")
        d = proto.factory.authenticator.checkHello(hello, proto.address)
        d.addCallback(self._admitted, hello, pending)
        d.addErrback(self._failed)

    def _failed(self, failure: Failure) -> None:
        log.failure("[CLIENT] handshake of {address} failed", failure, address=self.proto.address)
        self._deciding = False
        self.answer(Admission(False, False, "server error, try again later"))
        self.proto.disconnect()

    def _admitted(
        self, admission: Admission, hello: wire.Hello, pending: wire.ChatMessage | None
    ) -> None:
        self._deciding = False
        proto = self.proto
        if not proto.writable:
            return
        factory = proto.factory
        if not admission.accepted:
            log.warn(
                "[AUTH] handshake of {bot} ({device}) from {address} refused: {why}",
                bot=hello.botName,
                device=hello.deviceID,
                address=proto.address,
                why=admission.message,
            )
            factory.events.authFailed(hello.botName)
            self.answer(admission)
            proto.disconnect()
            return
        self._admission = admission
        self.client = ClientInfo(
            botName=hello.botName,
            version=hello.version,
            clientType=hello.clientType,
            deviceID=hello.deviceID,
            deviceInfo=hello.deviceInfo,
            address=proto.address,
            connectedSince=factory.clock.seconds(),
            approved=admission.approved,
            verified=admission.verified,
            send=proto.sendLine,
            form=proto.form,
        )
        if admission.verified:
            self.verified = True
            proto.liftLineLimit()
            factory.registry.add(self.client)
            log.info(
                "[CLIENT] {bot} v{version} ({device}) from {address} handshake ok{pending}",
                bot=hello.botName,
                version=hello.version,
                device=hello.deviceID,
                address=proto.address,
                pending="" if admission.approved else " (device pending approval)",
            )
            self.answer(admission)
            proto.setTimeout(factory.idleTimeout)
            proto.pings.start(factory.pingInterval, now=False)
        else:
            log.info(
                "[CLIENT] {bot} v{version} ({device}) from {address} handshake received; "
                "waiting for a signed event",
                bot=hello.botName,
                version=hello.version,
                device=hello.deviceID,
                address=proto.address,
            )
            self.answer(admission)
            # A fresh deadline for the signed event, which nothing extends; the ping
            # now gets a signed answer from a live bridge without waiting for chat.
            proto.setTimeout(factory.handshakeTimeout)
            proto.pings.start(factory.pingInterval, now=True)
        if pending is not None:
            proto.dispatch(pending)
        proto.resume("handshake")

    def answer(self, admission: Admission) -> None:
        """A `handshakeComplete` line telling the bridge where it stands."""
        self.proto.sendEvent(
            "handshakeComplete",
            {
                "success": admission.accepted,
                "approved": admission.approved,
                "message": admission.message,
                "server_version": __version__,
            },
        )


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
