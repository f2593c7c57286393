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


def writeAtomically(path: str, data: bytes, mode: int = 0o600) -> None:
    """
    Blocking (a worker thread): replace C{path} with C{data} so that a crash leaves
    either the old file or the new one, never a mix; the file gets C{mode}.
    """
    directory = os.path.dirname(os.path.abspath(path))
    os.makedirs(directory, exist_ok=True)
    tmp = f"{path}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        os.fchmod(fd, mode)  # an older temp file may have had another mode
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)
    fsyncDirectory(directory)
