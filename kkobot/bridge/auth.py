"""Who may talk to the server: the admission decision for a handshake and per-event checks."""

from __future__ import annotations

import hashlib
import hmac
import weakref
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from kkobot.cluster.fired import resultNow
from kkobot.interfaces import IAuthenticator, IReplayGuard
from kkobot.logs import Logger
from kkobot.bridge.wire import HELLO_REFUSED_PAST, Hello

log = Logger()

# The window is never narrower than this: queued events arrive up to ~30 s late, and
# phone clocks drift.
MIN_WINDOW_SECONDS = 120.0
DEFAULT_WINDOW_SECONDS = 300.0

# 2.9.x and 3.1.x bridges sign this literal first, whatever `clientType` they send.
LEGACY_CLIENT_TYPE = "MessengerBotR"

# Fields of `auth` that are signed, in order; the bot's salt follows them.
SIGNED_FIELDS = ("clientType", "botName", "deviceUUID", "macAddress", "ipAddress", "timestamp")

REFUSED_STATUSES = ("denied", "revoked", "blocked")

REPLAYED = "replayed signature: it was first used on another connection"

# A device named only inside auth (2.9.0c) is held to the handshake's deviceID limit.
MAX_DEVICE_CHARS = HELLO_REFUSED_PAST["deviceID"]

# Signs for a bot the server has no credentials for: never matches, costs the same.
_NO_SECRET = "no credentials for this bot"

Credentials = Callable[[str], "tuple[str, str] | None"]


@dataclass(frozen=True)
class Admission:
    """
    What the server answers a handshake with. C{verified} False: the connection is
    trusted only once one of its events is correctly signed (the handshake is not).
    """

    accepted: bool
    approved: bool
    message: str = "ok"
    verified: bool = True


# The one answer every unverified handshake gets, whatever the bot or device: the
# handshake travels in clear text, so it must tell a stranger nothing. The real state
# follows in a fresh handshakeComplete after the first correctly signed event.
UNVERIFIED = Admission(
    True, False, "handshake received: waiting for a signed event", verified=False
)


@implementer(IAuthenticator)
class OpenAuthenticator:
    """Lets every client in: the embedded no-config default (loopback only)."""

    def checkHello(self, hello: Hello, address: str) -> defer.Deferred[Admission]:
        return defer.succeed(Admission(accepted=True, approved=True))

    def verifyEvent(self, client: Any, auth: Mapping[str, Any] | None) -> str | None:
        return None

    def admission(self, client: Any) -> Admission:
        return Admission(accepted=True, approved=True)


def signedField(value: Any) -> str:
    """A field as the bridge puts it into the signed string ("" when missing)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    # JavaScript prints an integral number without ".0".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def signature(secret: str, salt: str, auth: Mapping[str, Any], clientType: str | None = None) -> str:
    """hex(HMAC-SHA256(secret, "clientType|botName|deviceUUID|macAddress|ipAddress|timestamp|salt"))."""
    parts = [signedField(auth.get(name)) for name in SIGNED_FIELDS]
    if clientType is not None:
        parts[0] = clientType
    parts.append(salt)
    message = "|".join(parts).encode("utf-8")
    return hmac.new(secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def signatureMatches(secret: str, salt: str, auth: Mapping[str, Any], given: str) -> bool:
    """Constant-time check of C{given} against what the bridge signed."""
    givenBytes = given.lower().encode("ascii", "replace")
    good = False
    candidates = {signedField(auth.get("clientType"))}
    if auth.get("clientType") is None:
        # Older bridges may leave clientType out yet sign the literal.
        candidates.add(LEGACY_CLIENT_TYPE)
    for clientType in sorted(candidates):
        expected = signature(secret, salt, auth, clientType).encode("ascii")
        # No early exit: every candidate is computed and compared.
        good = hmac.compare_digest(expected, givenBytes) | good
    return good


# Milliseconds beyond this (the year 33658) are no clock reading; an unbounded int
# would also overflow the float arithmetic of the window check.
MAX_TIMESTAMP_MILLIS = 10**15


def timestampMillis(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    # isdigit() alone also admits digits like "²" that int() rejects.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        value = int(value)
    if isinstance(value, int) and abs(value) < MAX_TIMESTAMP_MILLIS:
        return value
    return None


@implementer(IReplayGuard)
class ReplayGuard:
    """
    Remembers which connection first used each signature, in memory.

    A signature is a replay when it shows up on a different connection; on its own
    connection a repeat is normal (two events in one millisecond sign the same).
    Entries are forgotten once their timestamp has left the window, so memory is
    bounded by the number of signatures a window can hold. A signature is kept by
    its first 128 bits (half the memory; a collision is out of reach).
    """

    def __init__(self, clock: IReactorTime, window: float) -> None:
        self.clock = clock
        self.window = window
        self._seen: OrderedDict[str, tuple[int, float]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: float) -> None:
        seen = self._seen
        while seen:
            _, (_, forgetAt) = next(iter(seen.items()))
            if forgetAt > now:
                break
            seen.popitem(last=False)

    def firstUse(self, sig: str, connectionId: int, stampSeconds: float) -> bool:
        """True when C{sig} is new or was first seen on C{connectionId}."""
        now = self.clock.seconds()
        self._expire(now)
        key = sig[:32]
        entry = self._seen.get(key)
        if entry is not None:
            return entry[0] == connectionId
        # Past stamp + window the timestamp check refuses the signature anyway;
        # measuring from "now" at the latest keeps insertion order the expiry order.
        forgetAt = max(stampSeconds, now) + self.window
        self._seen[key] = (connectionId, forgetAt)
        self.remembered(key, forgetAt)
        return True

    def remembered(self, key: str, forgetAt: float) -> None:
        """A new signature was recorded (a guard that persists them writes it down)."""


@implementer(IAuthenticator)
class HmacAuthenticator:
    """
    Checks every event's HMAC signature and each device's approval.

    @param credentials: bot name -> (secret, salt), or None for an unknown bot.
    @param devices: a L{kkobot.bridge.devices.DeviceStore} (status cache plus registration).
    """

    def __init__(
        self,
        credentials: Credentials,
        devices: Any,
        clock: IReactorTime,
        window: float = DEFAULT_WINDOW_SECONDS,
        replays: IReplayGuard | None = None,
    ) -> None:
        if window < MIN_WINDOW_SECONDS:
            log.warn(
                "[AUTH] auth.window_seconds {window} is below {floor}; using {floor} "
                "(queued events arrive up to 30 s late)",
                window=window,
                floor=MIN_WINDOW_SECONDS,
            )
            window = MIN_WINDOW_SECONDS
        self.credentials = credentials
        self.devices = devices
        self.clock = clock
        self.window = window
        self.replays = replays if replays is not None else ReplayGuard(clock, window)
        # The deployment's replay check (an IReplayCheck; several instances): asked
        # after this process's guard, and its answer may take a round trip.
        self.sharedReplays: Any = None
        # Connections whose device has been recorded (a ClientInfo lives as long as one).
        self._recorded: weakref.WeakSet[Any] = weakref.WeakSet()

    # -- handshake

    def checkHello(self, hello: Hello, address: str) -> defer.Deferred[Admission]:
        # Unsigned, so it decides nothing and reads nothing: no lookup a stranger could
        # make the database do, no answer that tells a known bot or device from another.
        return defer.succeed(UNVERIFIED)

    def admission(self, client: Any) -> Admission:
        """The real handshake answer for a client whose event just verified (or failed on its device)."""
        status = client.deviceStatus or ("approved" if client.approved else "pending")
        return admissionFor(status, client.botName, client.deviceID or "")

    # -- every later event

    def verifyEvent(self, client: Any, auth: Mapping[str, Any] | None) -> Any:
        """
        None when the event verifies, else the reason it does not; with
        C{sharedReplays}, a Deferred of that when the deployment's answer is not
        known at once (the protocol reads no further line until it is).
        """
        # The protocol logs the refusal ([AUTH], with address, bot and this reason).
        reason = self._verify(client, auth)
        if reason is not None:
            return reason
        assert auth is not None
        if self.sharedReplays is None:
            return self._deviceCheck(client, auth)
        stamp = timestampMillis(auth.get("timestamp")) or 0
        d = self.sharedReplays.firstUse(auth["signature"].lower(), client.connectionId, stamp / 1000.0)

        def decided(first: bool) -> str | None:
            return self._deviceCheck(client, auth) if first else REPLAYED

        known, first = resultNow(d)
        return decided(first) if known else d.addCallback(decided)

    def _verify(self, client: Any, auth: Mapping[str, Any] | None) -> str | None:
        if not isinstance(auth, Mapping):
            return "the event has no auth object: set SECRET_KEY in the bridge script"
        sig = auth.get("signature")
        if not isinstance(sig, str) or not sig:
            return "the event is not signed (auth.signature is missing)"
        bot = auth.get("botName")
        if bot != client.botName:
            return (
                f"auth.botName '{str(bot)[:40]}' is not the bot this connection "
                f"introduced ('{client.botName[:40]}')"
            )
        device = auth.get("deviceUUID")
        if client.deviceID is not None and device != client.deviceID:
            # The handshake's deviceID is not signed; the event's deviceUUID is.
            return (
                f"auth.deviceUUID '{str(device)[:40]}' is not the device this connection "
                f"introduced ('{client.deviceID[:40]}')"
            )
        creds = self.credentials(client.botName)
        # An unknown bot gets the answer, and costs the time, of a wrong key: a stranger
        # must not learn which bot names the server knows.
        secret, salt = creds if creds is not None else (_NO_SECRET, "")
        if not signatureMatches(secret, salt, auth, sig) or creds is None:
            return (
                f"bad signature: the server has no credentials for bot "
                f"'{client.botName[:40]}' (kkobot-config add-bot), or its SECRET_KEY / "
                "BOT_SPECIFIC_SALT differ from the server's, or the event was altered"
            )
        stamp = timestampMillis(auth.get("timestamp"))
        if stamp is None:
            return "auth.timestamp is missing or not a number of milliseconds"
        skew = stamp / 1000.0 - self.clock.seconds()
        if abs(skew) > self.window:
            direction = "ahead of" if skew > 0 else "behind"
            return (
                f"auth.timestamp is {abs(skew):.0f} s {direction} the server's clock "
                f"(allowed: {self.window:.0f} s); set the phone's clock automatically"
            )
        if not self.replays.firstUse(sig.lower(), client.connectionId, stamp / 1000.0):
            return REPLAYED
        return None

    def _deviceCheck(self, client: Any, auth: Mapping[str, Any]) -> str | None:
        if client not in self._recorded:
            if not client.deviceID:
                device = auth.get("deviceUUID") or auth.get("deviceID")
                if isinstance(device, str) and len(device) > MAX_DEVICE_CHARS:
                    return f"auth.deviceUUID is longer than {MAX_DEVICE_CHARS} characters"
                client.deviceID = device if isinstance(device, str) and device else None
            self._recorded.add(client)
            if client.deviceID:
                # Once per connection: first/last seen, address, version.
                d = self.devices.register(
                    client.botName,
                    client.deviceID,
                    clientType=client.clientType,
                    version=client.version,
                    address=client.address,
                    deviceInfo=client.deviceInfo,
                )
                d.addErrback(self._registerFailed)
        status = self.devices.status(client.botName, client.deviceID)
        if status is None:
            # New and being recorded right now.
            status = "approved" if self.devices.autoApprove else "pending"
        client.deviceStatus = status
        if status in REFUSED_STATUSES:
            return f"device {client.deviceID} of bot '{client.botName}' is {status}"
        # An approval (or a step back to pending) takes effect on the next event.
        client.approved = status == "approved"
        return None

    def _registerFailed(self, failure: Failure) -> None:
        log.error("[AUTH] could not record a device: {error}", error=failure.getErrorMessage())


def admissionFor(status: str | None, bot: str, device: str) -> Admission:
    """The handshake answer for a device in C{status}."""
    if status == "approved":
        return Admission(True, True)
    if status in REFUSED_STATUSES:
        return Admission(False, False, f"device {device} is {status} on this server")
    if status not in ("pending",):
        return Admission(False, False, "server error, try again later")
    return Admission(
        True,
        False,
        f"device {device} is waiting for approval: on the server run "
        f"`kkobot-admin devices approve {bot} {device}`",
    )
