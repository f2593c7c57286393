"""Small file-system helpers for writes that must survive a crash or power loss."""

from __future__ import annotations

import os


def fsyncDirectory(directory: str | os.PathLike[str]) -> None:
    """Make a rename or new name in C{directory} durable (where a directory can be opened)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
