"""SIGHUP reloads the command plugins; the reply text `# reload` gives the admin."""

from __future__ import annotations

import signal
import threading
from typing import Any

from twisted.application.service import Service

from kkobot.commands.loader import ScanReport
from kkobot.logs import Logger

log = Logger()


def describeReport(report: ScanReport, commandCount: int) -> str:
    """A short Korean summary of one reload, failures included (for the admin)."""

    def names(modules: list[str]) -> str:
        return ", ".join(m.rsplit(".", 1)[-1] for m in modules) or "없음"

    lines = [
        f"플러그인을 다시 불러왔습니다. 명령 {commandCount}개.",
        f"추가: {names(report.added)} / 변경: {names(report.changed)} / 삭제: {names(report.removed)}",
    ]
    for failure in report.failures:
        filename = failure.path.rsplit("/", 1)[-1]
        if failure.refused:
            # The owner or mode, not the code: the fix is on the server (its log says how).
            lines.append(f"거부: {filename} — 다른 사용자가 바꿀 수 있어 실행하지 않았습니다 "
                         "(서버 로그 참고)")
        else:
            lines.append(f"실패: {filename} — {failure.summary} (이전 버전 유지)")
    return "\n".join(lines)


class SighupReloader(Service):
    """While running, SIGHUP re-scans the plugins (on the reactor thread, never in the handler)."""

    def __init__(self, commands: Any, reactor: Any) -> None:
        self.commands = commands
        self.reactor = reactor
        self._previous: Any = None
        self._installed = False

    def startService(self) -> None:
        Service.startService(self)
        # Signal handlers can only be set from the main thread, and not on every OS.
        if hasattr(signal, "SIGHUP") and threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGHUP, self._onSignal)
            self._installed = True

    def stopService(self) -> None:
        Service.stopService(self)
        if self._installed:
            signal.signal(signal.SIGHUP, self._previous or signal.SIG_DFL)
            self._installed = False

    def _onSignal(self, signum: int, frame: Any) -> None:
        # The handler may interrupt reactor code anywhere; do the work in the loop.
        self.reactor.callFromThread(self.reload)

    def reload(self) -> None:
        log.info("[RELOAD] SIGHUP: reloading plugins")
        try:
            self.commands.reload()
        except Exception:
            log.failure("[RELOAD] reload failed")
