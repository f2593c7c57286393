"""Cluster settings: the Redis address, this instance's name, and the timings, from the config."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote, urlsplit

from kkobot import config

DEFAULT_REDIS_PORT = 6379


class ClusterConfigError(ValueError):
    """A cluster setting is unusable; str() says what is wrong and how to fix it."""


@dataclass(frozen=True)
class RedisAddress:
    """Where Redis is: parsed from a C{redis://} or C{rediss://} URL."""

    host: str
    port: int = DEFAULT_REDIS_PORT
    db: int = 0
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    tls: bool = False

    @classmethod
    def parse(cls, url: str) -> RedisAddress:
        """C{redis://[user:password@]host[:port][/db]}; C{rediss://} for TLS."""
        try:
            parts = urlsplit(url.strip())
            port = parts.port
        except ValueError as e:
            raise ClusterConfigError(f"cluster.redis is not a URL ({e}); e.g. redis://127.0.0.1:6379/0")
        if parts.scheme not in ("redis", "rediss"):
            raise ClusterConfigError(
                "cluster.redis must start with redis:// or rediss://, e.g. redis://127.0.0.1:6379/0"
            )
        if not parts.hostname:
            raise ClusterConfigError("cluster.redis names no host, e.g. redis://127.0.0.1:6379/0")
        path = parts.path.strip("/")
        if path and not path.isdigit():
            raise ClusterConfigError(
                f"cluster.redis database must be a number (redis://host:port/0), not {path!r}"
            )
        return cls(
            host=parts.hostname,
            port=port or DEFAULT_REDIS_PORT,
            db=int(path) if path else 0,
            username=unquote(parts.username) if parts.username else None,
            password=unquote(parts.password) if parts.password is not None else None,
            tls=parts.scheme == "rediss",
        )

    def __repr__(self) -> str:
        return f"RedisAddress({self.display()!r})"

    def display(self) -> str:
        """The URL for logs and status pages: the password never appears."""
        scheme = "rediss" if self.tls else "redis"
        auth = ""
        if self.password is not None:
            auth = f"{self.username or ''}:****@"
        elif self.username:
            auth = f"{self.username}@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{scheme}://{auth}{host}:{self.port}/{self.db}"


def defaultInstanceName(port: str | int | None) -> str:
    """Host name and listening port: unique per machine, stable across restarts."""
    return f"{socket.gethostname()}:{port if port not in (None, '') else 1490}"


@dataclass(frozen=True)
class ClusterSettings:
    """Everything the cluster package is built from (None redis: one process, no Redis)."""

    redis: RedisAddress | None
    instance: str
    keyPrefix: str
    outboundWait: float = 60.0
    heartbeatInterval: float = 1.0
    instanceTimeout: float = 5.0
    replyTimeout: float = 3.0

    @property
    def enabled(self) -> bool:
        return self.redis is not None

    @classmethod
    def fromConfig(
        cls,
        cfg: dict[str, Any] | None,
        port: str | int | None,
        mode: str,
        instance: str | None = None,
    ) -> ClusterSettings:
        """
        Read C{cluster.*}. C{instance} (the command line's C{--instance}) wins over
        C{cluster.instance}; both default to host name and port.
        """

        def get(key: str) -> Any:
            return config.setting(cfg, key) if cfg is not None else config.DEFAULTS[key]

        url = get("cluster.redis")
        redis = RedisAddress.parse(url) if url else None
        name = instance or get("cluster.instance") or defaultInstanceName(_portNumber(port))
        if not name.strip() or any(c.isspace() for c in name) or len(name) > 100:
            raise ClusterConfigError(
                f"instance name {name[:40]!r} must be 1-100 characters without spaces"
            )
        heartbeat = float(get("cluster.heartbeat_interval"))
        timeout = float(get("cluster.instance_timeout"))
        if heartbeat <= 0:
            raise ClusterConfigError("cluster.heartbeat_interval must be above 0")
        if timeout < 2 * heartbeat:
            raise ClusterConfigError(
                f"cluster.instance_timeout ({timeout:g}) must be at least twice "
                f"cluster.heartbeat_interval ({heartbeat:g}), or a live instance looks dead"
            )
        return cls(
            redis=redis,
            instance=name,
            keyPrefix=get("cluster.key_prefix") or f"kkobot:{mode}",
            outboundWait=float(get("cluster.outbound_wait_seconds")),
            heartbeatInterval=heartbeat,
            instanceTimeout=timeout,
        )


def _portNumber(port: str | int | None) -> str | None:
    """The number in C{1490} or C{tcp:1490:interface=...}, for the default name."""
    if port is None:
        return None
    text = str(port)
    if text.isdigit():
        return text
    for piece in text.split(":"):
        if piece.isdigit():
            return piece
    return text
