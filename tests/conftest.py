"""Session checks: a test that leaves a thread pool running fails the run instead of hanging it."""

from __future__ import annotations

import gc
import threading

from twisted.python.threadpool import ThreadPool


def pytest_sessionfinish(session, exitstatus):
    # A ConnectionPool made and never closed starts its threads the next time the
    # reactor runs; their non-daemon threads would keep the process alive for ever.
    left = [t.name for t in threading.enumerate() if t.name.startswith("PoolThread")
            and "twisted.internet.reactor" not in t.name and not t.daemon]
    if not left:
        return
    pools = [o for o in gc.get_objects() if isinstance(o, ThreadPool) and o.started]
    for pool in pools:
        if pool.name != "twisted.internet.reactor":
            pool.stop()
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line(
            f"a test left thread pool(s) running: {', '.join(left)} (close every "
            "ConnectionPool / Database a test makes)", red=True)
    session.exitstatus = 1
