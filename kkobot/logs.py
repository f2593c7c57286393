"""Logging: kkobot's level gate and the rotating logs/server.log observer."""

from __future__ import annotations

import os
from typing import Any

from twisted.application.service import Service
from twisted.logger import (
    FileLogObserver,
    FilteringLogObserver,
    LogLevel,
    LogLevelFilterPredicate,
    formatEventAsClassicLogText,
    globalLogPublisher,
)
from twisted.logger import Logger as _Logger
from twisted.python.logfile import LogFile

from kkobot.files import LOG_DIR, LOG_FILE, ensureDirectory

LEVELS = {
    "debug": LogLevel.debug,
    "info": LogLevel.info,
    "warn": LogLevel.warn,
    "warning": LogLevel.warn,
    "error": LogLevel.error,
    "critical": LogLevel.critical,
}

# One level for the whole process; twistd owns the global observers, so events
# below it are not even emitted (chat text is debug and must not leak at info).
_threshold = [LogLevel.info]


def setLevel(name: str) -> None:
    try:
        _threshold[0] = LEVELS[name.lower()]
    except KeyError:
        raise ValueError(f"unknown log level {name!r}: use one of {', '.join(LEVELS)}")


def level() -> LogLevel:
    return _threshold[0]


class Logger(_Logger):
    """A twisted.logger.Logger that drops events below kkobot's level before formatting."""

    def emit(self, level: LogLevel, format: str | None = None, **kwargs: Any) -> None:
        if level < _threshold[0]:
            return
        _Logger.emit(self, level, format, **kwargs)

    def debug(self, format: str | None = None, **kwargs: Any) -> None:
        # Debug lines sit on per-message paths: at other levels, return at once.
        if _threshold[0] is LogLevel.debug:
            _Logger.emit(self, LogLevel.debug, format, **kwargs)


class FileLogService(Service):
    """Adds the rotating server.log observer while the service runs."""

    def __init__(
        self, directory: str, name: str = "server.log", rotateLength: int = 10_000_000,
        maxRotatedFiles: int = 10,
    ) -> None:
        self.directory = directory
        self.name = name
        self.rotateLength = rotateLength
        self.maxRotatedFiles = maxRotatedFiles
        self._observer: Any = None
        self._file: LogFile | None = None

    @property
    def path(self) -> str:
        return os.path.join(self.directory, self.name)

    def startService(self) -> None:
        ensureDirectory(self.directory, LOG_DIR)
        self._file = LogFile(
            self.name,
            self.directory,
            rotateLength=self.rotateLength,
            maxRotatedFiles=self.maxRotatedFiles,
            defaultMode=LOG_FILE,
        )
        self._observer = FilteringLogObserver(
            FileLogObserver(self._file, formatEventAsClassicLogText),
            [LogLevelFilterPredicate(defaultLogLevel=_threshold[0])],
        )
        globalLogPublisher.addObserver(self._observer)
        Service.startService(self)

    def stopService(self) -> None:
        Service.stopService(self)
        if self._observer is not None:
            globalLogPublisher.removeObserver(self._observer)
            self._observer = None
        if self._file is not None:
            self._file.close()
            self._file = None
