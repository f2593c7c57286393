"""The in-process signed workload: every line answered, and with the journal, every row journaled first and stored once."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest
from tests.support import paths

sys.path.insert(0, str(Path(paths.REPO)))

from benchmarks import signed_path  # noqa: E402


@pytest.mark.parametrize("auth", [True, False])
def test_journal_workload_answers_every_line_and_stores_every_row_once(tmp_path, auth):
    w = signed_path.Workload(5, 250, auth, "3.2", str(tmp_path), "journal")
    assert w.push(250) == 250
    assert w.stored() == 500
    # The handshakes' ping rows too, each once: everything journaled is committed.
    assert w.chatlog.pingRowsWritten == 5
    for log in w.chatlog.logs:
        assert log.committed == log.journal.nextSeq - 1


def test_journal_workload_holds_the_reply_until_its_rows_are_written(tmp_path):
    w = signed_path.Workload(2, 2, False, "3.2", str(tmp_path), "journal")
    proto, transport = w.conns[0]
    journalDir = os.path.join(str(tmp_path), "journal")
    before = sum(os.path.getsize(os.path.join(journalDir, n))
                 for n in os.listdir(journalDir) if n.endswith(".jnl"))
    proto.dataReceived(w.lines[0][1])
    assert b"messageResponse" not in transport.value()
    w.clock.advance(0)
    assert b"messageResponse" in transport.value()
    after = sum(os.path.getsize(os.path.join(journalDir, n))
                for n in os.listdir(journalDir) if n.endswith(".jnl"))
    assert after > before


def test_list_workload_is_the_old_one(tmp_path):
    w = signed_path.Workload(5, 100, True, "3.2", str(tmp_path), "list")
    assert w.push(100) == 100
    assert w.stored() is None
    assert sum(1 for row in w.chatlog.rows if row.KIND == "chat") == 200


def test_main_exit_status(tmp_path, capsys):
    assert signed_path.main(["--messages", "120", "--conns", "4"]) == 0
    out = capsys.readouterr().out
    assert "chatlog journal" in out and "chat rows in the database 240 of 240" in out
