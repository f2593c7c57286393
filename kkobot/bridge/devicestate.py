"""The device statuses a server knows, in a local file: an outage (or a restart during one) cannot take them."""

from __future__ import annotations

import json
from dataclasses import asdict
from typing import Any, Callable

from twisted.internet import defer, threads

from kkobot.bridge.devicetable import STATUSES, KeyShape
from kkobot.files import writeAtomically
from kkobot.logs import Logger

log = Logger()

VERSION = 1

Key = tuple[str, str]


def encodeState(
    shape: KeyShape, statuses: dict[Key, str], unrecorded: dict[Key, dict[str, Any]]
) -> bytes:
    """The file's bytes: the key shape, every known status, the registrations not yet recorded."""
    return json.dumps({
        "version": VERSION,
        "keys": asdict(shape),
        "devices": [[bot, device, status] for (bot, device), status in sorted(statuses.items())],
        "unrecorded": [info for _, info in sorted(unrecorded.items())],
    }, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def decodeState(
    data: bytes,
) -> tuple[KeyShape, dict[Key, str], list[dict[str, Any]]]:
    """L{encodeState}'s output back; ValueError (or KeyError, TypeError) when it is not that."""
    state = json.loads(data)
    if state.get("version") != VERSION:
        raise ValueError(f"unknown version {state.get('version')!r}")
    keys = state["keys"]
    shape = KeyShape(int(keys["botWidth"]), int(keys["deviceWidth"]), bool(keys["byDevice"]))
    statuses: dict[Key, str] = {}
    for bot, device, status in state["devices"]:
        if not (isinstance(bot, str) and isinstance(device, str) and status in STATUSES):
            raise ValueError("a device entry is not [bot, device, status]")
        statuses[(bot, device)] = status
    unrecorded = [dict(info) for info in state.get("unrecorded", [])]
    for info in unrecorded:
        if not (isinstance(info.get("bot"), str) and isinstance(info.get("device"), str)):
            raise ValueError("an unrecorded device has no bot or device")
    return shape, statuses, unrecorded


class StateFile:
    """
    One JSON file (mode 0600), replaced atomically in a worker thread whenever what
    it holds changed; writes that come while one is under way are folded into one.
    """

    def __init__(self, path: str, inThread: Callable[..., defer.Deferred] = threads.deferToThread) -> None:
        self.path = path
        self._inThread = inThread
        self._writing: defer.Deferred[None] | None = None
        self._next: Callable[[], bytes] | None = None

    def load(self) -> tuple[KeyShape, dict[Key, str], list[dict[str, Any]]] | None:
        """What the file holds (read once at start: a small file), or None."""
        try:
            with open(self.path, "rb") as f:
                data = f.read()
        except FileNotFoundError:
            return None
        except OSError as e:
            log.warn("[AUTH] cannot read the device file {path}: {error}", path=self.path, error=e)
            return None
        try:
            return decodeState(data)
        except (ValueError, KeyError, TypeError) as e:
            log.warn(
                "[AUTH] ignoring the device file {path} ({error}); statuses are read "
                "from the database when it answers", path=self.path, error=e,
            )
            return None

    def save(self, snapshot: Callable[[], bytes]) -> None:
        """Write C{snapshot()} (taken when the write starts) soon."""
        self._next = snapshot
        if self._writing is None:
            self._writeNext()

    def _writeNext(self) -> None:
        snapshot, self._next = self._next, None
        if snapshot is None:
            return
        d = self._inThread(writeAtomically, self.path, snapshot())
        d.addErrback(lambda f: log.error(
            "[AUTH] cannot write the device file {path}: {error}", path=self.path,
            error=f.getErrorMessage()))
        self._writing = d
        d.addBoth(self._written)

    def _written(self, _: Any) -> None:
        self._writing = None
        self._writeNext()

    def settled(self) -> defer.Deferred[None]:
        """Fires once every write asked for so far is done."""
        if self._writing is None and self._next is None:
            return defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()

        def check(_: Any = None) -> None:
            if self._writing is None and self._next is None:
                d.callback(None)
            else:
                assert self._writing is not None
                self._writing.addBoth(lambda r: (check(), r)[1])

        check()
        return d
