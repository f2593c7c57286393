"""The deployment for tools outside the server (kkobot-admin): read from Redis, as text."""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

from twisted.internet import defer

from kkobot.cluster.keys import Keys
from kkobot.cluster.link import RedisLink, RedisUnavailable
from kkobot.cluster.presence import InstanceView, readDeployment
from kkobot.cluster.settings import ClusterSettings


async def fetchDeployment(settings: ClusterSettings, reactor: Any, wait: float = 5.0) -> list[InstanceView]:
    """Connect, read every instance and its phones, disconnect; L{RedisUnavailable} if Redis is not there."""
    if settings.redis is None:
        raise RedisUnavailable("cluster.redis is not set: this is a one-process deployment")
    link = RedisLink(settings.redis, reactor, announce=False)
    link.start()
    try:
        up = link.whenUp().addTimeout(wait, reactor)
        try:
            await up
        except defer.TimeoutError:
            raise RedisUnavailable(
                f"Redis {settings.redis.display()} did not answer within {wait:g} s "
                f"({link.lastError or 'no reply'})"
            )
        return await readDeployment(link, Keys(settings.keyPrefix), reactor.seconds(),
                                    settings.instanceTimeout)
    finally:
        await link.stop()


def formatDeployment(views: list[InstanceView], now: float | None = None) -> str:
    """One block per instance: name, state, last heartbeat, then one line per phone."""
    now = time.time() if now is None else now
    if not views:
        return "no instance is registered"
    lines = []
    for view in sorted(views, key=lambda v: v.name):
        state = "alive" if view.alive else "DEAD (no heartbeat)"
        age = max(0.0, now - view.heartbeat)
        lines.append(
            f"{view.name}  {state}  last heartbeat {age:.1f} s ago"
            f"  pid {view.info.get('pid', '?')}  {len(view.connections)} connection(s)"
        )
        for c in sorted(view.connections, key=lambda c: (c.get("bot_name") or "", c.get("connected_since") or 0)):
            since = c.get("connected_since")
            when = datetime.fromtimestamp(since).isoformat(timespec="seconds") if since else "?"
            approved = "approved" if c.get("approved") else "pending"
            lines.append(
                f"    {c.get('bot_name')}  {c.get('device_id') or '-'}  v{c.get('version')}"
                f"  {c.get('address')}  since {when}  {approved}"
            )
    return "\n".join(lines)
