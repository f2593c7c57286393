"""The journal's slow file work (deleting trimmed segments, the directory's fsync) happens in the sync, not on the reactor thread."""

from __future__ import annotations

import os
import shutil
import stat
import tempfile

from twisted.trial.unittest import SynchronousTestCase

from kkobot.chatlog import journal as journal_module
from kkobot.chatlog.journal import Journal


class JournalFileTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="kkobot-journal-")
        self.addCleanup(shutil.rmtree, self.directory, True)
        self.directorySyncs: list[str] = []
        real = journal_module.fsyncDirectory

        def recordingFsync(path: str) -> None:
            self.directorySyncs.append(path)
            real(path)

        self.patch(journal_module, "fsyncDirectory", recordingFsync)
        # Segments of two rows each.
        self.journal = Journal(self.directory, segmentBytes=40)
        self.journal.open()
        self.addCleanup(self.journal.close)

    def segmentFiles(self) -> list[str]:
        return sorted(n for n in os.listdir(self.directory) if n.endswith(".jnl"))

    def fill(self, rows: int) -> None:
        for i in range(rows):
            self.journal.append("chat", (f"row {i}", i))

    def test_trimmedSegmentsAreDeletedByTheNextSync(self) -> None:
        self.fill(12)
        before = self.segmentFiles()
        self.assertGreater(len(before), 3)
        removed = self.journal.trim(6)
        self.assertGreater(removed, 0)
        # The journal forgets them at once; their files wait for the sync's thread.
        self.assertEqual(len(self.journal.segments), len(before) - removed)
        self.assertEqual(self.segmentFiles(), before)
        self.assertTrue(self.journal.trimmed)
        targets = self.journal.syncTargets()
        Journal.syncFds(targets)
        self.journal.synced(targets[0])
        self.assertEqual(len(self.segmentFiles()), len(before) - removed)
        self.assertFalse(self.journal.trimmed)
        # Nothing the database still needs was deleted: every later row reads back.
        snapshot = self.journal.snapshot()
        entries, _, _ = self.journal.read(self.journal.start(), 7, 100, snapshot)
        self.assertEqual([e.values[1] for e in entries], list(range(6, 12)))

    def test_aNewSegmentsDirectoryIsSyncedWithTheNextBatch(self) -> None:
        # When the journal opens; a rotation only marks the directory for the sync.
        atOpen = list(self.directorySyncs)
        self.assertIn(self.directory, atOpen)
        self.fill(12)
        self.assertGreater(len(self.segmentFiles()), 3)
        self.assertEqual(self.directorySyncs, atOpen)
        fds, _ = self.journal.syncTargets()
        directory = os.stat(self.directory)
        synced = [fd for fd in fds if os.path.samestat(os.fstat(fd), directory)]
        self.assertEqual(len(synced), 1)
        self.assertTrue(stat.S_ISDIR(os.fstat(synced[0]).st_mode))
        # Until the next rotation the directory has nothing new to sync.
        fds, _ = self.journal.syncTargets()
        self.assertFalse([fd for fd in fds if os.path.samestat(os.fstat(fd), directory)])

    def test_closeDeletesWhatWasTrimmed(self) -> None:
        self.fill(12)
        before = self.segmentFiles()
        removed = self.journal.trim(6)
        self.journal.close()
        self.assertEqual(len(self.segmentFiles()), len(before) - removed)
