"""kb_chat_logs rows: one tuple per message, clipped to the column widths."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, NamedTuple

# `message` is a MySQL TEXT column: at most 65,535 bytes. The widths below are the
# varchar lengths of kb_chat_logs; an over-long value in strict mode would fail the
# whole batch, so values are clipped before they leave us.
MESSAGE_MAX_BYTES = 65535
WIDTHS = {
    "channel_id": 50,
    "user_hash": 100,
    "room_name": 255,
    "sender": 100,
    "directive": 30,
    "message_type": 20,
    "bot_name": 30,
    "log_id": 50,
}

CLIENT_TIME_FORMAT = "%Y-%m-%d %H:%M:%S"

_newTuple = tuple.__new__

# Two letters or digits (str.isalnum: in a str pattern, \w less the underscore is
# exactly that) besides laughter and crying jamo, which alone do not make a message
# meaningful; one C scan instead of a Python loop over every character.
_TWO_MEANINGFUL = re.compile(r"[^\W_ㅋㅎㅠㅜ].*?[^\W_ㅋㅎㅠㅜ]", re.DOTALL)


def clip(value: str | None, width: int) -> str | None:
    if value is None or len(value) <= width:
        return value
    return value[:width]


def clipBytes(value: str, limit: int = MESSAGE_MAX_BYTES) -> str:
    # UTF-8 takes at most 4 bytes a character: a short str fits without encoding it.
    if len(value) <= limit // 4:
        return value
    encoded = value.encode("utf-8")
    if len(encoded) <= limit:
        return value
    return encoded[:limit].decode("utf-8", "ignore")


_CANONICAL_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}")
# Phones send the same second for a burst of messages: the last answer is reused.
_lastClientTime: list[Any] = [None, None]


def parseClientTime(text: str | None) -> datetime | None:
    """The phone's local `YYYY-MM-DD HH:MM:SS`, or None when absent or malformed."""
    if not text:
        return None
    try:
        return datetime.strptime(text.strip(), CLIENT_TIME_FORMAT)
    except ValueError:
        return None


def clientTimeText(text: str | None) -> str | None:
    """
    The phone's time as the column stores it (zero-padded), or None when malformed.

    Same answers as formatting L{parseClientTime}, without strptime/strftime for
    the canonical form the bridges send.
    """
    if not text:
        return None
    if text == _lastClientTime[0]:
        return _lastClientTime[1]
    if len(text) == 19 and _CANONICAL_TIME.fullmatch(text):
        try:
            datetime(
                int(text[0:4]), int(text[5:7]), int(text[8:10]),
                int(text[11:13]), int(text[14:16]), int(text[17:19]),
            )
            result: str | None = text
        except ValueError:
            result = None
    else:
        parsed = parseClientTime(text)
        result = None if parsed is None else parsed.strftime(CLIENT_TIME_FORMAT)
    _lastClientTime[0], _lastClientTime[1] = text, result
    return result


# Text this short fits the column in any encoding (see clipBytes).
_SHORT_TEXT = MESSAGE_MAX_BYTES // 4
# A bot's reply columns (user_hash, sender, bot_name), clipped once per bot name.
_botColumnsCache: dict[str, tuple[str, str, str]] = {}


def _botColumns(botName: str) -> tuple[str, str, str]:
    columns = _botColumnsCache.get(botName)
    if columns is None:
        if len(_botColumnsCache) >= 1024:
            _botColumnsCache.clear()
        columns = _botColumnsCache[botName] = (
            clip(f"bot:{botName}", 100), clip(botName, 100), clip(botName, 30))  # type: ignore[assignment]
    return columns  # type: ignore[return-value]


def _timeText(value: datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    return value.strftime(CLIENT_TIME_FORMAT)


def isMeaningful(text: str, isCommand: bool) -> bool:
    """A command, or text with at least two letters or digits besides laughter."""
    if isCommand:
        return True
    return _TWO_MEANINGFUL.search(text) is not None


class ChatRow(NamedTuple):
    """
    One row of kb_chat_logs, in column order, clipped to the column widths.

    A tuple, built once per message: the journal and the INSERT take its values as
    they are (times as C{YYYY-MM-DD HH:MM:SS} text; a datetime given is formatted).
    """

    channel_id: str
    user_hash: str
    room_name: str | None
    sender: str | None
    message: str
    directive: str | None
    message_type: str
    is_meaningful: int
    bot_name: str
    is_mention: int
    is_group_chat: int
    log_id: str | None
    client_timestamp: str | None
    server_timestamp: str
    is_bot: int
    is_our_bot_response: int
    is_scheduled: int

    KIND = "chat"

    @classmethod
    def fromMessage(
        cls, message: Any, botName: str, directive: str | None, received: datetime | str
    ) -> ChatRow:
        """The row for a message a user sent (an `analyze` event)."""
        # clip() written out: a call per column cost more than the columns' checks.
        text = message.text
        room = message.room
        sender = message.sender
        userHash = message.userHash or ""
        logId = message.logId
        channelId = message.channelId or ""
        # tuple.__new__ with the values in column order: the namedtuple's own
        # __new__ is a Python call that only binds the 17 arguments again.
        return _newTuple(cls, (
            channelId if len(channelId) <= 50 else channelId[:50],
            userHash if len(userHash) <= 100 else userHash[:100],
            room if room is None or len(room) <= 255 else room[:255],
            sender if sender is None or len(sender) <= 100 else sender[:100],
            text if len(text) <= _SHORT_TEXT else clipBytes(text),
            directive if directive is None or len(directive) <= 30 else directive[:30],
            "command" if directive else "normal",
            1 if directive is not None or isMeaningful(text, False) else 0,
            botName if len(botName) <= 30 else botName[:30],
            1 if message.isMention else 0,
            1 if message.isGroupChat else 0,
            logId if logId is None or len(logId) <= 50 else logId[:50],
            clientTimeText(message.timestamp),
            received if type(received) is str else _timeText(received),
            0, 0, 0,
        ))

    @classmethod
    def forReply(
        cls,
        text: str,
        botName: str,
        room: str,
        channelId: str | None,
        isGroupChat: bool,
        directive: str | None,
        sent: datetime | str,
        scheduled: bool = False,
    ) -> ChatRow:
        """The row for a message our bot sent."""
        channelId = channelId or ""
        userHash, sender, bot = _botColumns(botName)
        return _newTuple(cls, (
            channelId if len(channelId) <= 50 else channelId[:50],
            userHash,
            room if room is None or len(room) <= 255 else room[:255],
            sender,
            text if len(text) <= _SHORT_TEXT else clipBytes(text),
            directive if directive is None or len(directive) <= 30 else directive[:30],
            "bot_response",
            0,
            bot,
            0,
            1 if isGroupChat else 0,
            None,
            None,
            sent if type(sent) is str else _timeText(sent),
            1, 1, 1 if scheduled else 0,
        ))

    @classmethod
    def clipped(cls, **values: Any) -> ChatRow:
        for name, width in WIDTHS.items():
            values[name] = clip(values[name], width)
        values["message"] = clipBytes(values["message"])
        values["client_timestamp"] = _timeText(values["client_timestamp"])
        values["server_timestamp"] = _timeText(values["server_timestamp"])
        return cls(**values)

    def values(self) -> tuple[Any, ...]:
        """Column values as the journal and the INSERT take them (times as text)."""
        return tuple(self)


COLUMNS = list(ChatRow._fields)
INSERT_CHAT_LOGS = (
    f"INSERT INTO kb_chat_logs ({', '.join(COLUMNS)}) "
    f"VALUES ({', '.join(['%s'] * len(COLUMNS))})"
)

