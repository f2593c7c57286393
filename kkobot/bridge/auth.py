"""Who may talk to the server: the admission decision for a handshake and per-event checks."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Callable, Mapping

from twisted.internet import defer
from twisted.internet.interfaces import IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from kkobot.cluster.fired import resultNow
from kkobot.interfaces import IAuthenticator, IReplayGuard
from kkobot.logs import Logger
from kkobot.bridge.replay import ReplayGuard
from kkobot.bridge.wire import HELLO_REFUSED_PAST, Hello

# ReplayGuard lives in kkobot.bridge.replay; importable from here as before.
__all__ = ["Admission", "HmacAuthenticator", "OpenAuthenticator", "ReplayGuard", "SigningKey",
           "admissionFor", "signature", "signatureMatches", "signedField", "signedText"]

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

# Keyed secrets kept at most (one per configured bot that connected).
MAX_KEYS = 1024

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
    cls = value.__class__
    if cls is str:
        return value
    if cls is int:
        return str(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    # JavaScript prints an integral number without ".0".
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def signedText(auth: Mapping[str, Any], salt: str, clientType: str | None = None) -> str:
    """"clientType|botName|deviceUUID|macAddress|ipAddress|timestamp|salt", as the bridge signs it."""
    get = auth.get
    kind, bot, device = get("clientType"), get("botName"), get("deviceUUID")
    mac, ip, stamp = get("macAddress"), get("ipAddress"), get("timestamp")
    if (
        clientType is None and kind.__class__ is str and bot.__class__ is str
        and device.__class__ is str and mac.__class__ is str and ip.__class__ is str
        and stamp.__class__ is int
    ):
        # What every bridge sends: text fields and a number of milliseconds.
        return f"{kind}|{bot}|{device}|{mac}|{ip}|{stamp}|{salt}"
    parts = [v if v.__class__ is str else signedField(v) for v in map(get, SIGNED_FIELDS)]
    if clientType is not None:
        parts[0] = clientType
    parts.append(salt)
    return "|".join(parts)


# HMAC's pads (RFC 2104), applied to a whole key block with bytes.translate.
_INNER_PAD = bytes(x ^ 0x36 for x in range(256))
_OUTER_PAD = bytes(x ^ 0x5C for x in range(256))


class SigningKey:
    """
    One bot's secret and salt, keyed once: HMAC-SHA256 as RFC 2104 defines it, the
    two padded key blocks hashed at the start, so each signature costs two hash
    copies and the hashing of the signed text, not a fresh key schedule (nor the
    Python layers of L{hmac.HMAC}).
    """

    __slots__ = ("_inner", "_outer", "_salt")

    def __init__(self, secret: str, salt: str) -> None:
        key = secret.encode("utf-8")
        block = hashlib.sha256().block_size
        if len(key) > block:
            key = hashlib.sha256(key).digest()
        key = key.ljust(block, b"\0")
        self._inner = hashlib.sha256(key.translate(_INNER_PAD))
        self._outer = hashlib.sha256(key.translate(_OUTER_PAD))
        self._salt = salt

    def sign(self, auth: Mapping[str, Any], clientType: str | None = None) -> str:
        """hex(HMAC-SHA256(secret, signedText(auth, salt, clientType)))."""
        inner = self._inner.copy()
        inner.update(signedText(auth, self._salt, clientType).encode("utf-8"))
        outer = self._outer.copy()
        outer.update(inner.digest())
        return outer.hexdigest()

    def matches(self, auth: Mapping[str, Any], given: str) -> bool:
        """Constant-time check of C{given} (lower-case hex) against what the bridge signed."""
        if not given.isascii():
            # Cannot match (compare_digest takes ASCII text only); the work is the same.
            given = ""
        get = auth.get
        kind, bot, device = get("clientType"), get("botName"), get("deviceUUID")
        mac, ip, stamp = get("macAddress"), get("ipAddress"), get("timestamp")
        if (
            kind.__class__ is str and bot.__class__ is str and device.__class__ is str
            and mac.__class__ is str and ip.__class__ is str and stamp.__class__ is int
        ):
            # What every bridge sends: sign()'s text and hashing, without its calls.
            inner = self._inner.copy()
            inner.update(f"{kind}|{bot}|{device}|{mac}|{ip}|{stamp}|{self._salt}".encode("utf-8"))
            outer = self._outer.copy()
            outer.update(inner.digest())
            return hmac.compare_digest(outer.hexdigest(), given)
        if kind is not None:
            return hmac.compare_digest(self.sign(auth), given)
        # Older bridges may leave clientType out yet sign the literal: both are
        # computed and compared, with no early exit.
        empty = hmac.compare_digest(self.sign(auth, ""), given)
        return hmac.compare_digest(self.sign(auth, LEGACY_CLIENT_TYPE), given) | empty


def signature(secret: str, salt: str, auth: Mapping[str, Any], clientType: str | None = None) -> str:
    """hex(HMAC-SHA256(secret, "clientType|botName|deviceUUID|macAddress|ipAddress|timestamp|salt"))."""
    return SigningKey(secret, salt).sign(auth, clientType)


def signatureMatches(secret: str, salt: str, auth: Mapping[str, Any], given: str) -> bool:
    """Constant-time check of C{given} against what the bridge signed."""
    return SigningKey(secret, salt).matches(auth, given.lower())


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
        # Each bot's key, keyed once: bot -> (hash of its credentials, key). A changed
        # secret or salt makes a new key; the secret itself is not kept here.
        self._keys: dict[str, tuple[int, SigningKey]] = {}
        self._noKey = SigningKey(_NO_SECRET, "")

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
        checked = self._verify(client, auth)
        if checked.__class__ is str:
            return checked
        assert auth is not None
        # The signature that matched (64 lower-case hex digits) and its time.
        sig, stampSeconds = checked
        if not self.replays.firstUse(sig, client.connectionId, stampSeconds):
            return REPLAYED
        if self.sharedReplays is None:
            return self._deviceCheck(client, auth)
        d = self.sharedReplays.firstUse(sig, client.connectionId, stampSeconds)

        def decided(first: bool) -> str | None:
            return self._deviceCheck(client, auth) if first else REPLAYED

        known, first = resultNow(d)
        return decided(first) if known else d.addCallback(decided)

    def _keyFor(self, bot: str, creds: tuple[str, str] | None) -> SigningKey:
        fingerprint = hash(creds)
        known = self._keys.get(bot)
        if known is not None and known[0] == fingerprint:
            return known[1]
        if creds is None:
            # An unknown bot gets the answer, and costs the time, of a wrong key (a
            # stranger must not learn which bot names the server knows); its name,
            # which strangers choose, is not kept.
            return self._noKey
        if len(self._keys) >= MAX_KEYS:
            self._keys.clear()
        key = SigningKey(*creds)
        self._keys[bot] = (fingerprint, key)
        return key

    def _verify(self, client: Any, auth: Mapping[str, Any] | None) -> str | tuple[str, float]:
        """Why the event is refused, else its signature (lower-case) and timestamp (seconds)."""
        if auth.__class__ is not dict and not isinstance(auth, Mapping):
            return "the event has no auth object: set SECRET_KEY in the bridge script"
        get = auth.get
        sig = get("signature")
        if not isinstance(sig, str) or not sig:
            return "the event is not signed (auth.signature is missing)"
        bot = get("botName")
        if bot != client.botName:
            return (
                f"auth.botName '{str(bot)[:40]}' is not the bot this connection "
                f"introduced ('{client.botName[:40]}')"
            )
        device = get("deviceUUID")
        if client.deviceID is not None and device != client.deviceID:
            # The handshake's deviceID is not signed; the event's deviceUUID is.
            return (
                f"auth.deviceUUID '{str(device)[:40]}' is not the device this connection "
                f"introduced ('{client.deviceID[:40]}')"
            )
        creds = self.credentials(client.botName)
        given = sig.lower()
        known = self._keys.get(bot)
        key = known[1] if known is not None and known[0] == hash(creds) else self._keyFor(bot, creds)
        if not key.matches(auth, given) or creds is None:
            return (
                f"bad signature: the server has no credentials for bot "
                f"'{client.botName[:40]}' (kkobot-config add-bot), or its SECRET_KEY / "
                "BOT_SPECIFIC_SALT differ from the server's, or the event was altered"
            )
        stamp = get("timestamp")
        if stamp.__class__ is not int or not -MAX_TIMESTAMP_MILLIS < stamp < MAX_TIMESTAMP_MILLIS:
            stamp = timestampMillis(stamp)
            if stamp is None:
                return "auth.timestamp is missing or not a number of milliseconds"
        stampSeconds = stamp / 1000.0
        skew = stampSeconds - self.clock.seconds()
        if abs(skew) > self.window:
            direction = "ahead of" if skew > 0 else "behind"
            return (
                f"auth.timestamp is {abs(skew):.0f} s {direction} the server's clock "
                f"(allowed: {self.window:.0f} s); set the phone's clock automatically"
            )
        return given, stampSeconds

    def _deviceCheck(self, client: Any, auth: Mapping[str, Any]) -> str | None:
        if client.deviceStatus is None:
            # The connection's first event to get this far (every later one leaves a
            # status): its device is recorded once per connection.
            if not client.deviceID:
                device = auth.get("deviceUUID") or auth.get("deviceID")
                if isinstance(device, str) and len(device) > MAX_DEVICE_CHARS:
                    return f"auth.deviceUUID is longer than {MAX_DEVICE_CHARS} characters"
                client.deviceID = device if isinstance(device, str) and device else None
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
