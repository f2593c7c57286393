"""What kkobot-config's commands share: output, secrets read without echo, load and save."""

from __future__ import annotations

import argparse
import getpass
import sys
from typing import Any

from kkobot import config

__all__ = ["PROG", "out", "loadConfig", "saveConfig", "warnArgv", "readValue"]

PROG = "kkobot-config"


def out(text: str = "") -> None:
    """One line on standard output."""
    sys.stdout.write(text + "\n")


def loadConfig(args: argparse.Namespace) -> dict[str, Any]:
    """The decrypted config of the --dir the command was given."""
    return config.load(args.dir)


def saveConfig(args: argparse.Namespace, data: dict[str, Any]) -> None:
    """Check `data` against the schema, then encrypt it into the --dir."""
    config.validate(data)
    config.save(args.dir, data)


def warnArgv(what: str, safe: str) -> None:
    """One warning line on stderr: `what` was given where other users can see it."""
    # Other users see a process's arguments (ps, /proc/PID/cmdline), and shells keep
    # them in their history: say so, but keep working for existing scripts.
    sys.stderr.write(
        f"{PROG}: warning: {what} on the command line is visible to other users (ps) "
        f"and stays in your shell history; next time use {safe}\n")


def readValue(label: str) -> str:
    """
    One value from standard input: a prompt that does not echo (asked twice) on a
    terminal, else one line of the input (its line break dropped), for scripts:
    C{printf '%s\\n' "$PW" | kkobot-config set KEY -}.
    """
    if sys.stdin is not None and sys.stdin.isatty():
        try:
            first = getpass.getpass(f"{label} (not shown): ")
            again = getpass.getpass(f"{label} again: ")
        except EOFError:
            raise config.ConfigError(f"no {label} given; nothing changed") from None
        if first != again:
            raise config.ConfigError(f"the two {label} entries differ; nothing changed")
        return first
    line = sys.stdin.readline() if sys.stdin is not None else ""
    if not line:
        raise config.ConfigError(f"no {label} on standard input; nothing changed")
    return line[:-1] if line.endswith("\n") else line
