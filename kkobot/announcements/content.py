"""What an announcement sends: its text and up to two image groups, as the commands' Reply values."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from typing import Any

from kkobot.commands.reply import Reply

# The parts in the order they are sent, and the columns each comes from.
TEXT, IMAGES_1, IMAGES_2 = "text", "images_1", "images_2"
_URL_PREFIXES = ("http://", "https://")


class ContentError(ValueError):
    """A part of a schedule that cannot be sent as it is (the text says why)."""


@dataclass(frozen=True)
class Part:
    """One component of an announcement: the text, or an image group (one or two media replies)."""

    name: str
    replies: tuple[Reply, ...]
    # The stored value, for kb_schedule_logs.sent_* (the text, or the group's JSON).
    logged: Any


def _jsonList(value: Any, column: str) -> list[Any]:
    if value is None:
        return []
    if isinstance(value, bytes):
        value = value.decode("utf-8")
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            value = json.loads(value)
        except ValueError:
            raise ContentError(f"{column} is not JSON")
    if value is None:
        return []
    if isinstance(value, (str, dict)):
        value = [value]
    if not isinstance(value, list):
        raise ContentError(f"{column} must be a JSON list of images")
    return value


def _source(item: Any, column: str, index: int) -> tuple[bool, str]:
    """(is a URL, the source) of one image: a URL, a data: URI, base64, or an object holding one."""
    if isinstance(item, dict):
        for key in ("url", "src", "image_url", "path"):
            found = item.get(key)
            if isinstance(found, str) and found.startswith(_URL_PREFIXES):
                return True, found
        for key in ("base64", "data", "content"):
            found = item.get(key)
            if isinstance(found, str) and found:
                item = found
                break
        else:
            raise ContentError(f"{column}[{index}] has no url or base64 field")
    if not isinstance(item, str) or not item.strip():
        raise ContentError(f"{column}[{index}] is not an image")
    item = item.strip()
    if item.startswith(_URL_PREFIXES):
        return True, item
    if item.startswith("data:") and "," in item:
        item = item.split(",", 1)[1]
    try:
        base64.b64decode(item, validate=True)
    except (binascii.Error, ValueError):
        raise ContentError(f"{column}[{index}] is neither an http(s) URL nor base64")
    return False, item


def imageGroup(value: Any, waitTime: Any, column: str) -> tuple[Reply, ...]:
    """
    The media replies of one image group: URLs in one C{MEDIA_URL:} reply, inline
    images in one C{IMAGE_BASE64:} reply (a group mixing both becomes two).
    C{waitTime} is the group's media_wait_time (0 or NULL: the bridge's own).
    """
    urls, inline = [], []
    for index, item in enumerate(_jsonList(value, column)):
        isUrl, source = _source(item, column, index)
        (urls if isUrl else inline).append(source)
    wait = int(waitTime) if waitTime else None
    replies = []
    if urls:
        replies.append(Reply.media(*urls, waitTime=wait))
    if inline:
        replies.append(Reply.image(*inline, waitTime=wait))
    return tuple(replies)


def partsOf(row: dict[str, Any]) -> tuple[list[Part], list[str]]:
    """
    The parts a kb_schedule row sends, in order (text, images 1, images 2), and the
    problems of the parts that cannot be sent (those are left out).
    """
    parts: list[Part] = []
    problems: list[str] = []
    text = row.get("message_text")
    if isinstance(text, str) and text.strip():
        parts.append(Part(TEXT, (Reply(text),), text))
    for name, column, wait in ((IMAGES_1, "message_images_1", "media_wait_time_1"),
                               (IMAGES_2, "message_images_2", "media_wait_time_2")):
        try:
            replies = imageGroup(row.get(column), row.get(wait), column)
        except ContentError as e:
            problems.append(str(e))
            continue
        if replies:
            raw = row.get(column)
            parts.append(Part(name, replies, raw.decode() if isinstance(raw, bytes) else raw))
    return parts, problems
