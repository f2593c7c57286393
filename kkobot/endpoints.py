"""Where a Twisted server endpoint string listens: its interface, and whether only this machine can reach it."""

from __future__ import annotations

import ipaddress

# Where `interface` sits among each endpoint type's positional arguments.
_INTERFACE_POSITION = {"tcp": 1, "tcp6": 1, "ssl": 4}


def _fields(endpoint: str) -> list[str]:
    # Twisted's endpoint syntax: ':' separates fields, '\' escapes the next character.
    fields: list[str] = [""]
    escaped = False
    for ch in endpoint.strip():
        if escaped:
            fields[-1] += ch
            escaped = False
        elif ch == "\\":
            escaped = True
        elif ch == ":":
            fields.append("")
        else:
            fields[-1] += ch
    return fields


def interfaceOf(endpoint: str) -> str | None:
    """
    The interface a C{tcp}/C{tcp6}/C{ssl} endpoint binds (C{""}: every interface),
    or None for other endpoint types.
    """
    fields = _fields(endpoint)
    position = _INTERFACE_POSITION.get(fields[0].lower())
    if position is None:
        return None
    positional = [f for f in fields[1:] if "=" not in f]
    interface = positional[position] if len(positional) > position else ""
    for item in fields[1:]:
        name, eq, value = item.partition("=")
        if eq and name == "interface":
            interface = value
    return interface


def isLoopback(endpoint: str) -> bool:
    """
    Whether a server endpoint string only accepts connections from this machine:
    C{tcp}/C{tcp6}/C{ssl} bound to a loopback interface, or a C{unix} socket.
    Anything else (no interface: every address; other endpoint types) is not.
    """
    if _fields(endpoint)[0].lower() == "unix":
        return True
    interface = interfaceOf(endpoint)
    if interface is None:
        return False
    if interface.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(interface.strip("[]")).is_loopback
    except ValueError:
        return False
