"""One JSON object out of a bridge line: nesting, huge numbers, bad UTF-8 and lone surrogates handled around a fast parser."""

from __future__ import annotations

import json
import re
from itertools import accumulate, count
from operator import sub
from typing import Any

import orjson

from kkobot.bridge.wireevents import BAD_ENCODING, BAD_JSON, WireError

# No bridge nests more than a few levels. Deeper values are refused: code that later
# walks them (repr, json.dumps, signing) recurses per level and would hit the
# interpreter's recursion limit far from the line that caused it.
MAX_NESTING = 64

# JSON may carry a lone UTF-16 surrogate as an escape ("\ud83d": an emoji cut in
# half by a truncation). Python keeps it in the str, and such a str cannot be
# encoded as UTF-8: not into a reply, not into the database (failing a whole batch).
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_SURROGATE = re.compile("[\ud800-\udfff]")

# orjson turns integers beyond 64 bits into floats where json keeps them exact; a
# line with a number token of 19+ digits takes json's path. A number token can only
# follow ':' '[' or ',' (and blanks, a sign), so the 19-digit ids bridges send as
# strings ("logId":"3371984461207437313") stay on the fast path; a string that merely
# looks like that context costs only the slower path, never a different answer.
# (As a regex, [:,\[][ \t\r\n]*-?[0-9]{19}, it cost ~2.5 us a line: every ':' and ','
# starts an attempt. Instead one C translate maps digits to '9', ':' ',' to ':',
# '[' '{' to '[', blanks to ' ', and everything else, the quote of a string id
# included, to 'x'; then only the runs of 19+ digits, usually one string logId, are
# looked at. A '{' before digits is no JSON, so counting it as context is harmless;
# the same translation counts the openers for the nesting check.)
_NUMBER_CLASSES = bytes(
    ord("9") if chr(c).isdigit() and c < 128
    else ord(":") if c in b":,"
    else ord("[") if c in b"[{"
    else ord(" ") if c in b" \t\r\n"
    else ord("-") if c == ord("-")
    else ord("x")
    for c in range(256)
)
_NINETEEN = b"9" * 19


def _hasLongNumber(line: bytes, classes: bytes | None = None) -> bool:
    """
    True when C{line} may hold a number token of 19+ digits (see above; a mix of
    blanks and signs before the digits also counts). C{classes}: the line's
    translation by C{_NUMBER_CLASSES}, if made already.
    """
    if classes is None:
        classes = line.translate(_NUMBER_CLASSES)
    at = classes.find(_NINETEEN)
    while at != -1:
        before = at - 1
        while before >= 0 and classes[before] in b" -":
            before -= 1
        if before >= 0 and classes[before] in b":[":
            return True
        # The next run of digits, not the rest of this one.
        at = classes.find(_NINETEEN, at + 19)
        while at != -1 and classes[at - 1] == 57:  # '9'
            at = classes.find(_NINETEEN, at + 1)
    return False


# The nesting scan works on bytes at C speed: escaped quotes and backslashes out, the
# strings between the remaining quotes out, then only brackets are kept ({ and [ alike).
_OPENERS_AS_ONE = bytes.maketrans(b"{}", b"[]")
_NOT_BRACKETS = bytes(c for c in range(256) if c not in b"[]{}")


def _escapesQuoteOrBackslash(line: bytes) -> bool:
    """
    Whether a backslash in C{line} may escape a quote or a backslash (and so needs
    the replacing below), found with memchr: a megabyte replaced twice costs
    milliseconds, and a few \\uXXXX escapes need none of it.
    """
    find = line.find
    at = find(b"\\")
    for _ in range(MAX_NESTING):
        if at < 0:
            return False
        if line[at + 1:at + 2] in b'\\"':
            return True
        at = find(b"\\", at + 1)
    return at >= 0


def _structure(line: bytes) -> bytes | None:
    """
    The brackets of C{line} outside its strings, `{` and `[` alike, found at C speed
    without parsing. None when the quotes do not pair up (no JSON). Exact for valid
    JSON; for anything else the parser has the last word.
    """
    if _escapesQuoteOrBackslash(line):
        # Pairs of backslashes first, then escaped quotes: what is left of a run of
        # backslashes is the one that escapes the next character.
        line = line.replace(b"\\\\", b"").replace(b'\\"', b"")
    parts = line.split(b'"')
    if len(parts) % 2 == 0:
        return None
    outside = b"".join(parts[::2]) if len(parts) > 1 else line
    return outside.translate(_OPENERS_AS_ONE, _NOT_BRACKETS)


def _depth(brackets: bytes) -> int:
    """How deep a bracket sequence nests: a megabyte of `[],[],...` costs milliseconds."""
    if not brackets:
        return 0
    # One pass drops every innermost pair: flat data (lists of empty lists) is gone.
    brackets = brackets.replace(b"[]", b"")
    if not brackets:
        return 1
    # The depth after each run of openers: openers so far minus the closers before.
    runs = brackets.split(b"]")
    return 1 + max(map(sub, accumulate(map(len, runs)), count()))


def tooManyContainers(line: bytes, limit: int) -> bool:
    """
    True when C{line} holds more than C{limit} lists and objects (outside strings),
    counted without parsing: what a connection that has proved nothing yet may send
    is held to the few containers of a handshake, a message or a ping.
    """
    if line.count(b"[") + line.count(b"{") <= limit:
        return False
    brackets = _structure(line)
    return brackets is None or brackets.count(b"[") > limit


def parseObject(line: bytes) -> dict[str, Any]:
    """The JSON object C{line} holds (a 3.2 line, or a 3.3 header); L{WireError} when it holds none."""
    if line.endswith(b"\r"):
        line = line[:-1]
    # Nesting is refused before any parsing; only a line with more brackets than
    # levels allowed can nest too deep, so the scan is skipped for bridge lines.
    # One translation serves this count ('[' and '{' alike) and the number check.
    classes = line.translate(_NUMBER_CLASSES)
    if classes.count(b"[") > MAX_NESTING:
        brackets = _structure(line)
        if brackets is None:
            raise WireError(BAD_JSON, "not valid JSON: a string is not terminated")
        if _depth(brackets) > MAX_NESTING:
            raise WireError(BAD_JSON, f"JSON nested deeper than {MAX_NESTING} levels")
    # orjson first (the same objects as json.loads, several times faster); every
    # line it refuses (bad UTF-8, NaN, lone surrogates, ...) or might read
    # differently (huge integers) goes the json way below, so the answers and
    # error codes are json's.
    if not _hasLongNumber(line, classes):
        try:
            obj = orjson.loads(line)
        except orjson.JSONDecodeError:
            pass
        else:
            if type(obj) is dict:
                return obj
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise WireError(BAD_ENCODING, f"line is not valid UTF-8 (byte {e.start})")
    try:
        obj = json.loads(text)
    except ValueError as e:
        raise WireError(BAD_JSON, f"not valid JSON: {e}")
    if not isinstance(obj, dict):
        raise WireError(BAD_JSON, "a line must be a JSON object")
    if _SURROGATE_ESCAPE.search(text):
        obj = _replaceSurrogates(obj)
    return obj


def _replaceSurrogates(value: Any) -> Any:
    """Lone surrogates become U+FFFD (pairs were already joined by json.loads)."""
    if isinstance(value, str):
        return _SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replaceSurrogates(v) for v in value]
    if isinstance(value, dict):
        return {_replaceSurrogates(k): _replaceSurrogates(v) for k, v in value.items()}
    return value
