"""What kkobot creates on disk is the server user's: explicit modes, whatever the umask."""

from __future__ import annotations

import os
import stat

from twisted.internet.testing import MemoryReactorClock
from twisted.trial.unittest import SynchronousTestCase

from kkobot import files
from kkobot.chatlog.log import appendRejected, rejectedPath
from kkobot.config import DBSettings
from kkobot.db.pool import Database
from kkobot.chatlog.journal import Journal
from kkobot.logs import FileLogService
from tests.support import tempDir


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


class PermissiveUmaskTests(SynchronousTestCase):
    """Under umask 0 (the worst a shell can hand over) nothing is readable to others."""

    def setUp(self) -> None:
        self.root = tempDir(self)
        old = os.umask(0)
        self.addCleanup(os.umask, old)

    def test_sqliteDatabaseAndItsWalAndShm(self) -> None:
        path = os.path.join(self.root, "var", "kkobot_test.sqlite3")
        database = Database(DBSettings("sqlite", "", 0, "", "", "kkobot_test", path),
                            reactor=MemoryReactorClock())
        # The pool's first connection opens the file and switches to WAL: do it here,
        # on this thread, with the pool's own open function.
        conn = database.pool.connect()
        self.addCleanup(database.close)
        conn.cursor().execute("CREATE TABLE t (x)")
        conn.commit()
        self.assertEqual(mode(os.path.join(self.root, "var")), 0o700)
        for name in (path, path + "-wal", path + "-shm"):
            self.assertEqual(mode(name), 0o600, name)

    def test_olderDatabaseFilesAreTightened(self) -> None:
        path = os.path.join(self.root, "kkobot_test.sqlite3")
        for name in (path, path + "-wal"):
            with open(name, "wb"):
                pass
            os.chmod(name, 0o644)
        database = Database(DBSettings("sqlite", "", 0, "", "", "kkobot_test", path),
                            reactor=MemoryReactorClock())
        self.addCleanup(database.close)
        self.assertEqual((mode(path), mode(path + "-wal")), (0o600, 0o600))

    def test_journalFoldersSegmentsIdAndRejectedRows(self) -> None:
        directory = os.path.join(self.root, "var", "journal", "test")
        journal = Journal(directory)
        journal.open()
        journal.append("chat", ("방", "안녕"))
        journal.close()
        for folder in ("var", "var/journal", "var/journal/test"):
            self.assertEqual(mode(os.path.join(self.root, folder)), 0o700, folder)
        names = os.listdir(directory)
        self.assertEqual(len(names), 2, names)  # a segment and journal.id
        for name in names:
            self.assertEqual(mode(os.path.join(directory, name)), 0o600, name)
        appendRejected(rejectedPath(directory), b'{"row": 1}\n')
        self.assertEqual(mode(rejectedPath(directory)), 0o600)

    def test_olderJournalFolderIsTightened(self) -> None:
        directory = os.path.join(self.root, "journal")
        os.mkdir(directory, 0o755)
        journal = Journal(directory)
        journal.open()
        journal.close()
        self.assertEqual(mode(directory), 0o700)

    def test_serverLog(self) -> None:
        directory = os.path.join(self.root, "logs")
        service = FileLogService(directory)
        service.startService()
        service.stopService()
        self.assertEqual(mode(directory), 0o750)
        self.assertEqual(mode(os.path.join(directory, "server.log")), 0o640)


class HelperTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.root = tempDir(self)

    def test_tightenUmaskNeverLoosens(self) -> None:
        old = os.umask(0o022)
        self.addCleanup(os.umask, old)
        self.assertEqual(files.tightenUmask(), 0o027)
        os.umask(0o077)
        self.assertEqual(files.tightenUmask(), 0o077)
        self.assertEqual(os.umask(0o077), 0o077)

    def test_ensureDirectoryKeepsAnExistingFolder(self) -> None:
        existing = os.path.join(self.root, "mine")
        os.mkdir(existing, 0o755)
        os.chmod(existing, 0o755)
        files.ensureDirectory(os.path.join(existing, "a", "b"), 0o700)
        self.assertEqual(mode(existing), 0o755)
        self.assertEqual(mode(os.path.join(existing, "a")), 0o700)
        self.assertEqual(mode(os.path.join(existing, "a", "b")), 0o700)
