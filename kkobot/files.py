"""Small file-system helpers: durable renames, the modes of what kkobot creates, trust checks."""

from __future__ import annotations

import os
import pwd
import stat


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


# Modes of what kkobot creates (docs/security.md, "Files and permissions"): chat
# content and the config are the server user's alone; logs may be read by its group.
PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600
LOG_DIR = 0o750
LOG_FILE = 0o640
# Never looser than this, whatever the shell's umask was (twistd keeps it in -n mode).
UMASK = 0o027


def tightenUmask() -> int:
    """Add L{UMASK}'s bits to the process umask (never loosen it); return the new umask."""
    current = os.umask(UMASK)
    os.umask(current | UMASK)
    return current | UMASK


def ensureDirectory(path: str | os.PathLike[str], mode: int) -> None:
    """
    Create C{path} and its missing parents with C{mode}, whatever the umask.

    Folders that already exist keep their mode: they may be the operator's
    (C{--var /srv/kkobot}); what kkobot puts inside carries its own mode.
    """
    missing = []
    current = os.path.abspath(path)
    while not os.path.isdir(current):
        missing.append(current)
        parent = os.path.dirname(current)
        if parent == current:
            break
        current = parent
    for directory in reversed(missing):
        try:
            os.mkdir(directory, mode)
        except FileExistsError:
            if not os.path.isdir(directory):
                raise
            continue
        os.chmod(directory, mode)  # mkdir's mode is filtered by the umask


def tighten(path: str | os.PathLike[str], mode: int) -> None:
    """
    Take the permission bits beyond C{mode} off a file or folder of ours, if it exists.

    Older versions left files at the umask's mode (often 0644); a file owned by
    someone else is left alone (we could not chmod it).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return
    current = stat.S_IMODE(st.st_mode)
    if st.st_uid == os.geteuid() and current & ~mode:
        os.chmod(path, current & mode)


def userName(uid: int) -> str:
    """A user's login name, or the number when the user has none."""
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def trustProblem(path: str, st: os.stat_result, what: str) -> str | None:
    """
    Why a file or folder whose content kkobot runs or trusts cannot be trusted, or None.

    Trusted: owned by the server's user or root, and not writable by group or others.
    Anyone else who can change it could make the server run their code.
    """
    me = os.geteuid()
    if st.st_uid not in (me, 0):
        return (
            f"{what} {path} is owned by {userName(st.st_uid)}, not by the server's user "
            f"({userName(me)}) or root; fix it with: chown {userName(me)} {path}"
        )
    if st.st_mode & 0o022:
        return (
            f"{what} {path} is writable by group or others (mode "
            f"{stat.S_IMODE(st.st_mode):04o}); fix it with: chmod go-w {path}"
        )
    return None


def writeAtomically(path: str, data: bytes, mode: int = 0o600) -> None:
    """
    Blocking (a worker thread): replace C{path} with C{data} so that a crash leaves
    either the old file or the new one, never a mix; the file gets C{mode}.
    """
    directory = os.path.dirname(os.path.abspath(path))
    ensureDirectory(directory, PRIVATE_DIR)
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
