"""Config problems said in one line: ConfigError, and the words its messages use."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["ConfigError", "osError", "jsonType"]


class ConfigError(Exception):
    """A config problem; str() is one line saying what is wrong and how to fix it."""


def osError(action: str, exc: OSError, path: Path | None = None) -> ConfigError:
    """An OSError as one ConfigError line: what we could not do, where, and why."""
    where = exc.filename if exc.filename is not None else path
    reason = exc.strerror or exc.__class__.__name__
    return ConfigError(f"cannot {action} {where}: {reason}")


def jsonType(value: Any) -> str:
    """The JSON name of a value's type ("string", "object"...), as an operator reads it."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    if isinstance(value, dict):
        return "object"
    return type(value).__name__

