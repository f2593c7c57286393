"""Instructions per message of the in-process signed workload (signed_path.py), counted by valgrind's callgrind."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
COLLECTED = re.compile(rb"Collected : (\d+)")


def python() -> str:
    venv = REPO / ".venv" / "bin" / "python"
    return str(venv) if venv.exists() else sys.executable


def count(messages: int, prebuild: int, extra: list[str], outDir: str) -> int:
    """Instructions of one whole run of signed_path.py pushing C{messages} of C{prebuild} lines."""
    out = os.path.join(outDir, f"callgrind.{messages}")
    argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", python(),
            str(HERE / "signed_path.py"), "--messages", str(messages), "--prebuild", str(prebuild),
            *extra]
    done = subprocess.run(argv, capture_output=True, timeout=3600)
    found = COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        sys.stderr.write(done.stdout.decode(errors="replace") + done.stderr.decode(errors="replace")[-2000:])
        raise SystemExit(f"signed_path.py failed under valgrind (status {done.returncode})")
    return int(found.group(1))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__,
        epilog="Other options (--no-auth, --no-events, --conns, --form) go to signed_path.py. The same lines are "
               "built in both runs; only how many are pushed differs, so setup and building cancel out.")
    p.add_argument("--messages", type=int, default=4000, help="lines pushed in the second run")
    p.add_argument("--chatlog", choices=["journal", "list"], default="journal",
                   help="signed_path.py's chat log: the server's journal, barrier and batches "
                        "(default), or rows kept in a list (the figures before the journal was counted)")
    p.add_argument("--keep", metavar="DIR", help="keep the callgrind output files in DIR")
    a, extra = p.parse_known_args(argv)
    extra = [*extra, "--chatlog", a.chatlog]
    if shutil.which("valgrind") is None:
        print("valgrind is not installed", file=sys.stderr)
        return 2
    outDir = a.keep or tempfile.mkdtemp(prefix="kkobot-callgrind-")
    os.makedirs(outDir, exist_ok=True)
    try:
        base = count(0, a.messages, extra, outDir)
        full = count(a.messages, a.messages, extra, outDir)
    finally:
        if not a.keep:
            shutil.rmtree(outDir, ignore_errors=True)
    per = (full - base) / a.messages
    print(f"instructions: setup {base:,}, with {a.messages} messages {full:,}: "
          f"{per:,.0f} per message ({' '.join(extra)}; default auth on, 50 conns, 3.2 lines)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
