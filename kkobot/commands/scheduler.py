"""Scheduled messages: `every` / `daily` jobs from plugins, sent through the bot's connection."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable
from zoneinfo import ZoneInfo

from twisted.application.service import Service
from twisted.internet import defer, task
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.plugin import IPlugin
from zope.interface import implementer

from kkobot.commands.reply import normalizeReplies
from kkobot.interfaces import IJob
from kkobot.logs import Logger

log = Logger()

DEFAULT_TIMEZONE = "Asia/Seoul"


@dataclass(frozen=True)
class Every:
    """Every C{seconds}, counted from when the job is scheduled."""

    seconds: float

    def nextAfter(self, when: float, tz: ZoneInfo, start: float) -> float:
        periods = math.floor((when - start) / self.seconds) + 1
        return start + max(1, periods) * self.seconds

    def describe(self) -> str:
        return f"{self.seconds:g}초마다"


@dataclass(frozen=True)
class Daily:
    """Every day at C{hour}:C{minute}, wall-clock time in the scheduler's time zone."""

    hour: int
    minute: int

    def nextAfter(self, when: float, tz: ZoneInfo, start: float) -> float:
        local = datetime.fromtimestamp(when, tz)
        candidate = local.replace(hour=self.hour, minute=self.minute, second=0, microsecond=0)
        while candidate.timestamp() <= when:
            candidate = (candidate + timedelta(days=1)).replace(hour=self.hour, minute=self.minute)
        return candidate.timestamp()

    def describe(self) -> str:
        return f"매일 {self.hour:02d}:{self.minute:02d}"


@implementer(IPlugin, IJob)
class Job:
    """A scheduled message: when, to which bot and room, and what to say."""

    def __init__(
        self,
        when: Every | Daily,
        botName: str,
        room: str,
        function: Callable[[Any], Any] | None = None,
        text: str | None = None,
        channelId: str | None = None,
        isGroupChat: bool = True,
        name: str | None = None,
        lateness: float | None = None,
    ) -> None:
        if (function is None) == (text is None):
            raise TypeError("a job needs either a function or text")
        self.when = when
        self.botName = botName
        self.room = room
        self.function = function
        self.text = text
        self.channelId = channelId
        self.isGroupChat = isGroupChat
        self.name = name or (function.__name__ if function else f"{room}@{when.describe()}")
        self.lateness = lateness

    def nextAfter(self, when: float, tz: ZoneInfo, start: float | None = None) -> float:
        return self.when.nextAfter(when, tz, when if start is None else start)

    def run(self, context: JobContext) -> Any:
        return self.text if self.function is None else self.function(context)

    def __repr__(self) -> str:
        return f"<Job {self.name} {self.when.describe()} → {self.botName}/{self.room}>"


def _decorator(when: Every | Daily, botName: str, room: str, text: str | None, **kw: Any) -> Any:
    if text is not None:
        return Job(when, botName, room, text=text, **kw)
    return lambda function: Job(when, botName, room, function=function, **kw)


def every(seconds: float, *, bot: str, room: str, text: str | None = None, **kw: Any) -> Any:
    """A job every C{seconds}: C{every(3600, bot=..., room=..., text="...")} or as a decorator."""
    if seconds <= 0:
        raise ValueError("every() needs a positive number of seconds")
    return _decorator(Every(float(seconds)), bot, room, text, **kw)


def daily(at: str, *, bot: str, room: str, text: str | None = None, **kw: Any) -> Any:
    """A job every day at C{"HH:MM"} (scheduler time zone, Asia/Seoul by default)."""
    hour, _, minute = at.partition(":")
    if not (hour.isdigit() and minute.isdigit() and int(hour) < 24 and int(minute) < 60):
        raise ValueError(f"daily() needs HH:MM, not {at!r}")
    return _decorator(Daily(int(hour), int(minute)), bot, room, text, **kw)


@dataclass
class JobContext:
    """What a job's function gets."""

    job: Any
    botName: str
    room: str
    channelId: str | None
    now: float
    scheduledFor: float
    clients: Any = None
    # The job's plugin's stored values, seen from the job's room (no user scope).
    store: Any = None


@dataclass
class _Pending:
    job: Any
    texts: list[Any]
    deadline: float


def jobKey(job: Any) -> tuple[str, str, str]:
    return (job.botName, job.room, job.name)


class Scheduler(Service):
    """
    Fires the registry's jobs with C{clock.callLater} and sends through L{Outbound}.

    A message for a bot that is offline waits, and is retried every C{retryInterval}
    seconds until the bot is back or C{lateness} seconds have passed since it was due;
    then it is dropped with a log line. After a plugin reload the job list is synced:
    new jobs start, removed ones stop, a changed job keeps its next firing time.
    """

    def __init__(
        self,
        commands: Any,
        outbound: Any,
        clock: IReactorTime,
        timezone: str = DEFAULT_TIMEZONE,
        lateness: float = 300.0,
        retryInterval: float = 2.0,
        timeout: float = 10.0,
        services: Any = None,
    ) -> None:
        self.commands = commands
        self.services = services
        self.outbound = outbound
        self.clock = clock
        self.tz = ZoneInfo(timezone)
        self.lateness = lateness
        self.retryInterval = retryInterval
        self.timeout = timeout
        self._calls: dict[tuple[str, str, str], tuple[Any, IDelayedCall, float]] = {}
        self.pending: list[_Pending] = []
        self._retry: task.LoopingCall | None = None
        # The deployment's slot claims (an ISlotClaims; several instances): a slot
        # fires on the one instance that claims it, and `every` slots count from a
        # fixed origin (the epoch) so that every instance has the same ones.
        self.slots: Any = None

    def startService(self) -> None:
        Service.startService(self)
        self.commands.listeners.append(self._reloaded)
        self.sync()

    def stopService(self) -> None:
        Service.stopService(self)
        if self._reloaded in self.commands.listeners:
            self.commands.listeners.remove(self._reloaded)
        for _, call, _ in self._calls.values():
            if call.active():
                call.cancel()
        self._calls.clear()
        self._stopRetry()

    def _reloaded(self, report: Any) -> None:
        if self.running:
            self.sync()

    def sync(self) -> None:
        """Schedule the registry's jobs; cancel jobs that are gone."""
        now = self.clock.seconds()
        jobs = {jobKey(job): job for job in self.commands.jobs()}
        for key in [k for k in self._calls if k not in jobs]:
            _, call, _ = self._calls.pop(key)
            if call.active():
                call.cancel()
            log.info("[SCHEDULE] job {name} removed", name=key[2])
        for key, job in jobs.items():
            existing = self._calls.get(key)
            if existing is not None and existing[0].when == job.when:
                old, call, due = existing
                self._calls[key] = (job, call, due)
                continue
            if existing is not None and existing[1].active():
                existing[1].cancel()
            origin = 0.0 if self.slots is not None else None
            self._schedule(key, job, job.nextAfter(now, self.tz, origin))

    def _schedule(self, key: tuple[str, str, str], job: Any, due: float) -> None:
        delay = max(0.0, due - self.clock.seconds())
        call = self.clock.callLater(delay, self._fire, key, due)
        self._calls[key] = (job, call, due)
        log.info(
            "[SCHEDULE] job {name} ({bot}/{room}) next at {at}",
            name=job.name,
            bot=job.botName,
            room=job.room,
            at=datetime.fromtimestamp(due, self.tz).isoformat(timespec="minutes"),
        )

    def _fire(self, key: tuple[str, str, str], due: float) -> None:
        job = self._calls[key][0]
        self._schedule(key, job, job.nextAfter(due, self.tz, due))
        if self.slots is None:
            self._run(job, due)
            return
        d = self.slots.claim("|".join(key), due)
        d.addCallback(lambda mine: self._run(job, due) if mine else None)
        d.addErrback(lambda f: log.failure("[SCHEDULE] claiming a slot of job {name} failed", f,
                                           name=job.name))

    def _run(self, job: Any, due: float) -> None:
        context = JobContext(
            job=job,
            botName=job.botName,
            room=job.room,
            channelId=job.channelId,
            now=self.clock.seconds(),
            scheduledFor=due,
            clients=getattr(self.outbound, "registry", None),
        )
        if self.services is not None and getattr(self.services, "storage", None) is not None:
            from kkobot.commands.store import PluginStore

            plugin = self.commands.pluginOf(job)
            context.store = PluginStore(self.services.storage, plugin.name, job.channelId or job.room,
                                        None, self.clock)
        d = defer.maybeDeferred(job.run, context)
        d.addTimeout(self.timeout, self.clock)
        d.addCallback(normalizeReplies)
        d.addCallback(self._deliver, job, due)
        d.addErrback(lambda f: log.failure("[SCHEDULE] job {name} failed", f, name=job.name))

    def _deliver(self, replies: list[Any], job: Any, due: float) -> None:
        if not replies:
            return
        lateness = job.lateness if job.lateness is not None else self.lateness
        pending = _Pending(job, list(replies), due + lateness)
        if not self._send(pending):
            log.info(
                "[SCHEDULE] {bot} is offline; job {name} waits up to {lateness}s for it",
                bot=job.botName,
                name=job.name,
                lateness=lateness,
            )
            self.pending.append(pending)
            self._startRetry()

    def _send(self, pending: _Pending) -> bool:
        """Send what is left of C{pending}; True when all of it went out."""
        job = pending.job
        # Behind the server's outbound queue a message waits for an offline bot
        # itself, as long as the job's lateness allows.
        queued = getattr(self.outbound, "router", None) is not None
        wait = {"waitSeconds": max(0.0, pending.deadline - self.clock.seconds())} if queued else {}
        while pending.texts:
            reply = pending.texts[0]
            sent = self.outbound.send(
                job.botName,
                job.room,
                reply.text,
                job.channelId,
                isGroupChat=job.isGroupChat,
                scheduled=True,
                mediaWaitTime=reply.mediaWaitTime,
                **wait,
            )
            if not sent:
                return False
            pending.texts.pop(0)
        log.info("[SCHEDULE] job {name} sent to {bot}/{room}", name=job.name, bot=job.botName, room=job.room)
        return True

    def retryPending(self) -> None:
        now = self.clock.seconds()
        still = []
        for pending in self.pending:
            if self._send(pending):
                continue
            if now > pending.deadline:
                log.warn(
                    "[SCHEDULE] job {name} dropped: {bot} stayed offline past its lateness",
                    name=pending.job.name,
                    bot=pending.job.botName,
                )
                continue
            still.append(pending)
        self.pending = still
        if not still:
            self._stopRetry()

    def _startRetry(self) -> None:
        if self._retry is None:
            self._retry = task.LoopingCall(self.retryPending)
            self._retry.clock = self.clock
            self._retry.start(self.retryInterval, now=False)

    def _stopRetry(self) -> None:
        if self._retry is not None:
            if self._retry.running:
                self._retry.stop()
            self._retry = None
