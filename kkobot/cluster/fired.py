"""Reading an already-fired Deferred at once: the in-process stores answer synchronously."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.python.failure import Failure


def resultNow(d: defer.Deferred[Any]) -> tuple[bool, Any]:
    """
    (True, result) when C{d} has fired (its failure is raised here), else (False, None)
    and C{d} is untouched for the caller to chain on. Lets a synchronous caller (the
    dispatcher's cooldown check) keep its fast path with the in-process store and
    wait only when the answer comes from Redis.
    """
    box: list[Any] = []

    def keep(result: Any) -> Any:
        box.append(result)
        return result

    d.addBoth(keep)
    if not box:
        return False, None
    result = box[0]
    d.addErrback(lambda _: None)  # the failure is the caller's now
    if isinstance(result, Failure):
        result.raiseException()
    return True, result
