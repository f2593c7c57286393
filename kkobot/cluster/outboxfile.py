"""The messages an instance holds for absent bots, kept in a file so a restart does not lose them."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from typing import Any

from kkobot.cluster.message import RoutedMessage
from kkobot.files import PRIVATE_DIR, ensureDirectory, writeAtomically
from kkobot.logs import Logger

log = Logger()

# The file is rewritten with only what is still held once this many records are done.
COMPACT_AFTER = 2000


@dataclass
class Kept:
    """One held message as the file gives it back."""

    message: RoutedMessage
    requeue: bool
    # Set when the file also says what became of it (then it is not held any more).
    state: str | None = None
    reason: str | None = None


def fileName(instance: str) -> str:
    """One file per instance name: instances may share a var directory."""
    return "outbox-" + re.sub(r"[^A-Za-z0-9_.-]", "_", instance) + ".jsonl"


def _line(record: dict[str, Any]) -> bytes:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode("utf-8") + b"\n"


class OutboxFile:
    """
    An append-only file of JSON lines: C{hold} (a message and whether it goes back
    through REQUEUE) and C{done} (its id, final state, reason). Appends are one
    C{write} each, so a killed process loses nothing the OS has; a torn last line is
    skipped when read back. Rewritten (atomically) with the held messages alone at
    start and when enough records are done.
    """

    def __init__(self, directory: str, instance: str) -> None:
        self.directory = directory
        self.path = os.path.join(directory, fileName(instance))
        self._fd: int | None = None
        self._done = 0
        self._live: dict[str, tuple[RoutedMessage, bool]] = {}

    def load(self) -> list[Kept]:
        """Everything the file holds, in the order it was held (then opens it to append)."""
        ensureDirectory(self.directory, PRIVATE_DIR)
        kept: dict[str, Kept] = {}
        try:
            with open(self.path, "rb") as f:
                for raw in f:
                    self._read(raw, kept)
        except FileNotFoundError:
            pass
        self._live = {k: (v.message, v.requeue) for k, v in kept.items() if v.state is None}
        self._rewrite()
        return list(kept.values())

    def _read(self, raw: bytes, kept: dict[str, Kept]) -> None:
        try:
            record = json.loads(raw)
            if record["op"] == "hold":
                message = RoutedMessage.fromJSON(record["message"])
                kept[message.id] = Kept(message, bool(record.get("requeue")))
            elif record["op"] == "done" and record["id"] in kept:
                entry = kept[record["id"]]
                entry.state, entry.reason = record["state"], record.get("reason")
        except (ValueError, KeyError, TypeError):
            # A line cut by a crash, or one a later version wrote.
            log.warn("[MSG] {path}: skipped an unreadable outbox line", path=self.path)

    def held(self, message: RoutedMessage, requeue: bool) -> None:
        self._live[message.id] = (message, requeue)
        self._append({"op": "hold", "message": message.toJSON(), "requeue": requeue})

    def released(self, messageId: str, state: str | None = None, reason: str | None = None) -> None:
        """C{messageId} is not held here any more (delivered, expired, or handed to Redis)."""
        if self._live.pop(messageId, None) is None:
            return
        self._append({"op": "done", "id": messageId, "state": state, "reason": reason})
        self._done += 1
        if self._done >= COMPACT_AFTER and self._done > 2 * len(self._live):
            self._rewrite()

    def _append(self, record: dict[str, Any]) -> None:
        if self._fd is None:
            return
        try:
            os.write(self._fd, _line(record))
        except OSError as e:
            self._failed(e)

    def _rewrite(self) -> None:
        """Replace the file with one C{hold} line per message still held."""
        self.close()
        data = b"".join(_line({"op": "hold", "message": m.toJSON(), "requeue": r})
                        for m, r in self._live.values())
        try:
            # Small (bounded by outbound.max_queued) and rare: at start and after
            # COMPACT_AFTER releases, so it is written on the spot.
            writeAtomically(self.path, data)
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CLOEXEC)
        except OSError as e:
            self._failed(e)
        self._done = 0

    def _failed(self, e: OSError) -> None:
        log.error("[MSG] cannot write {path}: {error}; held messages may not survive a restart",
                  path=self.path, error=e.strerror or str(e))

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)
