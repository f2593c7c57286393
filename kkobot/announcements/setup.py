"""The announcement runner as the server builds it from its settings (schedules.* keys)."""

from __future__ import annotations

from typing import Any, Callable

from kkobot.announcements import tables
from kkobot.announcements.rooms import RoomNames
from kkobot.announcements.runner import DEFAULT_TIMEZONE, AnnouncementService

# The keys and their defaults (docs/configuration.md).
SETTINGS = {
    "schedules.enabled": True,
    "schedules.timezone": DEFAULT_TIMEZONE,
    "schedules.catch_up_seconds": 600.0,
    "schedules.poll_interval": 5.0,
}


def buildAnnouncements(
    database: Any,
    outbound: Any,
    clock: Any,
    get: Callable[[str, Any], Any],
    seen: Callable[[str, str], str | None] | None = None,
    slots: Any = None,
) -> AnnouncementService | None:
    """
    The runner on C{database} (its tables added to the schema check), or None with
    schedules.enabled false. C{slots}: the cluster's L{ISlotClaims}, when there is one.
    """
    def setting(key: str) -> Any:
        return get(key, SETTINGS[key])

    if not setting("schedules.enabled"):
        return None
    tables.addSchema(database)
    return AnnouncementService(
        database,
        outbound,
        clock,
        timezone=setting("schedules.timezone"),
        catchUp=float(setting("schedules.catch_up_seconds")),
        pollInterval=max(0.1, float(setting("schedules.poll_interval"))),
        slots=slots,
        roomNames=RoomNames(database, clock, seen),
    )
