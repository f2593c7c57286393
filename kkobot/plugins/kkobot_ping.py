"""`# ping` reports the round-trip time of this phone's last answer to a server ping."""

from __future__ import annotations

from typing import Any

from kkobot.command import command


@command("ping", "서버와 이 폰 사이의 왕복 시간을 알려 줍니다.", aliases=("핑",), examples=("# ping",))
def ping(context: Any) -> str:
    client = context.client
    rtt = getattr(client, "lastRttMillis", None)
    if rtt is None:
        return f"퐁! {context.botName}: 아직 측정된 왕복 시간이 없습니다. 서버 핑 응답을 기다리는 중입니다."
    ago = ""
    if client.lastPingAt is not None:
        ago = f" ({max(0, round(context.now - client.lastPingAt))}초 전 측정)"
    return f"퐁! {context.botName} 왕복 시간 {rtt:g}ms{ago}"
