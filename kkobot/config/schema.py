"""The config's schema: the keys kkobot knows, their defaults and types, and checking them."""

from __future__ import annotations

import json
from typing import Any

from kkobot.config.dotted import get_dotted, joinKey
from kkobot.config.errors import ConfigError, jsonType

__all__ = ["DEFAULTS", "skeleton", "setting", "validate"]

# Defaults of our own lower-case keys (documented in docs/configuration.md).
# `setting()` falls back to these and checks a configured value against their type;
# `validate()` checks every key listed here, so a new key is one line here (and one
# row in docs/configuration.md).
DEFAULTS: dict[str, Any] = {
    "SERVER.server_ip": "127.0.0.1",
    "auth.required": True,
    "auth.auto_approve": False,
    "auth.window_seconds": 300,
    "auth.max_failures": 10,
    "auth.failure_window": 60,
    "auth.ban_seconds": 300,
    "auth.device_refresh_interval": 2.0,
    "server.max_connections": 5000,
    "server.max_connections_per_address": 100,
    "server.ping_interval": 30,
    "server.max_line_bytes": 1048576,
    "server.handshake_timeout": 30,
    "plugins.dropin_dir": "plugins",
    "chatlog.batch_size": 2000,
    "chatlog.flush_interval": 0.05,
    "log.summary_interval": 60,
    # Several instances behind one Redis (docs/cluster.md); "" means one process, no Redis.
    "cluster.redis": "",
    "cluster.instance": "",
    "cluster.key_prefix": "",
    "cluster.outbound_wait_seconds": 60.0,
    "cluster.heartbeat_interval": 1.0,
    "cluster.instance_timeout": 5.0,
    # Messages for a bot connected nowhere wait this long (then "expired"), this many at most.
    "outbound.wait_seconds": 60.0,
    "outbound.max_queued": 10000,
    # Room approval (kb_rooms) and data retention; 0 days keeps rows for ever.
    "rooms.approval": False,
    "rooms.refresh_interval": 2.0,
    "retention.chat_logs_days": 0,
    "retention.ping_days": 30,
    "retention.schedule_logs_days": 180,
    "retention.interval": 3600.0,
    "retention.batch_size": 1000,
    "retention.batch_pause": 0.2,
}

# Keys under `rooms` that are settings, not channel ids.
ROOM_SETTING_KEYS = frozenset({"approval", "refresh_interval"})

_MISSING: Any = object()


def skeleton() -> dict[str, Any]:
    """The config `init` writes: the original server's shape plus auth and bots."""
    def db(name: str) -> dict[str, Any]:
        return {"HOST": "127.0.0.1", "PORT": 3306, "USER": "kkobot", "PASSWORD": "",
                "NAME": name}

    return {
        "SERVER": {"server_ip": "0.0.0.0"},
        "DBs": {"kkobot_test": db("kkobot_test"), "kkobot_prod": db("kkobot_prod")},
        "auth": {"required": True, "auto_approve": False},
        "bots": {},
    }


def setting(data: dict[str, Any], key: str, default: Any = _MISSING) -> Any:
    """A config value with its default (from DEFAULTS unless given), type-checked.

    A value whose type does not match the default's is a ConfigError: booleans must
    be true/false, numbers must be non-negative numbers, strings must be strings.
    """
    if default is _MISSING:
        if key not in DEFAULTS:
            raise KeyError(f"no default known for {key}; pass one")
        default = DEFAULTS[key]
    value = get_dotted(data, key)
    if value is None:
        return default
    fix = f"fix it with `kkobot-config set {key} {json.dumps(default)}`"
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, not a {jsonType(value)}; {fix}")
    elif isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            raise ConfigError(f"{key} must be a non-negative number; {fix}")
        if isinstance(default, int) and isinstance(value, float) and value.is_integer():
            value = int(value)
        elif isinstance(default, float):
            value = float(value)
    elif isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, not a {jsonType(value)}; {fix}")
    return value


def validate(data: dict[str, Any]) -> None:
    """Check the keys kkobot knows (DEFAULTS) so a typo fails now, not at startup."""
    for key in DEFAULTS:
        setting(data, key)
    # Its default follows ping_interval (3x), so it has no fixed entry in DEFAULTS.
    setting(data, "server.idle_timeout", 0)
    dbs = data.get("DBs")
    if dbs is not None and not isinstance(dbs, dict):
        raise ConfigError("DBs must be an object; fix it with `kkobot-config edit`")
    bots = data.get("bots")
    if bots is not None and not isinstance(bots, dict):
        raise ConfigError("bots must be an object of {name: {secret, salt}}; "
                          "fix it with `kkobot-config edit`")
    # A lone string here would be silently ignored by the permission checks.
    _check_list(data.get("admins"), "admins", '["a1b2c3"]')
    rooms = data.get("rooms")
    if rooms is not None:
        if not isinstance(rooms, dict):
            raise ConfigError("rooms must be an object keyed by channelId; "
                              "fix it with `kkobot-config edit`")
        for room, entry in rooms.items():
            where = f"rooms.{joinKey([str(room)])}"
            if entry is None or room in ROOM_SETTING_KEYS:
                continue
            if not isinstance(entry, dict):
                raise ConfigError(f"{where} must be an object with admins / disabled_commands; "
                                  f"fix it with `kkobot-config edit`")
            _check_list(entry.get("admins"), f"{where}.admins", '["a1b2c3"]')
            _check_list(entry.get("disabled_commands"), f"{where}.disabled_commands",
                        '["echo"]')


def _check_list(value: Any, key: str, example: str) -> None:
    if value is not None and not isinstance(value, list):
        raise ConfigError(f"{key} must be a JSON array; fix it with "
                          f"`kkobot-config set {key} '{example}'`")
