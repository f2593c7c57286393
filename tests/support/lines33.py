"""3.3 bridge lines for tests: built as a 3.3.3 bridge builds them, and server lines read as it reads them."""

from __future__ import annotations

import base64
import json
import re
from typing import Any

from tests.support import AUTH

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")

HELLO_333 = {
    "clientType": "MessengerBotR", "botName": "kkobot", "version": "3.3.3",
    "deviceID": "5f3c2a1b9d8e7f60", "deviceIP": "127.0.0.1",
    "deviceInfo": "samsung SM-S911N (Android 14, API 34)",
    "timestamp": "2026-12-02T19:43:32.858Z", "timezone": "Asia/Seoul",
    "message_positions": [0, 0],
}
AUTH_333 = dict(AUTH, version="3.3.3", timestamp=1796240613166)

# The three lines of PROTOCOL.md ("Lines exactly as a 3.3.3 bridge sends them"), byte
# for byte; the signature is shortened and the pong's auth filled in.
BRIDGE_LINES_333 = (
    '{"event":"handshake","data":{"clientType":"MessengerBotR","botName":"kkobot","version":"3.3.3","deviceID":"5f3c2a1b9d8e7f60","deviceIP":"127.0.0.1","deviceInfo":"samsung SM-S911N (Android 14, API 34)","timestamp":"2026-12-02T19:43:32.858Z","timezone":"Asia/Seoul","message_positions":[0,0]}}\n'
    '{"event":"message","data":{"room":"테스트방","channel_id":"18398338829933568","message_type":"text","content_encoding":"base64","message_positions":[0,32],"timestamp":"2026-12-02T19:43:33.221Z","timezone":"Asia/Seoul","sender":"홍길동","is_group_chat":true,"log_id":"3371984461207437313","user_hash":"a1b2c3","is_mention":false,"bot_name":"kkobot","client_type":"MessengerBotR","auth":{"clientType":"MessengerBotR","botName":"kkobot","deviceUUID":"5f3c2a1b9d8e7f60","deviceID":"5f3c2a1b9d8e7f60","macAddress":"02:00:00:00:00:00","ipAddress":"127.0.0.1","timestamp":1796240613166,"version":"3.3.3","signature":"00"}}}IyBlY2hvIOyViOuFle2VmOyEuOyalA==\n'
    '{"event":"pong","data":{"bot_name":"kkobot","server_timestamp":1796240613869,"monitoring":{"total_memory":6028,"memory_usage":8,"memory_percent":0.1,"message_queue_size":0,"active_rooms":1},"auth":{"clientType":"MessengerBotR","botName":"kkobot","deviceUUID":"5f3c2a1b9d8e7f60","deviceID":"5f3c2a1b9d8e7f60","macAddress":"02:00:00:00:00:00","ipAddress":"127.0.0.1","timestamp":1796240613878,"version":"3.3.3","signature":"00"},"timestamp":"2026-12-02T19:43:33.878Z","timezone":"Asia/Seoul","message_positions":[0,0]}}\n'
).encode("utf-8")


def line33(event: str, data: dict[str, Any], raw: bytes = b"") -> bytes:
    """One 3.3 line: the header as the bridge writes it (JSON.stringify), RAW, newline."""
    header = json.dumps({"event": event, "data": data}, ensure_ascii=False, separators=(",", ":"))
    # JSON.stringify escapes a lone surrogate; the rest stays raw UTF-8.
    header = _LONE_SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", header)
    return header.encode("utf-8") + raw + b"\n"


def handshake33(**changes: Any) -> bytes:
    return line33("handshake", dict(HELLO_333, **changes))


def message33(
    text: str,
    room: str = "테스트방",
    channelId: str | None = "18398338829933568",
    userHash: str | None = "a1b2c3",
    auth: dict[str, Any] | None = None,
    timestamp: str = "2026-12-02T19:43:33.221Z",
    timezone: str | None = "Asia/Seoul",
    **extra: Any,
) -> bytes:
    """A `message` line as a 3.3.3 bridge sends it: the text as base64 in RAW."""
    raw = base64.b64encode(text.encode("utf-8"))
    data: dict[str, Any] = {
        "room": room, "channel_id": channelId, "message_type": "text",
        "content_encoding": "base64", "message_positions": [0, len(raw)],
        "timestamp": timestamp, "timezone": timezone, "sender": "홍길동",
        "is_group_chat": True, "log_id": "3371984461207437313", "user_hash": userHash,
        "is_mention": False, "bot_name": "kkobot", "client_type": "MessengerBotR",
    }
    if auth is not None:
        data["auth"] = auth
    data.update(extra)
    return line33("message", data, raw)


def pong33(serverTimestamp: int | None, event: str = "pong", **extra: Any) -> bytes:
    """The answer to a server ping: `pong` (3.3.3) or `ping` (3.3.2), both in 3.3 form."""
    data: dict[str, Any] = {
        "bot_name": "kkobot", "server_timestamp": serverTimestamp,
        "monitoring": {"total_memory": 6028, "memory_usage": 8, "memory_percent": 0.1,
                       "message_queue_size": 0, "active_rooms": 1},
        "timestamp": "2026-12-02T19:43:33.878Z", "timezone": "Asia/Seoul",
        "message_positions": [0, 0],
    }
    data.update(extra)
    return line33(event, data)


class ServerLine33:
    """One server line read as a 3.3 bridge reads it: header up to the last '}', RAW cut at positions."""

    def __init__(self, raw: bytes) -> None:
        text = raw.decode("utf-8")
        end = text.rindex("}") + 1
        header = json.loads(text[:end])
        self.event: str = header["event"]
        self.data: dict[str, Any] = header["data"]
        assert isinstance(self.data, dict), header
        self.raw = text[end:]
        positions = self.data.get("message_positions")
        assert positions is not None, header
        self.pieces = [self.raw[a:b] for a, b in zip(positions, positions[1:])]
        assert positions[-1] == len(self.raw), (positions, self.raw)

    @property
    def text(self) -> str:
        """What `bot.send(room, ...)` posts for a text messageResponse."""
        assert self.data["message_type"] == "text" and self.data["content_encoding"] == "base64"
        [piece] = self.pieces
        return base64.b64decode(piece, validate=True).decode("utf-8")

    def __repr__(self) -> str:
        return f"ServerLine33({self.event!r}, {self.data!r}, {self.raw[:40]!r})"


def readServerLines33(data: bytes) -> list[ServerLine33]:
    assert data == b"" or data.endswith(b"\n"), data
    return [ServerLine33(raw) for raw in data.split(b"\n")[:-1]]
