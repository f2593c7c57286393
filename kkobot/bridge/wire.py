"""The MessengerBotR bridge wire format: JSON lines in, typed events out, and back."""

from __future__ import annotations

import json
import re
from itertools import accumulate, count
from operator import sub
from typing import Any, Mapping, NamedTuple

import orjson

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

# Chat text from a bridge is at most 65,000 characters; anything near this is hostile.
DEFAULT_MAX_LINE_BYTES = 1024 * 1024

# No bridge nests more than a few levels. Deeper values are refused: code that later
# walks them (repr, json.dumps, signing) recurses per level and would hit the
# interpreter's recursion limit far from the line that caused it.
MAX_NESTING = 64

# JSON may carry a lone UTF-16 surrogate as an escape ("\ud83d": an emoji cut in
# half by a truncation). Python keeps it in the str, and such a str cannot be
# encoded as UTF-8: not into a reply, not into the database (failing a whole batch).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")

# orjson turns integers beyond 64 bits into floats where json keeps them exact; a
# line with a number token of 19+ digits takes json's path. A number token can only
# follow ':' '[' or ',' (and blanks, a sign), so the 19-digit ids bridges send as
# strings ("logId":"3371984461207437313") stay on the fast path; a string that merely
# looks like that context costs only the slower path, never a different answer.
# (As a regex, [:,\[][ \t\r\n]*-?[0-9]{19}, it cost ~2.5 us a line: every ':' and ','
# starts an attempt. Instead one C translate maps digits to '9', ':' ',' '[' to ':',
# blanks to ' ', and everything else, the quote of a string id included, to 'x';
# then only the runs of 19+ digits, usually one string logId, are looked at.)
_NUMBER_CLASSES = bytes(
    ord("9") if chr(c).isdigit() and c < 128
    else ord(":") if c in b":,["
    else ord(" ") if c in b" \t\r\n"
    else ord("-") if c == ord("-")
    else ord("x")
    for c in range(256)
)
_NINETEEN = b"9" * 19


def _hasLongNumber(line: bytes) -> bool:
    """True when C{line} may hold a number token of 19+ digits (see above; a mix of blanks and signs before the digits also counts)."""
    classes = line.translate(_NUMBER_CLASSES)
    at = classes.find(_NINETEEN)
    while at != -1:
        before = at - 1
        while before >= 0 and classes[before] in b" -":
            before -= 1
        if before >= 0 and classes[before] == 58:  # ':'
            return True
        # The next run of digits, not the rest of this one.
        at = classes.find(_NINETEEN, at + 19)
        while at != -1 and classes[at - 1] == 57:  # '9'
            at = classes.find(_NINETEEN, at + 1)
    return False


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


# Made once: json.dumps with options builds a new encoder on every call.
_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def encode(event: str, data: Mapping[str, Any]) -> bytes:
    """One server line: compact JSON, raw UTF-8, ended by a single newline."""
    obj = {"event": event, "data": data}
    try:
        return orjson.dumps(obj) + b"\n"
    except orjson.JSONEncodeError:
        # What orjson refuses (big ints, lone surrogates, odd keys) gets json's answer.
        return (_dumps(obj) + "\n").encode("utf-8")


def errorLine(code: str, message: str, nowMillis: int) -> bytes:
    return encode("error", {"code": code, "message": message, "timestamp": nowMillis})


# The nesting scan works on bytes at C speed: escaped quotes and backslashes out, the
# strings between the remaining quotes out, then only brackets are kept ({ and [ alike).
_OPENERS_AS_ONE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _structure(line: bytes) -> bytes | None:
    """
    The brackets of C{line} outside its strings, `{` and `[` alike, found at C speed
    without parsing. None when the quotes do not pair up (no JSON). Exact for valid
    JSON; for anything else the parser has the last word.
    """
    if b"\\" in line:
        # Pairs of backslashes first, then escaped quotes: what is left of a run of
        # backslashes is the one that escapes the next character.
        line = line.replace(b"\\\\", b"").replace(b'\\"', b"")
    parts = line.split(b'"')
    if len(parts) % 2 == 0:
        return None
    outside = b"".join(parts[::2]) if len(parts) > 1 else line
    return outside.translate(_OPENERS_AS_ONE, _NOT_BRACKETS)


def _depth(brackets: bytes) -> int:
    """How deep a bracket sequence nests: a megabyte of `[],[],...` costs milliseconds."""
    if not brackets:
        return 0
    # One pass drops every innermost pair: flat data (lists of empty lists) is gone.
    brackets = brackets.replace(b"[]", b"")
    if not brackets:
        return 1
    # The depth after each run of openers: openers so far minus the closers before.
    runs = brackets.split(b"]")
    return 1 + max(map(sub, accumulate(map(len, runs)), count()))


def tooManyContainers(line: bytes, limit: int) -> bool:
    """
    True when C{line} holds more than C{limit} lists and objects (outside strings),
    counted without parsing: what a connection that has proved nothing yet may send
    is held to the few containers of a handshake, a message or a ping.
    """
    if line.count(b"[") + line.count(b"{") <= limit:
        return False
    brackets = _structure(line)
    return brackets is None or brackets.count(b"[") > limit


def _parseObject(line: bytes) -> dict[str, Any]:
    if line.endswith(b"\r"):
        line = line[:-1]
    # Nesting is refused before any parsing; only a line with more brackets than
    # levels allowed can nest too deep, so the scan is skipped for bridge lines.
    if line.count(b"[") + line.count(b"{") > MAX_NESTING:
        brackets = _structure(line)
        if brackets is None:
            raise WireError(BAD_JSON, "not valid JSON: a string is not terminated")
        if _depth(brackets) > MAX_NESTING:
            raise WireError(BAD_JSON, f"JSON nested deeper than {MAX_NESTING} levels")
    # orjson first (the same objects as json.loads, several times faster); every
    # line it refuses (bad UTF-8, NaN, lone surrogates, ...) or might read
    # differently (huge integers) goes the json way below, so the answers and
    # error codes are json's.
    if not _hasLongNumber(line):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
        else:
            if type(obj) is dict:
                return obj
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WireError(BAD_ENCODING, f"line is not valid UTF-8 (byte {e.start})")
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise WireError(BAD_JSON, f"not valid JSON: {e}")
    if not isinstance(obj, dict):
        raise WireError(BAD_JSON, "a line must be a JSON object")
    if _SURROGATE_ESCAPE.search(text):
        obj = _replaceSurrogates(obj)
    return obj


# The header of a 3.3 line is parsed the same way (kkobot/bridge/wire33.py).
parseObject = _parseObject


def _replaceSurrogates(value: Any) -> Any:
    """Lone surrogates become U+FFFD (pairs were already joined by json.loads)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replaceSurrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replaceSurrogates(k): _replaceSurrogates(v) for k, v in value.items()}
    return value


def _str(data: Mapping[str, Any], name: str, required: bool = False) -> str | None:
    value = data.get(name)
    if type(value) is str:
        return value
    if value is None:
        if required:
            raise WireError(BAD_FIELD, f"missing field '{name}'")
        return None
    # Some bridges send numeric ids as numbers; the string form is what we store.
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise WireError(BAD_FIELD, f"field '{name}' must be a string")
    return value if isinstance(value, str) else str(value)


def _bool(data: Mapping[str, Any], name: str) -> bool:
    value = data.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise WireError(BAD_FIELD, f"field '{name}' must be a boolean")


def _obj(data: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    value = data.get(name)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise WireError(BAD_FIELD, f"field '{name}' must be an object")
    return value


def _int(data: Mapping[str, Any], name: str) -> int | None:
    value = data.get(name)
    if value is None:
        return None
    if isinstance(value, bool):
        raise WireError(BAD_FIELD, f"field '{name}' must be a number")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, int):
        return value
    # isdigit() alone also admits digits like "²" that int() rejects.
    if isinstance(value, str) and value.isascii() and value.isdigit() and len(value) < 20:
        return int(value)
    raise WireError(BAD_FIELD, f"field '{name}' must be a number")


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


def parseHello(data: Mapping[str, Any]) -> Hello:
    """The handshake fields, in any of the bridge generations' forms."""
    return Hello(
        botName=_str(data, "botName", required=True) or "",
        version=_str(data, "version", required=True) or "",
        clientType=_str(data, "clientType") or "MessengerBotR",
        deviceID=_str(data, "deviceID"),
        deviceIP=_str(data, "deviceIP"),
        deviceInfo=_str(data, "deviceInfo"),
    )


_TEXT = (str, type(None))
_FLAG = (bool, type(None))


def parseChatMessage(data: Mapping[str, Any]) -> ChatMessage:
    get = data.get
    room, text, sender = get("room"), get("text"), get("sender")
    channelId, logId, userHash = get("channelId"), get("logId"), get("userHash")
    timestamp, botName, clientType = get("timestamp"), get("botName"), get("clientType")
    isGroupChat, isMention, auth = get("isGroupChat"), get("isMention"), get("auth")
    # What bridges send: text as strings, flags as booleans, built without a call
    # per field. Anything else (numeric ids, "true", a missing room) is checked
    # field by field below, with the same answers.
    if (
        type(room) is str and type(text) is str and type(sender) in _TEXT
        and type(channelId) in _TEXT and type(logId) in _TEXT and type(userHash) in _TEXT
        and type(timestamp) in _TEXT and type(botName) in _TEXT and type(clientType) in _TEXT
        and type(isGroupChat) in _FLAG and type(isMention) in _FLAG
        and (auth is None or type(auth) is dict)
    ):
        return ChatMessage(
            room, text, sender or "", isGroupChat is True, isMention is True,
            channelId, logId, userHash, timestamp, botName, clientType, auth,
        )
    return _checkedChatMessage(data)


def _checkedChatMessage(data: Mapping[str, Any]) -> ChatMessage:
    return ChatMessage(
        room=_str(data, "room", required=True) or "",
        text=_str(data, "text", required=True) or "",
        sender=_str(data, "sender") or "",
        isGroupChat=_bool(data, "isGroupChat"),
        isMention=_bool(data, "isMention"),
        channelId=_str(data, "channelId"),
        logId=_str(data, "logId"),
        userHash=_str(data, "userHash"),
        timestamp=_str(data, "timestamp"),
        botName=_str(data, "botName"),
        clientType=_str(data, "clientType"),
        auth=_obj(data, "auth"),
    )


def parsePing(data: Mapping[str, Any]) -> Ping:
    return Ping(
        server_timestamp=_int(data, "server_timestamp"),
        bot_name=_str(data, "bot_name"),
        monitoring=_obj(data, "monitoring"),
        client_status=_obj(data, "client_status"),
        is_manual=_bool(data, "is_manual"),
        auth=_obj(data, "auth"),
    )


_PARSERS = {"handshake": parseHello, "analyze": parseChatMessage, "ping": parsePing}


def decode(line: bytes) -> Event:
    """
    Turn one received line into an event, or raise L{WireError}.

    A bare object with no `event` key is the legacy handshake of 2.9.x-3.2.x bridges.
    Unknown extra fields are ignored, as PROTOCOL.md asks.
    """
    obj = _parseObject(line)
    name = obj.get("event")
    if name is None:
        if "botName" in obj or "version" in obj:
            return parseHello(obj)
        raise WireError(BAD_EVENT, "missing field 'event'")
    if not isinstance(name, str):
        raise WireError(BAD_EVENT, "field 'event' must be a string")
    parser = _PARSERS.get(name)
    if parser is None:
        raise WireError(UNKNOWN_EVENT, f"unknown event '{name[:40]}'")
    data = obj.get("data")
    if not isinstance(data, dict):
        raise WireError(BAD_EVENT, f"'{name}' needs an object in 'data'")
    return parser(data)
