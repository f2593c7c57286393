"""A small PyMySQL pool of autocommit connections: one statement, one round trip, no COMMIT."""

from __future__ import annotations

import time
from typing import Any

from twisted.enterprise import adbapi

# A connection unused this long is pinged (and reconnected) before its next call: MySQL
# (wait_timeout) or a firewall may have closed it, and an incr, which is not retried,
# would fail on it.
IDLE_PING_SECONDS = 300.0


class _AutocommitConnection(adbapi.Connection):
    """
    Each statement commits itself, so adbapi's COMMIT after every call is skipped.
    Made in the pool's thread for each call, around that thread's connection.
    """

    def __init__(self, pool: adbapi.ConnectionPool) -> None:
        adbapi.Connection.__init__(self, pool)
        raw = self._connection
        now = time.monotonic()
        last = getattr(raw, "_kkobotLastUsed", None)
        if last is not None and now - last > IDLE_PING_SECONDS:
            try:
                raw.ping(reconnect=False)
            except Exception:
                raw.connect()  # the same connection object, on a new socket
        raw._kkobotLastUsed = now

    def commit(self) -> None:
        pass


class _AutocommitPool(adbapi.ConnectionPool):
    connectionFactory = _AutocommitConnection


def autocommitPool(settings: Any, reactor: Any = None) -> adbapi.ConnectionPool:
    """A small PyMySQL pool in autocommit mode, for single-statement calls."""
    extra: dict[str, Any] = {} if reactor is None else {"cp_reactor": reactor}
    return _AutocommitPool(
        "pymysql", host=settings.host, port=int(settings.port), user=settings.user,
        password=settings.password or "", database=settings.name, charset="utf8mb4",
        autocommit=True, connect_timeout=5, read_timeout=30, write_timeout=30,
        cp_min=1, cp_max=3, cp_reconnect=True, **extra,
    )

