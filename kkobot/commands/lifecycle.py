"""Plugins' `activate(ctx)` / `deactivate()` hooks, run on load, reload and shutdown."""

from __future__ import annotations

from types import ModuleType
from typing import Any

from twisted.application.service import Service
from twisted.internet import defer

from kkobot.commands.loader import ScanReport
from kkobot.commands.plugin import describeModule
from kkobot.logs import Logger

log = Logger()

HOOK_TIMEOUT = 10.0


class Lifecycle(Service):
    """
    Calls a plugin module's C{activate(ctx)} when it is loaded (at startup, or a new
    or changed file on reload) and C{deactivate()} when it goes (a changed file's
    old module first, a removed file, shutdown). Hooks may return Deferreds or be
    C{async def}; a hook that fails or takes longer than C{timeout} is logged and
    the server carries on. A changed file's new module is activated only after the
    old one's C{deactivate()} finished.
    """

    def __init__(self, commands: Any, services: Any, clock: Any, timeout: float = HOOK_TIMEOUT) -> None:
        self.commands = commands
        self.services = services
        self.clock = clock
        self.timeout = timeout
        self.active: dict[str, ModuleType] = {}
        self._tails: dict[str, defer.Deferred[None]] = {}

    def startService(self) -> None:
        Service.startService(self)
        if self._reloaded not in self.commands.listeners:
            self.commands.listeners.append(self._reloaded)
        self.sync()

    def stopService(self) -> defer.Deferred[None]:
        Service.stopService(self)
        if self._reloaded in self.commands.listeners:
            self.commands.listeners.remove(self._reloaded)
        stopping = [self._after(name, self._deactivate, module) for name, module in list(self.active.items())]
        self.active.clear()
        return defer.DeferredList(stopping).addCallback(lambda _: None)

    def sync(self) -> None:
        """Activate every module in use that is not active yet."""
        for module in self.commands.modules():
            if module.__name__ not in self.active:
                self._activateModule(module)

    def _reloaded(self, report: ScanReport) -> None:
        if not self.running:
            return
        for name, old in report.previous.items():
            if self.active.get(name) is old:
                del self.active[name]
                self._after(name, self._deactivate, old)
        self.sync()

    def _activateModule(self, module: ModuleType) -> None:
        self.active[module.__name__] = module
        self._after(module.__name__, self._activate, module)

    def _after(self, name: str, step: Any, module: ModuleType) -> defer.Deferred[None]:
        """Run C{step(module)} once the previous hook of the same file has finished."""
        tail = self._tails.get(name) or defer.succeed(None)
        d: defer.Deferred[None] = defer.Deferred()
        tail.addBoth(lambda _: step(module).chainDeferred(d))
        self._tails[name] = d

        def forget(result: Any) -> Any:
            if self._tails.get(name) is d:
                del self._tails[name]
            return result

        d.addBoth(forget)
        return d

    def _run(self, what: str, module: ModuleType, hook: Any, *args: Any) -> defer.Deferred[None]:
        info = describeModule(module)
        d = defer.maybeDeferred(hook, *args)
        if isinstance(d, defer.Deferred):
            d.addTimeout(self.timeout, self.clock)

        def done(_: Any) -> None:
            log.info("[PLUGIN] {plugin}: {what} done", plugin=info.name, what=what)

        def failed(failure: Any) -> None:
            log.failure("[PLUGIN] {plugin}: {what} failed (the server carries on)", failure,
                        plugin=info.name, what=what)

        d.addCallbacks(done, failed)
        return d

    def _activate(self, module: ModuleType) -> defer.Deferred[None]:
        info = describeModule(module)
        if info.activate is None:
            return defer.succeed(None)
        return self._run("activate()", module, _coroutineAware(info.activate),
                         self.services.pluginContext(info))

    def _deactivate(self, module: ModuleType) -> defer.Deferred[None]:
        info = describeModule(module)
        if info.deactivate is None:
            return defer.succeed(None)
        return self._run("deactivate()", module, _coroutineAware(info.deactivate))


def _coroutineAware(hook: Any) -> Any:
    import inspect

    def call(*args: Any) -> Any:
        result = hook(*args)
        return defer.ensureDeferred(result) if inspect.iscoroutine(result) else result

    return call
