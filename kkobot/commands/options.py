"""Typed `--name=value` command options: declaration, parsing, Korean error messages."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Sequence

# An option is a whole whitespace-separated word: `--name` or `--name=value`.
_OPTION = re.compile(r"(?<!\S)--([A-Za-z][\w-]*)(?:=(\S*))?(?!\S)")

_TRUE = {"1", "true", "yes", "y", "on", "예", "네"}
_FALSE = {"0", "false", "no", "n", "off", "아니오", "아니요"}

_TYPE_NAMES = {int: "정수", float: "숫자", str: "문자열", bool: "true/false"}


class OptionError(ValueError):
    """A bad option; str() is a short Korean sentence for the user."""


@dataclass(frozen=True)
class Option:
    """
    One C{--name=value} option of a command.

    C{type} is int, float, str or bool (C{--flag} alone means true). The parsed value
    is in C{context.options[attr]}, where C{attr} is the name with dashes as
    underscores (C{--media-wait-time} → C{media_wait_time}).
    """

    name: str
    type: type = str
    default: Any = None
    min: float | None = None
    max: float | None = None
    help: str = ""
    choices: tuple[Any, ...] = ()

    @property
    def attr(self) -> str:
        return self.name.replace("-", "_")

    def describe(self) -> str:
        """One help line, e.g. C{--media-wait-time=정수 (기본 5000, 0~60000): 대기 시간}."""
        parts = [f"--{self.name}" if self.type is bool else f"--{self.name}={_TYPE_NAMES.get(self.type, '값')}"]
        notes = []
        if self.default is not None:
            notes.append(f"기본 {self.default}")
        if self.min is not None or self.max is not None:
            low = "" if self.min is None else self.min
            high = "" if self.max is None else self.max
            notes.append(f"{low}~{high}")
        if self.choices:
            notes.append("/".join(str(c) for c in self.choices))
        if notes:
            parts.append(f"({', '.join(notes)})")
        line = " ".join(parts)
        return f"{line}: {self.help}" if self.help else line

    def convert(self, raw: str | None) -> Any:
        """The typed value of C{raw} (None: the bare C{--name} form)."""
        flag = f"--{self.name}"
        if self.type is bool:
            if raw is None:
                return True
            word = raw.lower()
            if word in _TRUE:
                return True
            if word in _FALSE:
                return False
            raise OptionError(f"{flag} 값은 true 또는 false여야 합니다.")
        if raw is None or raw == "":
            raise OptionError(f"{flag} 옵션에 값이 필요합니다. 예: {flag}=값")
        if self.type in (int, float):
            try:
                value = self.type(raw)
            except ValueError:
                raise OptionError(f"{flag} 값은 {_TYPE_NAMES[self.type]}여야 합니다: {raw}")
            if self.min is not None and value < self.min:
                raise OptionError(f"{flag} 값은 {self.min} 이상이어야 합니다.")
            if self.max is not None and value > self.max:
                raise OptionError(f"{flag} 값은 {self.max} 이하여야 합니다.")
        else:
            value = self.type(raw)
        if self.choices and value not in self.choices:
            allowed = ", ".join(str(c) for c in self.choices)
            raise OptionError(f"{flag} 값은 다음 중 하나여야 합니다: {allowed}")
        return value


def parseOptions(text: str, options: Sequence[Option]) -> tuple[dict[str, Any], str]:
    """
    Take the declared options out of C{text}.

    @return: the values by C{attr} (defaults filled in) and the rest of the text,
        its own spacing and line breaks kept.
    @raise OptionError: an unknown option or a bad value.
    """
    byName = {o.name.lower(): o for o in options}
    values = {o.attr: o.default for o in options}
    pieces = []
    last = 0
    for found in _OPTION.finditer(text):
        option = byName.get(found.group(1).lower())
        if option is None:
            raise OptionError(f"알 수 없는 옵션입니다: --{found.group(1)}")
        values[option.attr] = option.convert(found.group(2))
        pieces.append(text[last:found.start()])
        last = found.end()
    pieces.append(text[last:])
    rest = "".join(pieces)
    # Only the gaps options left behind are tidied; the user's own line breaks stay.
    rest = re.sub(r"[ \t]{2,}", " ", rest) if len(pieces) > 1 else rest
    return values, rest.strip()
