"""The bridge's events as the server sees them, whatever form they came in, and the error codes it answers with."""

from __future__ import annotations

from typing import Any, Mapping, NamedTuple

# Error codes of the `error` event (short upper-case words, see PROTOCOL.md).
BAD_ENCODING = "BAD_ENCODING"
BAD_JSON = "BAD_JSON"
BAD_EVENT = "BAD_EVENT"
BAD_FIELD = "BAD_FIELD"
UNKNOWN_EVENT = "UNKNOWN_EVENT"
LINE_TOO_LONG = "LINE_TOO_LONG"
HANDSHAKE_REQUIRED = "HANDSHAKE_REQUIRED"
HANDSHAKE_TIMEOUT = "HANDSHAKE_TIMEOUT"
IDLE_TIMEOUT = "IDLE_TIMEOUT"
AUTH_FAILED = "AUTH_FAILED"
TOO_MANY_CONNECTIONS = "TOO_MANY_CONNECTIONS"
INTERNAL_ERROR = "INTERNAL_ERROR"


class WireError(Exception):
    """A line that cannot be accepted; `code` goes into the `error` event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _reprWithoutAuth(event: Any) -> str:
    # auth (signatures, device addresses) stays out of reprs, and so out of logs.
    shown = ", ".join(
        f"{name}={value!r}" for name, value in zip(event._fields, event) if name != "auth"
    )
    return f"{type(event).__name__}({shown})"


# Events are NamedTuples, not frozen dataclasses: as immutable, and built in a third
# of the time (one per line received).
class Hello(NamedTuple):
    """The handshake: who the bridge on the other end is."""

    botName: str
    version: str
    clientType: str = "MessengerBotR"
    deviceID: str | None = None
    deviceIP: str | None = None
    deviceInfo: str | None = None


class ChatMessage(NamedTuple):
    """One `analyze` event: a chat message seen by the phone."""

    room: str
    text: str
    sender: str
    isGroupChat: bool = False
    isMention: bool = False
    channelId: str | None = None
    logId: str | None = None
    userHash: str | None = None
    timestamp: str | None = None
    botName: str | None = None
    clientType: str | None = None
    auth: Mapping[str, Any] | None = None

    __repr__ = _reprWithoutAuth


class Ping(NamedTuple):
    """A `ping` from the client: an answer to ours (with `server_timestamp`) or its own."""

    server_timestamp: int | None = None
    bot_name: str | None = None
    monitoring: Mapping[str, Any] | None = None
    client_status: Mapping[str, Any] | None = None
    is_manual: bool = False
    auth: Mapping[str, Any] | None = None

    __repr__ = _reprWithoutAuth


class Pong(Ping):
    """A 3.3 `pong`: always the answer to one of our pings, never a ping to answer."""

    __slots__ = ()


Event = Hello | ChatMessage | Ping


# Longest handshake fields: generous for every bridge seen, and short enough that a
# stranger's handshake costs nothing to keep, log, show or use as a metric label.
# Names a bridge is known by are refused when longer; descriptions are clipped.
HELLO_REFUSED_PAST = {"botName": 64, "clientType": 50, "deviceID": 128}
HELLO_CLIPPED_AT = {"version": 32, "deviceIP": 64, "deviceInfo": 255}


def boundHello(hello: Hello) -> Hello:
    """C{hello} with its descriptions clipped; L{WireError} when a name is too long."""
    for name, limit in HELLO_REFUSED_PAST.items():
        value = getattr(hello, name)
        if value is not None and len(value) > limit:
            raise WireError(BAD_FIELD, f"field '{name}' is longer than {limit} characters")
    clipped = {
        name: value[:limit]
        for name, limit in HELLO_CLIPPED_AT.items()
        if (value := getattr(hello, name)) is not None and len(value) > limit
    }
    return hello._replace(**clipped) if clipped else hello
