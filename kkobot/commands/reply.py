"""What a command answers: L{Reply} (text or media) and the Korean texts for failures."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

# Short Korean replies users see when something goes wrong on our side.
ERROR_REPLY = "명령을 처리하는 중 오류가 발생했습니다. 잠시 후 다시 시도해 주세요."
TIMEOUT_REPLY = "명령 처리 시간이 초과되었습니다. 잠시 후 다시 시도해 주세요."


@dataclass(frozen=True)
class Reply:
    """One chat message the bot sends back (text, or media per PROTOCOL.md)."""

    text: str
    mediaWaitTime: int | None = None

    def __init__(self, text: str, mediaWaitTime: int | None = None) -> None:
        # The frozen dataclass's own __init__ sets each field with object.__setattr__;
        # writing the instance dict directly does the same at 60 % of the cost (one
        # Reply per answer).
        values = self.__dict__
        values["text"] = text
        values["mediaWaitTime"] = mediaWaitTime

    @classmethod
    def media(cls, *urls: str, waitTime: int | None = None) -> Reply:
        """Images by URL: C{MEDIA_URL:url1|||url2}; C{waitTime} in ms."""
        # A "|" of a URL is written %7C (the same URL to a web server): a URL ending
        # in "|" would otherwise move the "|||" that separates it from the next.
        return cls("MEDIA_URL:" + "|||".join(url.replace("|", "%7C") for url in urls), waitTime)

    @classmethod
    def image(cls, *payloads: bytes | str, waitTime: int | None = None) -> Reply:
        """Images inline: C{IMAGE_BASE64:...}; bytes are base64-encoded here."""
        encoded = [
            base64.b64encode(p).decode("ascii") if isinstance(p, bytes) else p for p in payloads
        ]
        return cls("IMAGE_BASE64:" + "|||".join(encoded), waitTime)

    @property
    def isMedia(self) -> bool:
        return self.text.startswith(("MEDIA_URL:", "IMAGE_BASE64:"))


def normalizeReplies(result: Any) -> list[Reply]:
    """A command's return value as a list of L{Reply}."""
    if result is None:
        return []
    if type(result) is str:
        # What most commands return: one line of text.
        return [Reply(result)] if result else []
    if isinstance(result, (str, Reply)):
        result = [result]
    replies = []
    for item in result:
        if item is None:
            continue
        if isinstance(item, Reply):
            replies.append(item)
        elif isinstance(item, str):
            if item:
                replies.append(Reply(item))
        else:
            raise TypeError(f"a command returned {type(item).__name__}, not text")
    return replies
