"""The v3.3 bridge line: a JSON header, then raw base64 content cut at `message_positions`, both ways."""

from __future__ import annotations

import binascii
import json
from datetime import datetime, timezone, tzinfo
from typing import Any, Mapping
from urllib.parse import quote, urlsplit, urlunsplit
from zoneinfo import ZoneInfo

import orjson

from kkobot.bridge import wire
from kkobot.bridge.wire import (
    BAD_ENCODING, BAD_EVENT, BAD_FIELD, BAD_JSON, UNKNOWN_EVENT, ChatMessage, Event, Pong,
    WireError,
)

# The raw part is not what it must be: not base64, a '}' inside it (the client finds
# the header's end with lastIndexOf('}')), or content on an event that carries none.
BAD_CONTENT = "BAD_CONTENT"

# A phone that names no zone, or one zoneinfo does not know, is taken to be in Korea:
# every MessengerBotR phone kkobot serves is, and 3.3.x bridges send "Asia/Seoul".
DEFAULT_TIMEZONE = "Asia/Seoul"
CLIENT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_UTC = timezone.utc
_NO_CONTENT = [0, 0]

# Zones by name, bounded: a client inventing a new zone name per line must not grow it.
_ZONES_KEPT = 64
_zones: dict[str, tzinfo] = {}


def zoneNamed(name: str | None) -> tzinfo:
    """The zone a 3.3 line names; L{DEFAULT_TIMEZONE} for a missing or unknown one."""
    if not name:
        name = DEFAULT_TIMEZONE
    zone = _zones.get(name)
    if zone is None:
        try:
            zone = ZoneInfo(name)
        except Exception:
            # zoneinfo answers odd keys with several exception types (not found, not
            # a file, a NUL, a path outside the database); all mean "unknown".
            zone = ZoneInfo(DEFAULT_TIMEZONE)
        if len(_zones) < _ZONES_KEPT:
            _zones[name] = zone
    return zone


# The last conversion (to the second): lines in a burst share their second and zone.
_lastLocal: list[Any] = ["", None, None]


def localTime(stamp: str | None, zoneName: str | None) -> str | None:
    """
    A 3.3 C{timestamp} (ISO 8601 UTC, e.g. C{2026-12-02T19:43:33.221Z}) as the phone's
    wall clock in C{zoneName}, C{YYYY-MM-DD HH:MM:SS}: what a 3.2 phone sends as its
    local time. A time without a zone is already wall-clock time and kept as it is;
    one that cannot be read is None (stored as NULL, like a malformed 3.2 time).
    """
    if not stamp:
        return None
    canonical = len(stamp) == 24 and stamp[10] == "T" and stamp[19] == "." and stamp[23] == "Z"
    if canonical:
        last = _lastLocal
        if (
            stamp[:19] == last[0] and zoneName == last[1]
            and stamp.isascii() and stamp[20:23].isdigit()
        ):
            return last[2]
    try:
        when = datetime.fromisoformat(stamp)
        if when.tzinfo is None:
            return when.strftime(CLIENT_TIME_FORMAT)
        text = when.astimezone(zoneNamed(zoneName)).strftime(CLIENT_TIME_FORMAT)
    except (ValueError, OverflowError):
        return None
    if canonical:
        _lastLocal[0], _lastLocal[1], _lastLocal[2] = stamp[:19], zoneName, text
    return text


def _pieces(positions: Any, raw: bytes, count: int | None) -> list[bytes]:
    """RAW cut at C{positions}; WireError unless they are ints from 0, ascending, ending at its end."""
    if positions is None:
        if raw or count is not None:
            raise WireError(BAD_FIELD, "missing field 'message_positions'")
        return []
    if type(positions) is not list or len(positions) < 2:
        raise WireError(BAD_FIELD, "'message_positions' must be a list of at least two numbers")
    for at in positions:
        if type(at) is not int:
            raise WireError(BAD_FIELD, "'message_positions' must hold integers")
    if positions[0] != 0:
        raise WireError(BAD_FIELD, "'message_positions' must start at 0")
    for before, after in zip(positions, positions[1:]):
        if after < before:
            raise WireError(BAD_FIELD, "'message_positions' must be ascending")
    if positions[-1] != len(raw):
        raise WireError(
            BAD_FIELD,
            f"'message_positions' end at {positions[-1]}, the raw content has {len(raw)} bytes",
        )
    if count is not None and len(positions) != count + 1:
        raise WireError(BAD_FIELD, f"'message_positions' must cut {count} piece(s)")
    return [raw[a:b] for a, b in zip(positions, positions[1:])]


_TEXT = (str, type(None))
_FLAG = (bool, type(None))


def parseMessage(data: Mapping[str, Any], raw: bytes) -> ChatMessage:
    """A `message`: `analyze` with snake_case fields and its text in the raw part."""
    get = data.get
    positions = get("message_positions")
    encoding, kind = get("content_encoding"), get("message_type")
    # As bridges send it: one piece covering all of RAW, base64 text. Anything else
    # is checked field by field, and refused with its reason.
    if not (
        type(positions) is list and len(positions) == 2
        and positions[0] == 0 and type(positions[0]) is int
        and positions[1] == len(raw) and type(positions[1]) is int
        and (encoding == "base64" or encoding is None)
        and (kind == "text" or kind is None)
    ):
        _checkMessageForm(positions, raw, encoding, kind)
    try:
        text = binascii.a2b_base64(raw, strict_mode=True).decode("utf-8")
    except binascii.Error as e:
        raise WireError(BAD_CONTENT, f"the raw content is not base64 ({e})")
    except UnicodeDecodeError as e:
        raise WireError(BAD_ENCODING, f"the decoded text is not valid UTF-8 (byte {e.start})")
    room, sender = get("room"), get("sender")
    channelId, logId, userHash = get("channel_id"), get("log_id"), get("user_hash")
    botName, clientType = get("bot_name"), get("client_type")
    isGroupChat, isMention, auth = get("is_group_chat"), get("is_mention"), get("auth")
    stamp, zoneName = get("timestamp"), get("timezone")
    if not (
        type(room) is str and type(sender) in _TEXT
        and type(channelId) in _TEXT and type(logId) in _TEXT and type(userHash) in _TEXT
        and type(botName) in _TEXT and type(clientType) in _TEXT
        and type(isGroupChat) in _FLAG and type(isMention) in _FLAG
        and (auth is None or type(auth) is dict)
        and type(stamp) in _TEXT and type(zoneName) in _TEXT
    ):
        return _checkedMessage(data, text)
    # localTime's own shortcut, without the call: a line of the second before.
    last = _lastLocal
    if (
        stamp is not None and stamp[:19] == last[0] and zoneName == last[1]
        and len(stamp) == 24 and stamp[19] == "." and stamp[23] == "Z"
        and stamp.isascii() and stamp[20:23].isdigit()
    ):
        local = last[2]
    else:
        local = localTime(stamp, zoneName)
    return ChatMessage(
        room, text, sender or "", isGroupChat is True, isMention is True,
        channelId, logId, userHash, local, botName, clientType, auth,
    )


def _checkMessageForm(positions: Any, raw: bytes, encoding: Any, kind: Any) -> None:
    """Raise the reason a message's positions, encoding or type are not what bridges send."""
    _pieces(positions, raw, 1)
    if encoding is not None and encoding != "base64":
        raise WireError(BAD_FIELD, "'content_encoding' must be \"base64\"")
    if kind is not None and kind != "text":
        raise WireError(BAD_FIELD, "'message_type' of a client message must be \"text\"")


def _checkedMessage(data: Mapping[str, Any], text: str) -> ChatMessage:
    zoneName = data.get("timezone")
    if zoneName is not None and type(zoneName) is not str:
        raise WireError(BAD_FIELD, "field 'timezone' must be a string")
    return ChatMessage(
        room=wire._str(data, "room", required=True) or "",
        text=text,
        sender=wire._str(data, "sender") or "",
        isGroupChat=wire._bool(data, "is_group_chat"),
        isMention=wire._bool(data, "is_mention"),
        channelId=wire._str(data, "channel_id"),
        logId=wire._str(data, "log_id"),
        userHash=wire._str(data, "user_hash"),
        timestamp=localTime(wire._str(data, "timestamp"), zoneName),
        botName=wire._str(data, "bot_name"),
        clientType=wire._str(data, "client_type"),
        auth=wire._obj(data, "auth"),
    )


def parsePong(data: Mapping[str, Any]) -> Pong:
    return Pong(*wire.parsePing(data))


# Events that carry nothing in the raw part.
_PARSERS = {"handshake": wire.parseHello, "pong": parsePong, "ping": wire.parsePing}


def _explainBraceInRaw(line: bytes) -> None:
    """A header that only fails because RAW holds a '}' gets that answer instead."""
    try:
        text = line.decode("utf-8")
        header, end = json.JSONDecoder().raw_decode(text)
    except (ValueError, RecursionError):
        return
    if isinstance(header, dict) and "}" in text[end:]:
        raise WireError(BAD_CONTENT, "the raw content must not contain '}'")


def decode(line: bytes) -> Event:
    """
    Turn one 3.3 line into an event, or raise L{WireError}.

    A `message` becomes a L{ChatMessage} (text decoded, time converted to the phone's
    wall clock), a `pong` a L{Pong}; `handshake` and `ping` are read like 3.2's.
    """
    if line.endswith(b"\r"):
        line = line[:-1]
    end = line.rfind(b"}") + 1
    if end == 0:
        raise WireError(BAD_JSON, "a line must start with a JSON object")
    raw = line[end:]
    try:
        obj = wire.parseObject(line[:end] if raw else line)
    except WireError:
        _explainBraceInRaw(line)
        raise
    name = obj.get("event")
    if name == "message":
        data = obj.get("data")
        if type(data) is not dict:
            raise WireError(BAD_EVENT, "'message' needs an object in 'data'")
        return parseMessage(data, raw)
    if name is None:
        # The legacy bare handshake, should a 3.3 bridge ever send one.
        if "botName" in obj or "version" in obj:
            _pieces(obj.get("message_positions"), raw, None)
            if raw:
                raise WireError(BAD_CONTENT, "a handshake carries no raw content")
            return wire.parseHello(obj)
        raise WireError(BAD_EVENT, "missing field 'event'")
    if not isinstance(name, str):
        raise WireError(BAD_EVENT, "field 'event' must be a string")
    data = obj.get("data")
    parser = _PARSERS.get(name)
    if parser is None:
        raise WireError(UNKNOWN_EVENT, f"unknown event '{name[:40]}'")
    if not isinstance(data, dict):
        raise WireError(BAD_EVENT, f"'{name}' needs an object in 'data'")
    _pieces(data.get("message_positions"), raw, None)
    if raw:
        raise WireError(BAD_CONTENT, f"'{name}' carries no raw content")
    return parser(data)


# -- server lines

_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def _header(event: str, data: Mapping[str, Any]) -> bytes:
    obj = {"event": event, "data": data}
    try:
        return orjson.dumps(obj)
    except orjson.JSONEncodeError:
        # What orjson refuses (big ints, lone surrogates, odd keys) gets json's answer.
        return _dumps(obj).encode("utf-8", "replace")


def line(event: str, data: Mapping[str, Any], pieces: list[bytes] | tuple[bytes, ...] = ()) -> bytes:
    """One 3.3 server line: the header with C{message_positions} for C{pieces}, then RAW."""
    positions = [0]
    for piece in pieces:
        positions.append(positions[-1] + len(piece))
    if len(positions) == 1:
        positions = _NO_CONTENT
    return _header(event, {**data, "message_positions": positions}) + b"".join(pieces) + b"\n"


def encodeEvent(event: str, data: Mapping[str, Any]) -> bytes:
    """An event with no content (handshakeComplete, ping): the header and `[0,0]`."""
    return _header(event, {**data, "message_positions": _NO_CONTENT}) + b"\n"


def isoTime(millis: int) -> str:
    """Epoch milliseconds as 3.3 lines give time: ISO 8601 UTC with milliseconds and Z."""
    seconds, ms = divmod(millis, 1000)
    return datetime.fromtimestamp(seconds, _UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{ms:03d}Z"


def encodeError(code: str, message: str, nowMillis: int) -> bytes:
    return encodeEvent(
        "error",
        {"code": code, "message": message, "timestamp": isoTime(nowMillis), "timezone": "UTC"},
    )


# The header of a text reply up to its length, per (room, channel): one reply after
# another goes to the same few rooms. Bounded; emptied when full.
_TEXT_HEADS_KEPT = 1024
_textHeads: dict[tuple[str, str | None], bytes] = {}


def encodeText(room: str, channelId: str | None, text: str, mediaWaitTime: int | None = None) -> bytes:
    """A text `messageResponse`: the text as base64 in RAW."""
    raw = binascii.b2a_base64(text.encode("utf-8", "replace"), newline=False)
    if mediaWaitTime is not None:
        return _header("messageResponse", {
            "room": room, "channel_id": channelId, "message_type": "text",
            "content_encoding": "base64", "media_wait_time": mediaWaitTime,
            "message_positions": [0, len(raw)],
        }) + raw + b"\n"
    head = _textHeads.get((room, channelId))
    if head is None:
        whole = _header("messageResponse", {
            "room": room, "channel_id": channelId, "message_type": "text",
            "content_encoding": "base64", "message_positions": [0, 0],
        })
        head = whole[: -len(b"0]}}")]  # ends with `"message_positions":[0,`
        if len(_textHeads) >= _TEXT_HEADS_KEPT:
            _textHeads.clear()
        _textHeads[(room, channelId)] = head
    return b"%s%d]}}%s\n" % (head, len(raw), raw)


# Printable ASCII but '}' (which would end the header for the client) and the space:
# URLs keep their meaning (percent-encoding is how a URL says those characters) and
# RAW stays ASCII, so positions count bytes and characters alike.
_URL_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) != "}")
_BASE64_ALPHABET = frozenset(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=")


def _asciiHost(url: str) -> str:
    """An internationalised host name in its IDNA form, as HTTP clients look it up."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return url
    if parts.netloc.isascii():
        return url
    userinfo, at, hostport = parts.netloc.rpartition("@")
    host, colon, port = hostport.partition(":")
    try:
        host = host.encode("idna").decode("ascii")
    except UnicodeError:
        return url  # percent-encoded below, like the rest
    return urlunsplit(parts._replace(netloc=userinfo + at + host + colon + port))


def mediaSource(source: str, isUrl: bool) -> bytes:
    """One media source as it goes into RAW; ValueError for a payload that is not base64."""
    if isUrl:
        if not source.isascii():
            source = _asciiHost(source)
        return quote(source.encode("utf-8", "surrogatepass"), safe=_URL_SAFE).encode("ascii")
    # Base64 as some encoders write it, in lines: the breaks are not part of the data.
    payload = "".join(source.split()).encode("utf-8", "replace")
    if not _BASE64_ALPHABET.issuperset(payload):
        raise ValueError("a media payload is not base64")
    return payload


def encodeMedia(
    room: str,
    channelId: str | None,
    kind: str,
    sources: list[str],
    isUrl: bool,
    mediaWaitTime: int | None = None,
) -> bytes:
    """A media `messageResponse`: C{message_type} C{kind}, the sources one piece each in RAW."""
    data: dict[str, Any] = {"room": room, "channel_id": channelId, "message_type": kind}
    if mediaWaitTime is not None:
        data["media_wait_time"] = mediaWaitTime
    return line("messageResponse", data, [mediaSource(s, isUrl) for s in sources])
