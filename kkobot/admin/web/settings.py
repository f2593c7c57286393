"""Whether the admin web runs, where, and with which token: from --admin-port and the admin.* keys."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from kkobot import config
from kkobot.endpoints import interfaceOf

DEFAULT_ADMIN_ENDPOINT = "tcp:1499:interface=127.0.0.1"
SHORT_TOKEN = 16
# Host headers always answered (besides the interface the admin web is bound to):
# a page of another site whose name resolves to us (DNS rebinding) sends its own.
DEFAULT_HOSTS = ("localhost", "127.0.0.1", "::1")
GENERATE_TOKEN = ("python3 -c 'import secrets; print(secrets.token_urlsafe(32))' | "
                  "kkobot-config set admin.token -")


class AdminConfigError(Exception):
    """The admin web is asked for but cannot run; the text says how to fix it."""


@dataclass(frozen=True)
class AdminSettings:
    endpoint: str
    token: str
    # admin.allowed_hosts: more names the admin web answers to (see allowedHosts).
    extraHosts: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return (f"AdminSettings(endpoint={self.endpoint!r}, token=<hidden>, "
                f"extraHosts={self.extraHosts!r})")

    @property
    def allowedHosts(self) -> frozenset[str]:
        return allowedHosts(self.endpoint, self.extraHosts)


def normalHost(name: str) -> str:
    """A host name as compared: lower case, no brackets, no trailing dot."""
    return name.strip().lower().strip("[]").rstrip(".")


def allowedHosts(endpoint: str, extra: tuple[str, ...] = ()) -> frozenset[str]:
    """localhost, 127.0.0.1, ::1, the interface of C{endpoint} (unless every one) and C{extra}."""
    hosts = set(DEFAULT_HOSTS)
    interface = normalHost(interfaceOf(endpoint) or "")
    if interface not in ("", "0.0.0.0", "::"):
        hosts.add(interface)
    hosts.update(normalHost(h) for h in extra)
    return frozenset(hosts)


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
            f"the admin web needs admin.token in the config: set a random one with `{GENERATE_TOKEN}`"
        )
    if len(token) < SHORT_TOKEN:
        raise AdminConfigError(
            f"admin.token is {len(token)} characters long; it must have at least {SHORT_TOKEN} "
            f"(it is the only password of the admin web): set a random one with `{GENERATE_TOKEN}`"
        )
    hosts = config.get_dotted(data, "admin.allowed_hosts")
    if hosts is None:
        hosts = []
    if not isinstance(hosts, list) or not all(isinstance(h, str) and h.strip() for h in hosts):
        raise AdminConfigError(
            "admin.allowed_hosts must be a JSON array of host names; fix it with "
            "`kkobot-config set admin.allowed_hosts '[\"kkobot.example.org\"]'`")
    endpoint = adminEndpoint(port) if port is not None else DEFAULT_ADMIN_ENDPOINT
    return AdminSettings(endpoint, token, tuple(hosts))
