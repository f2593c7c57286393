"""twistd's own log file (daemon mode, --logfile): mode 0640, rotated by size, ten kept."""

from __future__ import annotations

import getopt
import signal
from typing import Any, Mapping, Sequence

from twisted.logger import ILogObserver, textFileLogObserver
from twisted.python.components import Componentized
from twisted.python.logfile import LogFile

from kkobot.files import LOG_FILE, tighten

DEFAULT_NAME = "twistd.log"
# As logs/server.log: at most about 110 MB of log on disk.
ROTATE_BYTES = 10_000_000
ROTATED_FILES = 10


def logFilePath(twistdOptions: Mapping[str, Any]) -> str | None:
    """
    The file twistd itself would log to with these options, or None when it logs
    elsewhere: stdout (C{-n} without C{--logfile}, or C{--logfile -}), syslog, or an
    operator's own C{--logger}. Mirrors C{UnixAppLogger._getLogObserver}.
    """
    if twistdOptions.get("logger") or twistdOptions.get("syslog"):
        return None
    name = twistdOptions.get("logfile") or ""
    if name == "-":
        return None
    if not name:
        # --debug implies --nodaemon (twistd's preApplication).
        foreground = twistdOptions.get("nodaemon") or twistdOptions.get("debug")
        return None if foreground else DEFAULT_NAME
    return name


def optionsFromArgv(argv: Sequence[str]) -> dict[str, Any] | None:
    """
    The logging options of a twistd command line, read with twistd's own option
    table (for a .tac, which never sees twistd's parsed options). None when the
    line does not parse (twistd then reports it itself).
    """
    from twisted.scripts.twistd import ServerOptions

    table = ServerOptions()
    try:
        opts, _ = getopt.getopt(list(argv[1:]), table.shortOpt, table.longOpt)
    except getopt.GetoptError:
        return None
    found: dict[str, Any] = {}
    for opt, value in opts:
        name = opt.lstrip("-")
        name = table.synonyms.get(name, table.synonyms.get(name.replace("-", "_"), name))
        found[name] = value if value else True
    return found


def openLogFile(path: str) -> LogFile:
    """C{path} as a log file: created (or tightened to) 0640, rotated at 10 MB, 10 kept."""
    logFile = LogFile.fromFullPath(
        path, rotateLength=ROTATE_BYTES, maxRotatedFiles=ROTATED_FILES, defaultMode=LOG_FILE
    )
    # Older twistd.log.N files were left at the umask's mode.
    for number in logFile.listLogs():
        tighten(f"{logFile.path}.{number}", LOG_FILE)
    return logFile


def _rotateOnSigusr1(logFile: LogFile) -> None:
    # What twistd does for its own log file: `kill -USR1` rotates it now.
    if not hasattr(signal, "SIGUSR1") or signal.getsignal(signal.SIGUSR1):
        return

    def rotate(signum: int, frame: Any) -> None:
        from twisted.internet import reactor

        reactor.callFromThread(logFile.rotate)  # type: ignore[attr-defined]

    signal.signal(signal.SIGUSR1, rotate)


def install(application: Any, twistdOptions: Mapping[str, Any] | None) -> str | None:
    """
    Make twistd log to a capped 0640 file where it would log to a file at all:
    twistd reads the application's C{ILogObserver} component before it opens its
    default (uncapped, umask-moded) C{twistd.log}. Returns the path, or None.
    """
    if twistdOptions is None or not isinstance(application, Componentized):
        return None
    path = logFilePath(twistdOptions)
    if path is None:
        return None
    logFile = openLogFile(path)
    _rotateOnSigusr1(logFile)
    application.setComponent(ILogObserver, textFileLogObserver(logFile))
    return path
