"""Who may read or swap the config: the owner and mode checks on its folder and key file."""

from __future__ import annotations

import os
from pathlib import Path

from kkobot.config.errors import ConfigError, osError
from kkobot.files import userName

__all__ = ["checkFolder", "checkKeyFile"]


def checkFolder(d: Path) -> None:
    """The config folder: owned by us or root; group may list it, nobody else may enter
    it, and nobody else may write to it (who can, can swap the key and the config)."""
    try:
        st = d.stat()
    except OSError as exc:
        raise osError("read", exc, d) from None
    me = os.geteuid()
    if st.st_uid not in (me, 0):
        raise ConfigError(
            f"config folder {d} is owned by {userName(st.st_uid)}, not by {userName(me)} "
            f"(the user reading it) or root; fix it with: chown {userName(me)} {d}")
    if st.st_mode & 0o027:
        raise ConfigError(
            f"config folder {d} is writable by group or open to others "
            f"(mode {st.st_mode & 0o777:04o}); fix it with: chmod 700 {d}")


def checkKeyFile(key: Path) -> None:
    """The key file: owned by the user reading it, and closed to group and others."""
    try:
        st = key.stat()
    except OSError as exc:
        raise osError("read", exc, key) from None
    me = os.geteuid()
    if st.st_uid != me:
        # Also refuses `sudo kkobot-config` on the server's config: a file written
        # back as root would be unreadable to the server.
        raise ConfigError(
            f"key file {key} is owned by {userName(st.st_uid)}, not by {userName(me)} "
            f"(the user reading it); run as {userName(st.st_uid)}, or fix it with: "
            f"chown {userName(me)} {key}")
    if st.st_mode & 0o077:
        raise ConfigError(
            f"key file {key} is accessible to group or others "
            f"(mode {st.st_mode & 0o777:04o}); fix it with: chmod 600 {key}")
