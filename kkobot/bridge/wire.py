"""The 2.9-3.2 bridge wire format: JSON lines in, typed events out, and back."""

from __future__ import annotations

import json
from typing import Any, Mapping

import orjson

# The events, error codes and JSON parsing every form builds on (wireevents,
# wirejson) are named here too: this is where the other modules find them.
from kkobot.bridge.wireevents import (
    AUTH_FAILED, BAD_ENCODING, BAD_EVENT, BAD_FIELD, BAD_JSON, HANDSHAKE_REQUIRED,
    HANDSHAKE_TIMEOUT, HELLO_CLIPPED_AT, HELLO_REFUSED_PAST, IDLE_TIMEOUT, INTERNAL_ERROR,
    LINE_TOO_LONG, TOO_MANY_CONNECTIONS, UNKNOWN_EVENT, ChatMessage, Event, Hello, Ping, Pong,
    WireError, boundHello,
)
from kkobot.bridge.wirejson import MAX_NESTING, parseObject, tooManyContainers

# Chat text from a bridge is at most 65,000 characters; anything near this is hostile.
DEFAULT_MAX_LINE_BYTES = 1024 * 1024

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


# The parts of a text reply around its text, per (room, channel): one reply after
# another goes to the same few rooms. Bounded; emptied when full.
_TEXT_ENDS_KEPT = 1024
_textEnds: dict[tuple[str, str | None], tuple[bytes, bytes]] = {}


def encodeText(room: str, channelId: str | None, text: str) -> bytes:
    """
    A text `messageResponse`: the bytes L{encode} gives for room, text and
    channel_id, with only the text encoded per reply.
    """
    key = (room, channelId)
    ends = _textEnds.get(key)
    try:
        if ends is None:
            ends = (
                b'{"event":"messageResponse","data":{"room":' + orjson.dumps(room) + b',"text":',
                b',"channel_id":' + orjson.dumps(channelId) + b"}}\n",
            )
            if len(_textEnds) >= _TEXT_ENDS_KEPT:
                _textEnds.clear()
            _textEnds[key] = ends
        return b"".join((ends[0], orjson.dumps(text), ends[1]))
    except orjson.JSONEncodeError:
        # What orjson refuses gets json's answer, as in encode.
        return encode("messageResponse", {"room": room, "text": text, "channel_id": channelId})


def errorLine(code: str, message: str, nowMillis: int) -> bytes:
    return encode("error", {"code": code, "message": message, "timestamp": nowMillis})


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
    obj = parseObject(line)
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
