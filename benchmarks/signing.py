"""Auth signatures and wire lines exactly as a MessengerBotR 3.2.0 bridge produces them."""

from __future__ import annotations

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
