"""Connection limits whose auth-failure bans hold across the deployment (an IAddressBans)."""

from __future__ import annotations

from typing import Any

from twisted.internet.interfaces import IReactorTime

from kkobot.bridge.limits import ConnectionLimits
from kkobot.cluster.fired import resultNow
from kkobot.logs import Logger

log = Logger()


class SharedBanLimits(ConnectionLimits):
    """
    L{ConnectionLimits} with the failures counted and the bans kept by C{bans}.

    A ban decided by another instance, or by this one after a round trip, refuses
    the address's next connections; the connection whose failure completed a ban
    that took a round trip is closed when the answer comes (C{closeAddress}).
    """

    def __init__(self, clock: IReactorTime, bans: Any, **kw: Any) -> None:
        ConnectionLimits.__init__(self, clock, **kw)
        self.bans = bans
        self.closeAddress: Any = None

    def refusal(self, address: str, total: int, fromAddress: int) -> str | None:
        banned = self.bans.refusal(address)
        if banned is not None:
            return banned
        return ConnectionLimits.refusal(self, address, total, fromAddress)

    def failed(self, address: str) -> bool:
        d = self.bans.failed(address)
        known, banned = resultNow(d)
        if known:
            return bool(banned)

        def decided(banned: bool) -> None:
            if banned:
                log.warn("[AUTH] {address}: too many auth failures across the deployment; "
                         "refusing the address for {ban:.0f} s", address=address, ban=self.banSeconds)
                if self.closeAddress is not None:
                    self.closeAddress(address)

        d.addCallback(decided)
        d.addErrback(lambda f: log.failure("[AUTH] counting an auth failure failed", f))
        return False

    def forget(self) -> None:
        ConnectionLimits.forget(self)
        self.bans.forget()
