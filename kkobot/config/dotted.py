"""Dotted keys (`DBs.kkobot_test.HOST`) into the config, and values as typed on a shell."""

from __future__ import annotations

import json
from typing import Any

from kkobot.config.errors import ConfigError, jsonType

__all__ = ["split_key", "joinKey", "get_dotted", "set_dotted", "unset_dotted", "parse_value"]


def split_key(key: str) -> list[str]:
    r"""`"a.b.c"` -> `["a", "b", "c"]`; `\.` is a literal dot (`bots.LOA\.i.secret`)."""
    parts: list[str] = []
    cur: list[str] = []
    it = iter(key)
    for ch in it:
        if ch == "\\":
            nxt = next(it, "")
            if nxt not in (".", "\\"):
                cur.append("\\")
            cur.append(nxt)
        elif ch == ".":
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
    parts.append("".join(cur))
    if any(p == "" for p in parts):
        raise ConfigError(f"invalid key {key!r}: use dotted names like DBs.kkobot_test.HOST")
    return parts


def joinKey(parts: list[str]) -> str:
    """The dotted key of `parts`, the inverse of split_key."""
    return ".".join(p.replace("\\", "\\\\").replace(".", "\\.") for p in parts)


def get_dotted(data: dict[str, Any], key: str, default: Any = None) -> Any:
    """The value at a dotted key, or `default` when any part of the path is absent."""
    node: Any = data
    for part in split_key(key):
        if not isinstance(node, dict) or part not in node:
            return default
        node = node[part]
    return node


def set_dotted(data: dict[str, Any], key: str, value: Any) -> None:
    """Set a dotted key, creating missing intermediate objects."""
    parts = split_key(key)
    node = data
    for i, part in enumerate(parts[:-1]):
        child = node.get(part)
        if child is None:
            child = node[part] = {}
        elif not isinstance(child, dict):
            where = joinKey(parts[: i + 1])
            raise ConfigError(
                f"cannot set {key}: {where} is a {jsonType(child)}, not an object "
                f"(unset {where} first to replace it)")
        node = child
    node[parts[-1]] = value


def unset_dotted(data: dict[str, Any], key: str) -> None:
    """Remove a dotted key; ConfigError when it is not set."""
    parts = split_key(key)
    node: Any = data
    for part in parts[:-1]:
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"{key} is not set")
        node = node[part]
    if not isinstance(node, dict) or parts[-1] not in node:
        raise ConfigError(f"{key} is not set")
    del node[parts[-1]]


def _no_constants(name: str) -> Any:
    raise ValueError(name)


def parse_value(text: str) -> Any:
    """A JSON value when `text` parses as one (`true`, `3306`, `{"a":1}`), else `text`."""
    if text == "":
        return ""
    try:
        # NaN/Infinity are not JSON and could not be saved again: keep them as text.
        return json.loads(text, parse_constant=_no_constants)
    except (ValueError, RecursionError):
        return text
