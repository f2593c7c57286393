"""The local append-only journal: every log row hits the OS before its reply goes out."""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass
from typing import Any, Iterator, NamedTuple

import orjson

from kkobot.files import (
    PRIVATE_DIR, PRIVATE_FILE, ensureDirectory, fsyncDirectory, tighten, writeAtomically,
)
from kkobot.logs import Logger

log = Logger()

ID_FILE = "journal.id"
SUFFIX = ".jnl"
# The one call that puts rows in the OS; tests make it fail like a full disk.
_write = os.write

# Segment names carry their first sequence number, zero-padded so they sort by name.
NAME_DIGITS = 20

_encode = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class Entry(NamedTuple):
    """One journaled row: its sequence number, its kind (table), its column values."""

    seq: int
    kind: str
    values: tuple[Any, ...]
    # The values as the journal line holds them, when known: the JSON array's text
    # without its brackets. The MySQL INSERT is made from these bytes instead of
    # from each value. (A copy, not orjson's own output: that keeps a 4 KB buffer.)
    encoded: bytes | None = None


@dataclass(frozen=True)
class Cursor:
    """Where reading continues: a segment (by first seq) and a byte offset in it."""

    segment: int
    offset: int


def encodeValues(values: tuple[Any, ...]) -> bytes:
    """A row's values as the JSON array a journal line holds."""
    try:
        return orjson.dumps(values)
    except orjson.JSONEncodeError:
        # What orjson refuses (big ints, lone surrogates) gets json's answer.
        return _encode(values).encode("utf-8")


def encodeLine(seq: int, kind: str, values: tuple[Any, ...], payload: bytes | None = None) -> bytes:
    if payload is None:
        payload = encodeValues(values)
    return _lineFormat(kind) % (seq, payload)


# kind -> b"%d\t<kind>\t%s\n": a line is one formatting of its seq and payload.
_lineFormats: dict[str, bytes] = {}


def _lineFormat(kind: str) -> bytes:
    form = _lineFormats.get(kind)
    if form is None:
        form = _lineFormats[kind] = b"%d\t" + kind.encode("ascii").replace(b"%", b"%%") + b"\t%s\n"
    return form


class Journal:
    """
    Rows appended to numbered segment files in one directory.

    L{add} queues a row and L{flush} writes every queued row with one C{os.write}
    (a SIGKILL cannot lose them once flushed: they are in the kernel); L{append} is
    both at once; L{syncTargets} + L{syncFds} (in a thread) + L{synced} make them durable
    against power loss, one C{fsync} per batch. A segment is dropped by L{trim} once
    every row in it is committed elsewhere, and its file deleted by the next
    L{syncFds}: deleting megabytes, like the directory's fsync after a new segment,
    takes milliseconds that the reactor thread does not wait for. Not thread-safe:
    append, rotate and trim run on the reactor thread; only L{syncFds} and L{read}
    may run in a worker thread.
    """

    def __init__(self, directory: str, segmentBytes: int = 8 * 1024 * 1024) -> None:
        self.directory = directory
        self.segmentBytes = segmentBytes
        self.journalId = ""
        self.nextSeq = 1
        # First seq of every segment on disk, oldest first; the last is the active one.
        self.segments: list[int] = []
        self._sizes: dict[int, int] = {}
        self.totalBytes = 0
        self._fd: int | None = None
        self._retired: list[int] = []
        # The directory, fsynced with the next batch once a segment was created in it.
        self._dirFd: int | None = None
        self._dirDirty = False
        # Files of trimmed segments, deleted by the next syncFds (or at close).
        self._doomed: list[str] = []
        # Lines added and not yet written (L{flush}); non-empty is L{queued}.
        self.lines: list[bytes] = []
        self.dirty = False

    # -- opening

    def open(self) -> None:
        """Read the directory, find the next seq, start a fresh active segment."""
        # Chat text: the server user's alone (older versions followed the umask).
        ensureDirectory(self.directory, PRIVATE_DIR)
        tighten(self.directory, PRIVATE_DIR)
        idPath = os.path.join(self.directory, ID_FILE)
        try:
            with open(idPath, encoding="ascii") as f:
                self.journalId = f.read().strip()
        except FileNotFoundError:
            self.journalId = ""
        if not self.journalId:
            # A new directory is a new journal: its seqs cannot collide with the
            # batches an older (deleted) journal left in the database.
            self.journalId = uuid.uuid4().hex
            writeAtomically(idPath, self.journalId.encode("ascii"), PRIVATE_FILE)
        starts = sorted(
            int(name[: -len(SUFFIX)])
            for name in os.listdir(self.directory)
            if name.endswith(SUFFIX) and name[: -len(SUFFIX)].isdigit()
        )
        self.segments = starts
        nextSeq = 1
        for start in starts:
            self._sizes[start] = os.path.getsize(self._path(start))
            nextSeq = max(nextSeq, start)
        if starts:
            last = self._lastSeq(starts[-1])
            if last is not None:
                nextSeq = max(nextSeq, last + 1)
        self.nextSeq = nextSeq
        self.totalBytes = sum(self._sizes.values())
        self._dirFd = os.open(self.directory, os.O_RDONLY | os.O_CLOEXEC)
        self._startSegment()
        # At the start the directory is made durable at once (nothing waits yet).
        fsyncDirectory(self.directory)
        self._dirDirty = False

    @property
    def hasRows(self) -> bool:
        """True when rows from before this run (or this run) are on disk."""
        return bool(self.segments) and self.nextSeq > self.segments[0]

    def _lastSeq(self, start: int) -> int | None:
        last = None
        for entry, _ in _entries(self._path(start), 0, None, 0):
            last = entry.seq
        return last

    def _path(self, start: int) -> str:
        return os.path.join(self.directory, f"{start:0{NAME_DIGITS}d}{SUFFIX}")

    def _startSegment(self) -> None:
        start = self.nextSeq
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        if self.segments and self.segments[-1] == start:
            # Last run's segment with no complete row in it (empty, or one torn line):
            # start it over, or our first line would be glued to the torn one.
            flags |= os.O_TRUNC
        else:
            self.segments.append(start)
        self._fd = os.open(self._path(start), flags, 0o600)
        self.totalBytes -= self._sizes.get(start, 0)
        self._sizes[start] = 0
        # Its name is durable with the next fsync of the directory (L{syncTargets}),
        # before any row in it counts as durable.
        self._dirDirty = True

    # -- writing

    def append(self, kind: str, values: tuple[Any, ...]) -> int:
        """Write one row; return its seq. The row survives a SIGKILL once this returns."""
        seq = self.add(kind, values)
        self.flush()
        return seq

    def add(self, kind: str, values: tuple[Any, ...], payload: bytes | None = None) -> int:
        """Queue one row for the next L{flush} (C{payload}: its L{encodeValues}, if made); return its seq."""
        assert self._fd is not None, "journal not open"
        seq = self.nextSeq
        if payload is None:
            payload = encodeValues(values)
        form = _lineFormats.get(kind)
        if form is None:
            form = _lineFormat(kind)
        self.lines.append(form % (seq, payload))
        self.nextSeq = seq + 1
        return seq

    @property
    def trimmed(self) -> bool:
        """True while files of trimmed segments wait for the next L{syncFds} to delete them."""
        return bool(self._doomed)

    @property
    def queued(self) -> bool:
        """True while rows are added but not yet flushed to the OS."""
        return bool(self.lines)

    def flush(self) -> None:
        """
        Write every queued row, one C{os.write}; they survive a SIGKILL from here on.

        On an C{OSError} (a full disk) whatever part of them reached the file is cut
        off again, the rows stay queued for the next flush, and the error is raised.
        """
        if not self.lines:
            return
        assert self._fd is not None, "journal not open"
        lines = self.lines
        data = b"".join(lines)
        self.lines = []
        active = self.segments[-1]
        try:
            written = _write(self._fd, data)
            while written < len(data):
                # Only a full disk writes short; the rest raises, or fits after all.
                written += _write(self._fd, data[written:])
        except OSError:
            try:
                os.ftruncate(self._fd, self._sizes[active])
            except OSError:
                log.failure("[DB] could not cut a partial write from journal {dir}",
                            dir=self.directory)
            self.lines = lines
            raise
        size = self._sizes[active] + len(data)
        self._sizes[active] = size
        self.totalBytes += len(data)
        self.dirty = True
        if size >= self.segmentBytes:
            self.rotate()

    def rotate(self) -> None:
        """Start a new active segment; the old fd is closed after its next sync."""
        # A segment is named by its first seq: queued rows belong to this one.
        self.flush()
        if self._fd is None or self._sizes[self.segments[-1]] == 0:
            return
        self._retired.append(self._fd)
        self._fd = None
        self._startSegment()

    # -- group commit

    def syncTargets(self) -> tuple[list[int], list[str]]:
        """
        The fds to fsync for everything written so far, and the trimmed segments'
        files to delete: L{syncFds} takes both (then call L{synced} with the fds).
        """
        try:
            self.flush()
        except OSError:
            pass  # the rows stay queued; the chat log retries and pauses reading

        self.dirty = False
        fds = list(self._retired)
        if self._fd is not None:
            fds.append(self._fd)
        if self._dirDirty and self._dirFd is not None:
            self._dirDirty = False
            fds.append(self._dirFd)
        doomed, self._doomed = self._doomed, []
        return fds, doomed

    @staticmethod
    def syncFds(targets: tuple[list[int], list[str]]) -> None:
        """Blocking: run in a thread. fsync the fds, delete the files."""
        fds, doomed = targets
        try:
            for fd in fds:
                os.fsync(fd)
        finally:
            _remove(doomed)

    def synced(self, fds: list[int]) -> None:
        for fd in fds:
            if fd in self._retired:
                self._retired.remove(fd)
                os.close(fd)

    # -- trimming

    def trim(self, committed: int) -> int:
        """Drop segments whose every row has seq <= committed (their files go with the next sync); return how many."""
        removed = 0
        while len(self.segments) > 1 and self.segments[1] - 1 <= committed:
            start = self.segments.pop(0)
            self.totalBytes -= self._sizes.pop(start, 0)
            self._doomed.append(self._path(start))
            removed += 1
        return removed

    def close(self) -> None:
        if self._fd is not None:
            try:
                self.flush()
            except OSError:
                # A full disk at exit: the chat log has said what that costs.
                self.lines = []
        for fd in self._retired:
            os.close(fd)
        self._retired = []
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._dirFd is not None:
            os.close(self._dirFd)
            self._dirFd = None
        doomed, self._doomed = self._doomed, []
        _remove(doomed)

    # -- reading (safe in a worker thread, given a snapshot taken on the reactor)

    def start(self) -> Cursor:
        return Cursor(self.segments[0] if self.segments else self.nextSeq, 0)

    def snapshot(self) -> list[tuple[int, int]]:
        """(first seq, size) of every segment: what a reader may read, complete lines only."""
        # Queued rows have seqs already: a reader must find them in the files.
        self.flush()
        return [(start, self._sizes[start]) for start in self.segments]

    def read(
        self, cursor: Cursor, fromSeq: int, limit: int, snapshot: list[tuple[int, int]]
    ) -> tuple[list[Entry], Cursor, bool]:
        """
        Rows with seq >= fromSeq from C{cursor} on, at most C{limit}, within C{snapshot}.

        @return: the rows, where to continue, and True when the snapshot was read to
            its end (so the next row is the first one appended after the snapshot).
        """
        out: list[Entry] = []
        position = cursor
        for start, size in snapshot:
            if start < position.segment:
                continue
            offset = position.offset if start == position.segment else 0
            position = Cursor(start, offset)
            for entry, end in _entries(self._path(start), offset, size, fromSeq):
                position = Cursor(start, end)
                out.append(entry)
                if len(out) >= limit:
                    return out, position, False
        return out, position, True


def _remove(paths: list[str]) -> None:
    for path in paths:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass


def _entries(
    path: str, offset: int, size: int | None, fromSeq: int
) -> Iterator[tuple[Entry, int]]:
    """Well-formed rows with seq >= fromSeq of one segment, from `offset` up to `size` bytes."""
    try:
        f = open(path, "rb")
    except FileNotFoundError:
        return
    with f:
        f.seek(offset)
        data = f.read() if size is None else f.read(max(0, size - offset))
    position = offset
    lines = data.split(b"\n")
    tail = lines.pop()
    for body in lines:
        line = body + b"\n"
        position += len(line)
        try:
            seq, kind, payload = body.split(b"\t", 2)
            if int(seq) < fromSeq:
                continue
            entry = Entry(int(seq), kind.decode("ascii"), tuple(json.loads(payload)), payload[1:-1])
        except (ValueError, UnicodeDecodeError):
            log.warn("[DB] journal {path}: ignoring a damaged line", path=path)
            continue
        yield entry, position
    if tail:
        # A torn last line (power loss before fsync, or a write cut by a crash).
        log.warn("[DB] journal {path}: ignoring a torn last line", path=path)
