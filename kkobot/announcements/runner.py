"""Sends the announcements of kb_schedule when due: polls the table, claims each slot once, records every send."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from twisted.application.service import Service
from twisted.internet import defer, task

from kkobot.announcements.claims import claimsFor
from kkobot.announcements.content import partsOf
from kkobot.announcements.delivery import deliver, reachable
from kkobot.announcements.rooms import RoomNames
from kkobot.announcements.rules import Recurrence, RuleError, parseDateTime, recurrence
from kkobot.announcements.store import Claim, Outcome, ScheduleStore
from kkobot.logs import Logger

log = Logger()

DEFAULT_TIMEZONE = "Asia/Seoul"
# Unfinished send rows older than the catch-up window plus this are from a stopped server.
STALE_MARGIN = timedelta(minutes=10)
STALE_CHECK_SECONDS = 60.0

Key = tuple[int, datetime]


class AnnouncementService(Service):
    """
    Every C{pollInterval} seconds (off the message path: a LoopingCall, the query in
    a pool thread) reads the active schedules, so rows added or changed in the
    database take effect without a restart. A slot is sent when it is due and at
    most C{catchUp} seconds late (slots missed while the server was down are caught
    up), once: the claim row in kb_schedule_logs decides across restarts and
    instances. A slot whose bot is offline waits for it until its lateness runs
    out, then its failure is recorded.
    """

    def __init__(
        self,
        database: Any,
        outbound: Any,
        clock: Any,
        timezone: str = DEFAULT_TIMEZONE,
        catchUp: float = 600.0,
        pollInterval: float = 5.0,
        slots: Any = None,
        roomNames: Any = None,
    ) -> None:
        self.store = ScheduleStore(database)
        self.slots = slots
        self.outbound = outbound
        self.clock = clock
        self.tz = ZoneInfo(timezone)
        self.catchUp = catchUp
        self.pollInterval = pollInterval
        self.rooms = roomNames or RoomNames(database, clock)
        self._loop: task.LoopingCall | None = None
        # Slots decided here (claimed, or found logged), until they leave the window.
        self._handled: dict[Key, datetime] = {}
        self._inFlight: set[defer.Deferred[Any]] = set()
        self._waiting: set[Key] = set()
        self._paused: set[int] = set()
        self._resumedAt: dict[int, datetime] = {}
        self._badRows: dict[int, str] = {}
        self._lastPoll: datetime | None = None
        self._lastError: str | None = None
        self._staleCheckedAt = float("-inf")
        self._stopped = False
        self._wake: Any = None

    def now(self) -> datetime:
        """The clock's time as naive wall-clock time in the schedules' zone (seconds)."""
        local = datetime.fromtimestamp(self.clock.seconds(), self.tz)
        return local.replace(tzinfo=None, microsecond=0)

    def startService(self) -> None:
        Service.startService(self)
        self._stopped = False
        log.info("[SCHEDULE] announcements from the database: polled every {every}s, "
                 "missed sends caught up within {late}s", every=self.pollInterval, late=self.catchUp)
        self._loop = task.LoopingCall(self.poll)
        self._loop.clock = self.clock
        self._loop.start(self.pollInterval, now=True)

    def stopService(self) -> defer.Deferred[Any]:
        Service.stopService(self)
        self._stopped = True
        if self._wake is not None and self._wake.active():
            self._wake.cancel()
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        # Sends under way finish (and are recorded) before the connections close.
        return defer.DeferredList(list(self._inFlight))

    @property
    def slots(self) -> Any:
        """The cluster's L{kkobot.cluster.interfaces.ISlotClaims} in front of the claim rows, or None."""
        return self._slots

    @slots.setter
    def slots(self, slots: Any) -> None:
        # Settable after construction: the cluster node may be wired in later.
        self._slots = slots
        self.claims = claimsFor(self.store, slots)

    @property
    def sending(self) -> int:
        """How many sends are under way."""
        return len(self._inFlight)

    @defer.inlineCallbacks
    def poll(self):
        """One look at the table: start the sends that are due. Never fails (the loop would stop)."""
        try:
            yield self._poll()
            if self._lastError is not None:
                log.info("[SCHEDULE] the schedule tables answer again")
            self._lastError = None
        except Exception as e:
            text = f"{type(e).__name__}: {e}"
            if text != self._lastError:
                log.error("[SCHEDULE] schedules not read: {error}; retried every {every}s",
                          error=text, every=self.pollInterval)
            self._lastError = text

    @defer.inlineCallbacks
    def _poll(self):
        now = self.now()
        windowStart = now - timedelta(seconds=self.catchUp)
        if self.clock.seconds() - self._staleCheckedAt >= STALE_CHECK_SECONDS:
            self._staleCheckedAt = self.clock.seconds()
            closed = yield self.store.closeInterrupted(windowStart - STALE_MARGIN, now)
            if closed:
                log.warn("[SCHEDULE] {count} send(s) cut short by a stop recorded as failed",
                         count=closed)
        rows = yield self.store.current(windowStart)
        logged = yield self.store.logged(windowStart)
        if self._stopped:
            return  # stopped meanwhile: the connections are closing
        for key in [k for k, slot in self._handled.items() if slot < windowStart]:
            del self._handled[key]
        self._waiting = {k for k in self._waiting if k[1] >= windowStart}
        soonest = None
        for row in rows:
            try:
                upcoming = self._consider(row, now, logged)
            except Exception:
                # One odd row must not keep the others from being sent.
                log.failure("[SCHEDULE] schedule {id} not considered", id=row.get("id"))
                continue
            if upcoming is not None and (soonest is None or upcoming < soonest):
                soonest = upcoming
        self._lastPoll = now
        self._wakeFor(soonest)

    def _wakeFor(self, slot: datetime | None) -> None:
        """A slot before the next poll gets a poll of its own at its second: sent on time."""
        if not self.running or slot is None:
            return
        delay = slot.replace(tzinfo=self.tz).timestamp() - self.clock.seconds()
        if not 0 < delay < self.pollInterval:
            return
        if self._wake is not None and self._wake.active():
            if self._wake.getTime() <= self.clock.seconds() + delay:
                return
            self._wake.cancel()
        self._wake = self.clock.callLater(delay, self.poll)

    def _consider(self, row: dict[str, Any], now: datetime, logged: set[Key]) -> datetime | None:
        """Start the sends of C{row} that are due; its next slot after C{now}."""
        scheduleId = int(row["id"])
        if row.get("status") != "active":
            self._paused.add(scheduleId)
            return None
        if scheduleId in self._paused:
            # Resumed: a slot that passed while it was paused is not caught up.
            self._paused.discard(scheduleId)
            self._resumedAt[scheduleId] = self._lastPoll or now
        rule = self._rule(row)
        if rule is None:
            return None
        for slot in rule.due(now, self.catchUp, self._notBefore(row, now)):
            key = (scheduleId, slot)
            if key in logged or key in self._handled:
                continue
            lastChance = slot + timedelta(seconds=self.catchUp - self.pollInterval) <= now
            if not reachable(self.outbound, row["target_bot_name"]) and not lastChance:
                if key not in self._waiting:
                    self._waiting.add(key)
                    log.info("[SCHEDULE] schedule {id} ({slot}) waits for bot {bot} to connect",
                             id=scheduleId, slot=slot.isoformat(sep=" "), bot=row["target_bot_name"])
                continue
            self._handled[key] = slot
            d = self._send(row, rule, slot)
            self._inFlight.add(d)
            d.addErrback(lambda f, i=scheduleId: log.failure("[SCHEDULE] schedule {id}: send failed", f, id=i))
            d.addBoth(self._settled, d)
        return rule.nextAfter(now)

    def _settled(self, result: Any, d: defer.Deferred[Any]) -> None:
        self._inFlight.discard(d)

    def _notBefore(self, row: dict[str, Any], now: datetime) -> datetime | None:
        """A schedule sends no slot from before it existed (or before it was resumed)."""
        bounds = []
        try:
            created = parseDateTime(row.get("created_at"), "created_at") if row.get("created_at") else None
        except RuleError:
            created = None
        # created_at is the database's clock: ahead of ours it would hold sends back.
        if created is not None and created <= now:
            bounds.append(created)
        resumed = self._resumedAt.get(int(row["id"]))
        if resumed is not None:
            bounds.append(resumed)
        return max(bounds) if bounds else None

    def _rule(self, row: dict[str, Any]) -> Recurrence | None:
        try:
            rule = recurrence(row)
        except RuleError as e:
            if self._badRows.get(int(row["id"])) != str(e):
                log.warn("[SCHEDULE] schedule {id} is skipped: {why}", id=row["id"], why=str(e))
            self._badRows[int(row["id"])] = str(e)
            return None
        self._badRows.pop(int(row["id"]), None)
        return rule

    @defer.inlineCallbacks
    def _send(self, row: dict[str, Any], rule: Recurrence, slot: datetime):
        scheduleId, bot, roomId = int(row["id"]), row["target_bot_name"], row["target_room_id"]
        parts, problems = partsOf(row)
        nextSlot = rule.nextAfter(slot)
        claim = Claim(
            scheduleId=scheduleId, roomId=roomId, slot=slot, started=self.now(),
            text=row.get("message_text"), images1=row.get("message_images_1"),
            images2=row.get("message_images_2"), nextSlot=nextSlot,
        )
        try:
            logId = yield self.claims.claim(claim, "completed" if nextSlot is None else None)
        except Exception as e:
            self._handled.pop((scheduleId, slot), None)  # the next poll tries again
            log.error("[SCHEDULE] schedule {id} ({slot}) not claimed: {error}",
                      id=scheduleId, slot=slot.isoformat(sep=" "), error=f"{type(e).__name__}: {e}")
            return
        if logId is None:
            return  # sent (or being sent) by another instance or an earlier run
        startedAt = self.clock.seconds()
        room, channelId = yield self.rooms.resolve(bot, roomId)
        interval = float(row.get("send_interval_seconds") or 0)
        delivered = yield deliver(self.outbound, self.clock, bot, room, channelId, parts, interval)
        errors = problems + delivered.errors
        if not parts and not problems:
            errors.append("nothing to send: no message_text and no images")
        outcome = Outcome(
            status=delivered.status(len(parts) + len(problems)),
            error="; ".join(errors) or None,
            components=",".join(delivered.sent) or None,
            response={"bot": bot, "room": room, "channel_id": channelId, "parts": delivered.details},
            completed=self.now(),
            durationMs=int((self.clock.seconds() - startedAt) * 1000),
        )
        try:
            yield self.store.finish(scheduleId, logId, outcome)
        except Exception as e:
            log.error("[SCHEDULE] send {log} of schedule {id} not recorded: {error}",
                      log=logId, id=scheduleId, error=f"{type(e).__name__}: {e}")
        level = log.info if outcome.status == "success" else log.warn
        level("[SCHEDULE] schedule {id} ({slot}) to {bot}/{room}: {status}{why}",
              id=scheduleId, slot=slot.isoformat(sep=" "), bot=bot, room=room,
              status=outcome.status, why=f" ({outcome.error})" if outcome.error else "")
