"""kkobot-config edit: the decrypted config in $EDITOR, removed again on every exit and signal."""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import threading
from typing import Any, Iterator

from kkobot import config
from kkobot.admin.configio import loadConfig, out, saveConfig

__all__ = ["Signalled", "cmd_edit"]


def _editor() -> list[str]:
    command = os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi"
    try:
        argv = shlex.split(command)
    except ValueError:
        raise config.ConfigError(f"cannot parse the editor command {command!r}; "
                                 f"fix $VISUAL / $EDITOR") from None
    if not argv:
        raise config.ConfigError("the editor command is empty; set $VISUAL or $EDITOR")
    return argv


class Signalled(BaseException):
    """A signal that ends `edit`; raised in the main thread so every `finally` runs."""

    def __init__(self, signum: int) -> None:
        BaseException.__init__(self, signum)
        self.signum = signum


# A hung-up terminal (HUP), kill (TERM), Ctrl-C (INT), Ctrl-\ (QUIT): each would
# otherwise end the process with the decrypted config still on disk.
_CLEANUP_SIGNALS = tuple(getattr(signal, name) for name in ("SIGHUP", "SIGTERM", "SIGINT", "SIGQUIT")
                         if hasattr(signal, name))


@contextlib.contextmanager
def _signalsRaise() -> Iterator[None]:
    raised: list[int] = []

    def handler(signum: int, frame: Any) -> None:
        # Once: a second signal (a hang-up is often followed by TERM) must not cut
        # the cleanup the first one started.
        if not raised:
            raised.append(signum)
            raise Signalled(signum)

    if threading.current_thread() is not threading.main_thread():
        yield  # only the main thread may set handlers (an embedding's worry, not the CLI's)
        return
    previous = {signum: signal.signal(signum, handler) for signum in _CLEANUP_SIGNALS}
    try:
        yield
    finally:
        for signum, old in previous.items():
            signal.signal(signum, old)


def _stopEditor(proc: subprocess.Popen[bytes]) -> None:
    """End the editor before its file is removed, or it could write the file again."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _runEditor(editor: list[str], path: str) -> int:
    try:
        proc = subprocess.Popen([*editor, path])
    except OSError as exc:
        raise config.ConfigError(
            f"cannot run the editor {editor[0]!r} ({exc.strerror}); "
            f"set $VISUAL or $EDITOR; config unchanged") from None
    try:
        return proc.wait()
    except BaseException:
        _stopEditor(proc)
        raise


def cmd_edit(args: argparse.Namespace) -> int:
    """`edit`: the decrypted JSON in the editor; saved only when it changed and checks out."""
    data = loadConfig(args)
    editor = _editor()
    # The plaintext lives only in a private (0700) folder inside the 0700 config dir,
    # never in /tmp, and is removed on every exit and on HUP/TERM/INT/QUIT. The
    # folder also catches what editors write beside the file (vim's .swp, emacs's
    # #autosave#, nano's .save), removed with it.
    with _signalsRaise():
        work = tempfile.mkdtemp(dir=args.dir, prefix=".kkobot.edit.")
        try:
            tmp = os.path.join(work, "config.json")
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                fh.write(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
            status = _runEditor(editor, tmp)
            if status != 0:
                raise config.ConfigError(f"the editor exited with status {status}; config unchanged")
            try:
                with open(tmp, encoding="utf-8") as fh:
                    new = json.load(fh)
            except UnicodeDecodeError:
                raise config.ConfigError("the edited file is not UTF-8 text; config unchanged") from None
            except json.JSONDecodeError as exc:
                raise config.ConfigError(
                    f"the edited file is not valid JSON ({exc.msg} at line {exc.lineno} column "
                    f"{exc.colno}); config unchanged") from None
            if not isinstance(new, dict):
                raise config.ConfigError("the edited file must be a JSON object; config unchanged")
            if new == data:
                out("no changes")
                return 0
            try:
                saveConfig(args, new)
            except config.ConfigError as exc:
                raise config.ConfigError(f"{exc}; config unchanged") from None
            out("config saved")
            return 0
        finally:
            shutil.rmtree(work, ignore_errors=True)
