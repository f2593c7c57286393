"""The loaded config's sections as typed values: a database's settings, a bot's credentials."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kkobot.config.dotted import get_dotted, joinKey
from kkobot.config.errors import ConfigError, jsonType
from kkobot.config.redaction import is_secret_key

__all__ = ["DBSettings", "db_settings", "bot_credentials"]


@dataclass(frozen=True)
class DBSettings:
    """One `DBs.kkobot_<mode>` section, with defaults filled in."""

    engine: str
    host: str
    port: int
    user: str
    password: str = field(repr=False)
    name: str
    path: str | None = None


def _db_str(section: dict[str, Any], where: str, name: str, default: str) -> str:
    value = section.get(name)
    if value is None:
        return default
    # A hand-edited `"PASSWORD": 1234` means the string; ints convert without loss.
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if not isinstance(value, str):
        raise ConfigError(
            f"{where}.{name} must be a string, not a {jsonType(value)}; "
            f"fix it with `kkobot-config set {where}.{name} "
            f"{'-' if is_secret_key(name) else 'VALUE'}`")
    return value


def db_settings(data: dict[str, Any], mode: str) -> DBSettings:
    """The database settings for mode "test" or "prod" (section DBs.kkobot_<mode>)."""
    if mode not in ("test", "prod"):
        raise ConfigError(f"unknown mode {mode!r}: use 'test' or 'prod'")
    where = f"DBs.kkobot_{mode}"
    section = get_dotted(data, where)
    if section is None:
        raise ConfigError(
            f"no database settings for {mode} mode: set {where} "
            f"(e.g. `kkobot-config set {where}.NAME kkobot_{mode}`)")
    if not isinstance(section, dict):
        raise ConfigError(f"{where} must be an object with HOST, PORT, USER, PASSWORD, NAME; "
                          f"fix it with `kkobot-config edit`")
    engine = _db_str(section, where, "ENGINE", "mysql").strip().lower()
    if engine not in ("mysql", "sqlite"):
        raise ConfigError(f"{where}.ENGINE must be \"mysql\" or \"sqlite\", not {engine!r}")
    port = section.get("PORT")
    if port is None:
        port = 3306
    elif isinstance(port, str) and port.strip().isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise ConfigError(f"{where}.PORT must be a port number (1-65535); "
                          f"fix it with `kkobot-config set {where}.PORT 3306`")
    name = _db_str(section, where, "NAME", "")
    path = section.get("PATH")
    if engine == "mysql":
        if not name:
            raise ConfigError(f"{where}.NAME is not set: `kkobot-config set {where}.NAME "
                              f"kkobot_{mode}`")
        path = None
    else:
        path = _db_str(section, where, "PATH", f"var/kkobot_{mode}.sqlite3")
        name = name or f"kkobot_{mode}"
    return DBSettings(
        engine=engine,
        host=_db_str(section, where, "HOST", "127.0.0.1"),
        port=port,
        user=_db_str(section, where, "USER", "root"),
        password=_db_str(section, where, "PASSWORD", ""),
        name=name,
        path=path,
    )


def bot_credentials(data: dict[str, Any], bot_name: str) -> tuple[str, str] | None:
    """(secret, salt) for a bot: its own entry, else `bots.default`, else None."""
    bots = data.get("bots")
    if bots is None:
        return None
    if not isinstance(bots, dict):
        raise ConfigError("bots must be an object of {name: {secret, salt}}; "
                          "fix it with `kkobot-config edit`")
    label = bot_name if bots.get(bot_name) is not None else "default"
    entry = bots.get(label)
    if entry is None:
        return None
    where = f"bots.{joinKey([label])}"
    if not isinstance(entry, dict):
        raise ConfigError(f"{where} must be an object with secret and salt; "
                          f"fix it with `kkobot-config edit`")
    secret = entry.get("secret")
    salt = entry.get("salt", "")
    if salt is None:
        salt = ""
    if not isinstance(secret, str) or not secret:
        raise ConfigError(f"{where}.secret is not set; `kkobot-config remove-bot {label}` "
                          f"then `kkobot-config add-bot {label}`")
    if not isinstance(salt, str):
        raise ConfigError(f"{where}.salt must be a string; fix it with `kkobot-config edit`")
    return secret, salt
