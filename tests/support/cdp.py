"""A headless Chromium driven over the DevTools protocol on a pipe (--remote-debugging-pipe), from Twisted."""

from __future__ import annotations

import json
import os
from typing import Any, Callable

from twisted.internet import defer, protocol

CHROMIUM = "/usr/bin/chromium"


class ChromiumPipe(protocol.ProcessProtocol):
    """
    Chromium reads DevTools commands from its fd 3 and writes answers and events to
    fd 4, each a JSON message ended by a NUL byte.
    """

    def __init__(self) -> None:
        self._buffer = b""
        self._nextId = 0
        self._answers: dict[int, defer.Deferred] = {}
        self._eventWaiters: list[tuple[Callable[[dict], bool], defer.Deferred]] = []
        self.ended: defer.Deferred = defer.Deferred()
        self.stderr = b""

    def childDataReceived(self, fd: int, data: bytes) -> None:
        if fd == 2:
            self.stderr = (self.stderr + data)[-20000:]
            return
        if fd != 4:
            return
        self._buffer += data
        while b"\0" in self._buffer:
            raw, self._buffer = self._buffer.split(b"\0", 1)
            self._message(json.loads(raw))

    def _message(self, message: dict[str, Any]) -> None:
        if "id" in message:
            d = self._answers.pop(message["id"])
            if "error" in message:
                d.errback(RuntimeError(f"DevTools error: {message['error']}"))
            else:
                d.callback(message.get("result", {}))
            return
        for waiter in list(self._eventWaiters):
            if waiter[0](message):
                self._eventWaiters.remove(waiter)
                waiter[1].callback(message.get("params", {}))

    def processEnded(self, reason: Any) -> None:
        for d in list(self._answers.values()) + [w[1] for w in self._eventWaiters]:
            d.errback(RuntimeError("chromium exited: " + self.stderr.decode("utf-8", "replace")[-2000:]))
        self._answers.clear()
        self._eventWaiters.clear()
        self.ended.callback(None)

    def call(self, method: str, sessionId: str | None = None, **params: Any) -> defer.Deferred:
        self._nextId += 1
        message: dict[str, Any] = {"id": self._nextId, "method": method, "params": params}
        if sessionId is not None:
            message["sessionId"] = sessionId
        d: defer.Deferred = defer.Deferred()
        self._answers[self._nextId] = d
        self.transport.writeToChild(3, json.dumps(message).encode() + b"\0")
        return d

    def event(self, method: str, sessionId: str | None = None) -> defer.Deferred:
        """The next event C{method} (register before causing it)."""
        d: defer.Deferred = defer.Deferred()
        self._eventWaiters.append(
            (lambda m: m.get("method") == method and m.get("sessionId") == sessionId, d)
        )
        return d


def launch(reactor: Any, profileDir: str) -> ChromiumPipe:
    pipe = ChromiumPipe()
    args = [
        CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--no-first-run", "--disable-dev-shm-usage", f"--user-data-dir={profileDir}",
        "--remote-debugging-pipe", "about:blank",
    ]
    env = {"HOME": profileDir, "PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8"}
    reactor.spawnProcess(pipe, CHROMIUM, args, env=env,
                         childFDs={0: "w", 1: "r", 2: "r", 3: "w", 4: "r"})
    return pipe


class Page:
    """One tab, attached in flat mode so commands carry its session id."""

    def __init__(self, pipe: ChromiumPipe, sessionId: str) -> None:
        self.pipe = pipe
        self.sessionId = sessionId

    @classmethod
    @defer.inlineCallbacks
    def open(cls, pipe: ChromiumPipe):
        target = yield pipe.call("Target.createTarget", url="about:blank")
        attached = yield pipe.call("Target.attachToTarget", targetId=target["targetId"], flatten=True)
        page = cls(pipe, attached["sessionId"])
        yield page.call("Page.enable")
        return page

    def call(self, method: str, **params: Any) -> defer.Deferred:
        return self.pipe.call(method, sessionId=self.sessionId, **params)

    @defer.inlineCallbacks
    def loading(self, start: Callable[[], defer.Deferred]):
        """Run C{start} (a navigation, a form submit) and wait for the page it loads."""
        loaded = self.pipe.event("Page.loadEventFired", self.sessionId)
        yield start()
        yield loaded

    @defer.inlineCallbacks
    def evaluate(self, expression: str):
        answer = yield self.call("Runtime.evaluate", expression=expression, returnByValue=True)
        if "exceptionDetails" in answer:
            raise RuntimeError(f"page script failed: {answer['exceptionDetails']}")
        return answer["result"].get("value")
