"""Auth signatures and wire lines exactly as MessengerBotR 3.2.0 and 3.3.3 bridges produce them."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

CLIENT_TYPE = "MessengerBotR"
DEFAULT_VERSION = "3.2.0"
DEFAULT_IP = "127.0.0.1"
# Android hides the real MAC from apps; every modern phone reports this constant.
DEFAULT_MAC = "02:00:00:00:00:00"
DEFAULT_DEVICE_INFO = "samsung SM-S911N (Android 14, API 34)"


def sign(
    secret: str,
    salt: str,
    clientType: str,  # noqa: N803 - names mirror the wire fields they sign
    botName: str,  # noqa: N803
    deviceUUID: str,  # noqa: N803
    macAddress: str,  # noqa: N803
    ipAddress: str,  # noqa: N803
    timestamp_ms: int,
) -> str:
    """Return the hex HMAC-SHA256 signature of one auth block (PROTOCOL.md, "Auth")."""
    msg = "|".join(
        [clientType, botName, deviceUUID, macAddress, ipAddress, str(timestamp_ms), salt]
    )
    return hmac.new(secret.encode("utf-8"), msg.encode("utf-8"), hashlib.sha256).hexdigest()


def make_auth(
    bot: str,
    device: str,
    secret: str,
    salt: str,
    now_ms: int,
    version: str = DEFAULT_VERSION,
    ip: str = DEFAULT_IP,
) -> dict[str, Any]:
    """Return the `auth` object a 3.2.0 bridge attaches to every event but the handshake."""
    # Key order matters only for byte-exact comparisons with captured lines.
    return {
        "clientType": CLIENT_TYPE,
        "botName": bot,
        "deviceUUID": device,
        "deviceID": device,
        "macAddress": DEFAULT_MAC,
        "ipAddress": ip,
        "timestamp": now_ms,
        "version": version,
        "signature": sign(secret, salt, CLIENT_TYPE, bot, device, DEFAULT_MAC, ip, now_ms),
    }


def encode(obj: dict[str, Any]) -> str:
    """Serialise one wire object as a single line, the way both sides must."""
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")) + "\n"


def hello(
    bot: str,
    device: str,
    version: str = DEFAULT_VERSION,
    ip: str = DEFAULT_IP,
    device_info: str = DEFAULT_DEVICE_INFO,
) -> str:
    """Return the legacy (bare object) handshake line of a 3.2.0 bridge."""
    return encode(
        {
            "clientType": CLIENT_TYPE,
            "botName": bot,
            "version": version,
            "deviceID": device,
            "deviceIP": ip,
            "deviceInfo": device_info,
        }
    )


def local_time(now_ms: int) -> str:
    """Return the phone-style local timestamp (`YYYY-MM-DD HH:MM:SS`, no zone)."""
    return time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now_ms / 1000))


def analyze(
    bot: str,
    device: str,
    secret: str,
    salt: str,
    room: str,
    text: str,
    now_ms: int,
    *,
    sender: str = "홍길동",
    channel_id: str | None = "18398338829933568",
    log_id: str | None = None,
    user_hash: str | None = "a1b2c3",
    is_group_chat: bool = True,
    is_mention: bool = False,
    timestamp: str | None = None,
    version: str = DEFAULT_VERSION,
    ip: str = DEFAULT_IP,
) -> str:
    """Return one `analyze` line as a 3.2.0 bridge sends it for a chat message."""
    return encode(
        {
            "event": "analyze",
            "data": {
                "room": room,
                "text": text,
                "sender": sender,
                "isGroupChat": is_group_chat,
                "channelId": channel_id,
                "logId": log_id,
                "userHash": user_hash,
                "isMention": is_mention,
                "timestamp": timestamp if timestamp is not None else local_time(now_ms),
                "botName": bot,
                "clientType": CLIENT_TYPE,
                "auth": make_auth(bot, device, secret, salt, now_ms, version, ip),
            },
        }
    )


def ping(
    bot: str,
    device: str,
    secret: str,
    salt: str,
    server_timestamp: int | None,
    now_ms: int,
    *,
    monitoring: dict[str, Any] | None = None,
    version: str = DEFAULT_VERSION,
    ip: str = DEFAULT_IP,
) -> str:
    """Return the client `ping` line a 3.2.0 bridge sends in answer to a server ping."""
    if monitoring is None:
        monitoring = {
            "total_memory": 6028,
            "memory_usage": 8,
            "memory_percent": 0.1,
            "message_queue_size": 0,
            "active_rooms": 1,
        }
    return encode(
        {
            "event": "ping",
            "data": {
                "bot_name": bot,
                "server_timestamp": server_timestamp,
                "monitoring": monitoring,
                "auth": make_auth(bot, device, secret, salt, now_ms, version, ip),
            },
        }
    )


# -- 3.3.x: a JSON header, then the content as base64 (PROTOCOL.md, "v3.3.x")

DEFAULT_VERSION_33 = "3.3.3"
DEFAULT_TIMEZONE = "Asia/Seoul"
NO_CONTENT = [0, 0]


def iso_utc(now_ms: int) -> str:
    """Return a 3.3 timestamp: ISO 8601 UTC with milliseconds and `Z`."""
    seconds, ms = divmod(now_ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{ms:03d}Z"


def header_line(event: str, data: dict[str, Any], raw: str = "") -> str:
    """One 3.3 line: the header as JSON.stringify writes it, the raw part, a newline."""
    return json.dumps({"event": event, "data": data}, ensure_ascii=False, separators=(",", ":")) + raw + "\n"


def hello33(
    bot: str,
    device: str,
    now_ms: int,
    version: str = DEFAULT_VERSION_33,
    ip: str = DEFAULT_IP,
    device_info: str = DEFAULT_DEVICE_INFO,
) -> str:
    """Return the wrapped handshake line of a 3.3.x bridge."""
    return header_line("handshake", {
        "clientType": CLIENT_TYPE, "botName": bot, "version": version, "deviceID": device,
        "deviceIP": ip, "deviceInfo": device_info, "timestamp": iso_utc(now_ms),
        "timezone": DEFAULT_TIMEZONE, "message_positions": NO_CONTENT,
    })


def message33(
    bot: str,
    device: str,
    secret: str,
    salt: str,
    room: str,
    text: str,
    now_ms: int,
    *,
    sender: str = "홍길동",
    channel_id: str | None = "18398338829933568",
    log_id: str | None = None,
    user_hash: str | None = "a1b2c3",
    is_group_chat: bool = True,
    is_mention: bool = False,
    timestamp: str | None = None,
    auth_ms: int | None = None,
    version: str = DEFAULT_VERSION_33,
    ip: str = DEFAULT_IP,
) -> str:
    """Return one `message` line as a 3.3.3 bridge sends it: the text as base64 after the header."""
    raw = base64.b64encode(text.encode("utf-8")).decode("ascii")
    return header_line("message", {
        "room": room, "channel_id": channel_id, "message_type": "text",
        "content_encoding": "base64", "message_positions": [0, len(raw)],
        "timestamp": timestamp if timestamp is not None else iso_utc(now_ms),
        "timezone": DEFAULT_TIMEZONE, "sender": sender, "is_group_chat": is_group_chat,
        "log_id": log_id, "user_hash": user_hash, "is_mention": is_mention, "bot_name": bot,
        "client_type": CLIENT_TYPE,
        "auth": make_auth(bot, device, secret, salt, now_ms if auth_ms is None else auth_ms, version, ip),
    }, raw)


def pong33(
    bot: str,
    device: str,
    secret: str,
    salt: str,
    server_timestamp: int | None,
    now_ms: int,
    *,
    monitoring: dict[str, Any] | None = None,
    version: str = DEFAULT_VERSION_33,
    ip: str = DEFAULT_IP,
) -> str:
    """Return the `pong` a 3.3.3 bridge answers a server ping with."""
    if monitoring is None:
        monitoring = {"total_memory": 6028, "memory_usage": 8, "memory_percent": 0.1,
                      "message_queue_size": 0, "active_rooms": 1}
    return header_line("pong", {
        "bot_name": bot, "server_timestamp": server_timestamp, "monitoring": monitoring,
        "auth": make_auth(bot, device, secret, salt, now_ms, version, ip),
        "timestamp": iso_utc(now_ms), "timezone": DEFAULT_TIMEZONE, "message_positions": NO_CONTENT,
    })


def read33(line: bytes) -> tuple[str | None, dict[str, Any]]:
    """
    A server line as a 3.3 bridge reads it: the header up to the last `}`, the raw part
    cut at `message_positions`; a text `messageResponse` gets its decoded text as `text`.
    Raises ValueError for a line such a bridge would drop.
    """
    text = line.decode("utf-8").rstrip("\r\n")
    end = text.rindex("}") + 1
    header = json.loads(text[:end])
    data = header.get("data")
    if not isinstance(data, dict):
        raise ValueError("no data object")
    raw = text[end:]
    positions = data.get("message_positions") or NO_CONTENT
    pieces = [raw[a:b] for a, b in zip(positions, positions[1:])]
    if header.get("event") == "messageResponse" and data.get("message_type") == "text":
        data["text"] = base64.b64decode(pieces[0]).decode("utf-8")
    return header.get("event"), data
