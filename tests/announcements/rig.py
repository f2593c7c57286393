"""The runner's test rig: a database (scratch MariaDB or SQLite), a connected bridge behind the real Outbound, a task.Clock."""

from __future__ import annotations

import json
import os
from datetime import datetime, time
from typing import Any
from zoneinfo import ZoneInfo

from twisted.internet import reactor, task

from kkobot.announcements import manage, tables
from kkobot.announcements.runner import AnnouncementService
from kkobot.bridge.outbound import Outbound
from kkobot.bridge.registry import ClientInfo, ClientRegistry
from kkobot.bridge.wireforms import JSON_LINES
from kkobot.commands.testing import MemoryChatLog
from kkobot.config import DBSettings
from kkobot.db.pool import Database
from tests.support import ScratchMysql, tempDir

SEOUL = ZoneInfo("Asia/Seoul")
BOT = "kkobot"
CHANNEL = "18398338829933568"
ROOM = "공지방"


def epoch(local: datetime) -> float:
    """A Seoul wall-clock time as the clock's seconds."""
    return local.replace(tzinfo=SEOUL).timestamp()


class Bridge:
    """One verified, approved connection of C{BOT}: the lines the server wrote to it."""

    def __init__(self, registry: ClientRegistry, clock: Any, form: Any = JSON_LINES) -> None:
        self.lines: list[tuple[float, bytes]] = []
        self.clock = clock
        self.registry = registry
        self.info = ClientInfo(botName=BOT, version="3.2.0", clientType="MessengerBotR",
                               deviceID="dev1", address="127.0.0.1", connectedSince=clock.seconds(),
                               send=lambda line: self.lines.append((clock.seconds(), line)), form=form)

    def connect(self) -> None:
        self.registry.add(self.info)

    def disconnect(self) -> None:
        self.registry.remove(self.info)

    def messages(self) -> list[dict[str, Any]]:
        return [json.loads(line)["data"] for _, line in self.lines]


class Rig:
    """A database with the announcement tables, a clock at C{start} (Seoul time), a bridge."""

    def __init__(self, testcase: Any, engine: str, start: datetime | None = None,
                 clock: task.Clock | None = None) -> None:
        self.testcase = testcase
        self.engine = engine
        self.clock = clock or task.Clock()
        if start is not None:
            self.clock.advance(epoch(start) - self.clock.seconds())
        if engine == "mysql":
            self.scratch = ScratchMysql()
            testcase.addCleanup(self.scratch.drop)
            self.settings = self.scratch.settings()
        else:
            self.settings = DBSettings(engine="sqlite", host="", port=0, user="", password="",
                                       name="t", path=os.path.join(tempDir(testcase), "k.sqlite3"))
        self.db = self.database()
        self.registry = ClientRegistry()
        self.chatlog = MemoryChatLog()
        self.outbound = Outbound(self.registry, self.chatlog, self.clock)
        self.bridge = Bridge(self.registry, self.clock)
        self.bridge.connect()

    def database(self) -> Database:
        db = Database(self.settings, reactor=reactor)
        tables.addSchema(db)
        self.testcase.addCleanup(db.close)
        return db

    def runner(self, database: Database | None = None, **kw: Any) -> AnnouncementService:
        kw.setdefault("catchUp", 600.0)
        kw.setdefault("pollInterval", 5.0)
        return AnnouncementService(database or self.db, self.outbound, self.clock, **kw)

    def now(self) -> datetime:
        return datetime.fromtimestamp(self.clock.seconds(), SEOUL).replace(tzinfo=None, microsecond=0)

    async def add(self, *, kind: str = "daily", at: tuple[time, ...] = (time(9, 1),),
                  **kw: Any) -> int:
        kw.setdefault("text", "오늘의 공지")
        values, _ = manage.scheduleValues(bot=BOT, room=CHANNEL, kind=kind, times=at,
                                          now=self.now(), **kw)
        return await manage.addSchedule(self.db, values)

    async def settle(self, runner: AnnouncementService) -> None:
        """Until the runner's sends are done: the clock moved to each pause they wait on."""
        for _ in range(5000):
            if not runner.sending:
                return
            calls = [c for c in self.clock.getDelayedCalls() if c.active()]
            if calls:
                self.clock.advance(max(0.0, min(c.getTime() for c in calls) - self.clock.seconds()))
            await task.deferLater(reactor, 0.002, lambda: None)
        raise AssertionError("the runner's sends did not finish")

    async def pollAt(self, runner: AnnouncementService, when: datetime) -> None:
        """Move the clock to C{when} (Seoul), poll once, let the sends finish."""
        self.clock.advance(max(0.0, epoch(when) - self.clock.seconds()))
        await runner.poll()
        await self.settle(runner)

    def query(self, statement: str, *args: Any) -> list[tuple[Any, ...]]:
        """A blocking look at the tables, from the test."""
        if self.engine == "mysql":
            return self.scratch.query(statement, *args)
        import sqlite3

        conn = sqlite3.connect(self.settings.path)
        try:
            return list(conn.execute(statement.replace("%s", "?"), args).fetchall())
        finally:
            conn.close()

    def logs(self) -> list[tuple[Any, ...]]:
        return self.query("SELECT schedule_id, status, scheduled_at, send_components, error_message, "
                          "completed_at IS NOT NULL FROM kb_schedule_logs ORDER BY id")
