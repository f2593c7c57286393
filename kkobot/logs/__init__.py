"""Logging: kkobot's level gate, clean log fields, and the rotating logs/server.log observer."""

from __future__ import annotations

import os
import re
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

# What a client could use to forge, hide or reorder log lines on an operator's terminal:
# C0 controls (CR, LF, ESC sequences), DEL, C1 controls, the Unicode line and paragraph
# separators, zero-width and bidi formatting characters. They are logged as escapes.
_FORMATTING = "\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2064\u2066-\u206f\ufeff\ufff9-\ufffb"
_UNSAFE = re.compile(f"[\x00-\x1f\x7f-\x9f{_FORMATTING}]")
# In a formatted line, a line break is Twisted's continuation ("\n\t"): kept.
_UNSAFE_IN_TEXT = re.compile(f"[\x00-\x08\x0b-\x1f\x7f-\x9f{_FORMATTING}]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}

# A log field longer than this is clipped: one line per event, whatever a client sends.
MAX_FIELD_CHARS = 500


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def clean(value: str) -> str:
    """C{value} safe for a log line: unsafe characters escaped, clipped to L{MAX_FIELD_CHARS}."""
    if len(value) > MAX_FIELD_CHARS:
        value = f"{value[:MAX_FIELD_CHARS]}...(+{len(value) - MAX_FIELD_CHARS} chars)"
    return _UNSAFE.sub(_escape, value)


def _cleanFields(fields: dict[str, Any]) -> None:
    for key, value in fields.items():
        if type(value) is str and (len(value) > MAX_FIELD_CHARS or _UNSAFE.search(value)):
            fields[key] = clean(value)


def formatSafely(event: dict[str, Any]) -> str | None:
    """formatEventAsClassicLogText with the unsafe characters of any text escaped."""
    text = formatEventAsClassicLogText(event)
    if text is not None and _UNSAFE_IN_TEXT.search(text):
        text = _UNSAFE_IN_TEXT.sub(_escape, text)
    return text


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
    """
    A twisted.logger.Logger that drops events below kkobot's level before formatting,
    and makes every string field safe to log (L{clean}): fields often come from clients.
    """

    def emit(self, level: LogLevel, format: str | None = None, **kwargs: Any) -> None:
        if level < _threshold[0]:
            return
        _cleanFields(kwargs)
        _Logger.emit(self, level, format, **kwargs)

    def debug(self, format: str | None = None, **kwargs: Any) -> None:
        # Debug lines sit on per-message paths: at other levels, return at once.
        if _threshold[0] is LogLevel.debug:
            _cleanFields(kwargs)
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
            FileLogObserver(self._file, formatSafely),
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
