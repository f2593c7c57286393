"""Whether the admin web runs, where, and with which token: from --admin-port and the admin.* keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kkobot import config

DEFAULT_ADMIN_ENDPOINT = "tcp:1499:interface=127.0.0.1"
SHORT_TOKEN = 16


class AdminConfigError(Exception):
    """The admin web is asked for but cannot run; the text says how to fix it."""


@dataclass(frozen=True)
class AdminSettings:
    endpoint: str
    token: str

    def __repr__(self) -> str:
        return f"AdminSettings(endpoint={self.endpoint!r}, token=<hidden>)"


def adminEndpoint(port: Any) -> str:
    """A port number listens on loopback only; an endpoint string is taken as given."""
    text = str(port).strip()
    if text.isdigit():
        return f"tcp:{text}:interface=127.0.0.1"
    return text


def adminSettings(cfg: dict[str, Any] | None, cliPort: str | None) -> AdminSettings | None:
    """None when the admin web is off (neither admin.enabled, admin.port nor --admin-port)."""
    data = cfg or {}
    port = cliPort or config.get_dotted(data, "admin.port")
    enabled = config.get_dotted(data, "admin.enabled")
    if enabled is not None and not isinstance(enabled, bool):
        raise AdminConfigError("admin.enabled must be true or false; fix it with "
                               "`kkobot-config set admin.enabled true`")
    if port is None and not enabled:
        return None
    if port is not None and (isinstance(port, bool) or not isinstance(port, (int, str)) or not str(port).strip()):
        raise AdminConfigError("admin.port must be a port number or a Twisted endpoint string; "
                               "fix it with `kkobot-config set admin.port 1499`")
    token = config.get_dotted(data, "admin.token")
    if not isinstance(token, str) or not token:
        raise AdminConfigError(
            "the admin web needs admin.token in the config: set one with "
            "`kkobot-config set admin.token \"$(python3 -c 'import secrets; print(secrets.token_urlsafe(32))')\"`"
        )
    return AdminSettings(adminEndpoint(port) if port is not None else DEFAULT_ADMIN_ENDPOINT, token)
