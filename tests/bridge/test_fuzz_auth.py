"""Property-based fuzzing of event auth: any `auth` object, signed or not, is a verdict, never a crash."""

from __future__ import annotations

from typing import Any

from hypothesis import example, given
from hypothesis import strategies as st
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from kkobot.bridge import wire
from kkobot.bridge.auth import SIGNED_FIELDS, HmacAuthenticator
from kkobot.bridge.registry import ClientInfo
from tests.support.fuzzing import FUZZ, jsonLine, jsonScalars, jsonValues
from tests.support import sign

SECRET, SALT = "fuzz-secret", "fuzz-salt"
NOW = 1_795_602_310.0


class ApprovedDevices:
    """Every device approved (the device store's database is not what is fuzzed here)."""

    autoApprove = True

    def status(self, bot: str, device: str | None) -> str:
        return "approved"

    def register(self, *args: Any, **kw: Any) -> defer.Deferred[None]:
        return defer.succeed(None)

    def lookup(self, bot: str, device: str) -> defer.Deferred[str]:
        return defer.succeed("approved")


def authenticator() -> HmacAuthenticator:
    clock = Clock()
    clock.advance(NOW)
    creds = {"kkobot": (SECRET, SALT)}
    return HmacAuthenticator(creds.get, ApprovedDevices(), clock)


def client() -> ClientInfo:
    return ClientInfo(botName="kkobot", version="3.2.0", clientType="MessengerBotR",
                      deviceID="5f3c2a1b9d8e7f60", address="127.0.0.1", connectedSince=NOW)


# Timestamps near and far, in every JSON shape, including ones only a key holder can sign.
TIMESTAMPS = st.one_of(
    st.integers(min_value=int(NOW * 1000) - 10**6, max_value=int(NOW * 1000) + 10**6),
    st.integers(min_value=-(10**400), max_value=10**400),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=25),
    st.sampled_from(["²", "١٢٣", "1795602310517", "-1", "", "unknown"]),
    jsonValues,
)
AUTHS = st.fixed_dictionaries(
    {},
    optional={
        "clientType": st.one_of(st.just("MessengerBotR"), jsonScalars),
        "botName": st.one_of(st.just("kkobot"), jsonScalars),
        "deviceUUID": st.one_of(st.just("5f3c2a1b9d8e7f60"), jsonValues),
        "deviceID": jsonValues,
        "macAddress": jsonScalars,
        "ipAddress": jsonScalars,
        "timestamp": TIMESTAMPS,
        "version": jsonScalars,
        "signature": jsonScalars,
    },
)


class AuthFuzzTests(SynchronousTestCase):
    @FUZZ
    @given(AUTHS, st.booleans())
    @example({"botName": "kkobot", "timestamp": "²"}, True)
    @example({"botName": "kkobot", "timestamp": 10**400}, True)
    @example({"botName": "kkobot", "timestamp": float("inf")}, True)
    def test_anyAuthObjectGetsAVerdict(self, auth: dict[str, Any], signed: bool) -> None:
        """
        Signed correctly (as a key holder could) or not: verifyEvent answers None or a
        reason, and only a fresh, correctly signed timestamp is accepted.
        """
        # As the server sees it: through the wire decoder (which, e.g., mends lone surrogates).
        auth = dict(wire.decode(jsonLine({"event": "ping", "data": {"auth": auth}})).auth)
        if signed:
            fields = {name: auth.get(name) for name in SIGNED_FIELDS}
            fields = {k: ("" if v is None else v) for k, v in fields.items()}
            auth = dict(auth, signature=sign(SECRET, SALT, _asSigned(fields)))
        verdict = authenticator().verifyEvent(client(), auth)
        self.assertTrue(verdict is None or isinstance(verdict, str), verdict)
        if verdict is None:
            stamp = auth.get("timestamp")
            self.assertTrue(signed)
            self.assertIsInstance(stamp, (int, float, str))
            self.assertLessEqual(abs(float(stamp) / 1000 - NOW), 300)

    @FUZZ
    @given(jsonValues)
    def test_anyAuthValue(self, auth: Any) -> None:
        verdict = authenticator().verifyEvent(client(), auth)
        self.assertIsInstance(verdict, str)


def _asSigned(fields: dict[str, Any]) -> dict[str, Any]:
    """The values as the bridge's JavaScript prints them into the signed string."""
    out = {}
    for name, value in fields.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        elif isinstance(value, float) and value.is_integer():
            value = str(int(value))
        out[name] = value
    return out
