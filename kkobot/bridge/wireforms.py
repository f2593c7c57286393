"""The two forms bridges speak (JSON lines: 2.9-3.2; header + raw: 3.3) and how a connection's is told."""

from __future__ import annotations

import re
from typing import Any, Mapping

from zope.interface import Attribute, Interface, implementer

from kkobot.bridge import wire

from kkobot.bridge import wire33
from kkobot.commands import Reply

MEDIA_URL = "MEDIA_URL:"
IMAGE_BASE64 = "IMAGE_BASE64:"
_MEDIA_PREFIXES = (MEDIA_URL, IMAGE_BASE64)
# How a media reply joins its sources in the 3.2 `text` field.
SOURCE_SEPARATOR = "|||"


class IWireFormat(Interface):
    """One way of writing lines on a bridge connection: both directions, every event."""

    name = Attribute("A short name for logs and the admin page: 'json-lines' or 'header-raw'.")

    def decode(line: bytes) -> wire.Event:
        """One received line as an event; raises L{wire.WireError} for a bad one."""

    def encodeEvent(event: str, data: Mapping[str, Any]) -> bytes:
        """A server line for an event that carries no chat content (handshakeComplete, ping)."""

    def encodeReply(room: str, channelId: str | None, reply: Reply) -> bytes:
        """A `messageResponse` line for one reply, text or media; ValueError if it cannot be written."""

    def encodeError(code: str, message: str, nowMillis: int) -> bytes:
        """An `error` line."""


@implementer(IWireFormat)
class JsonLines:
    """2.9.x-3.2.x: one JSON object per line; replies in `text` (media as prefixed text)."""

    name = "json-lines"
    decode = staticmethod(wire.decode)
    encodeEvent = staticmethod(wire.encode)
    encodeError = staticmethod(wire.errorLine)

    @staticmethod
    def encodeReply(room: str, channelId: str | None, reply: Reply) -> bytes:
        if reply.mediaWaitTime is None:
            return wire.encodeText(room, channelId, reply.text)
        return wire.encode("messageResponse", {
            "room": room, "text": reply.text, "channel_id": channelId,
            "media_wait_time": reply.mediaWaitTime,
        })


@implementer(IWireFormat)
class HeaderRaw:
    """3.3.x: a JSON header, then the content (base64 text, media sources) cut at positions."""

    name = "header-raw"
    decode = staticmethod(wire33.decode)
    encodeEvent = staticmethod(wire33.encodeEvent)
    encodeError = staticmethod(wire33.encodeError)

    @staticmethod
    def encodeReply(room: str, channelId: str | None, reply: Reply) -> bytes:
        text = reply.text
        if not text.startswith(_MEDIA_PREFIXES):
            return wire33.encodeText(room, channelId, text, reply.mediaWaitTime)
        if text.startswith(MEDIA_URL):
            sources, isUrl = text[len(MEDIA_URL):], True
        else:
            sources, isUrl = text[len(IMAGE_BASE64):], False
        return wire33.encodeMedia(
            room, channelId, "image", sources.split(SOURCE_SEPARATOR), isUrl, reply.mediaWaitTime
        )


JSON_LINES = JsonLines()
HEADER_RAW = HeaderRaw()

# Events only 3.3 bridges send, and fields only their lines carry.
_EVENTS_33 = ("message", "pong")
_FIELDS_33 = ("message_positions", "content_encoding")
_VERSION = re.compile(r"\s*(\d+)\.(\d+)")


def _version33(version: Any) -> bool:
    found = _VERSION.match(version) if isinstance(version, str) else None
    return found is not None and (int(found.group(1)), int(found.group(2))) >= (3, 3)


def formOfLine(line: bytes) -> IWireFormat:
    """
    The form one line is written in, before its connection has one: header + raw when
    anything follows the last '}', when it is a `message` or `pong`, carries 3.3 fields,
    or a handshake names version 3.3 or later; JSON lines otherwise (bad lines included).
    """
    if line.endswith(b"\r"):
        line = line[:-1]
    end = line.rfind(b"}") + 1
    if end == 0:
        return JSON_LINES
    if line[end:].strip():
        return HEADER_RAW
    try:
        obj = wire.parseObject(line)
    except wire.WireError:
        return JSON_LINES
    name = obj.get("event")
    if name in _EVENTS_33:
        return HEADER_RAW
    data = obj if name is None else obj.get("data")
    if isinstance(data, dict) and (
        any(field in data for field in _FIELDS_33) or _version33(data.get("version"))
    ):
        return HEADER_RAW
    return JSON_LINES
