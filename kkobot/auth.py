"""Who may talk to the server: the admission decision for a handshake and per-event checks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from twisted.internet import defer
from zope.interface import implementer

from kkobot.interfaces import IAuthenticator
from kkobot.wire import Hello


@dataclass(frozen=True)
class Admission:
    """What the server answers a handshake with."""

    accepted: bool
    approved: bool
    message: str = "ok"


@implementer(IAuthenticator)
class OpenAuthenticator:
    """Lets every client in: the embedded no-config default (loopback only)."""

    def checkHello(self, hello: Hello, address: str) -> defer.Deferred[Admission]:
        return defer.succeed(Admission(accepted=True, approved=True))

    def verifyEvent(self, client: Any, auth: Mapping[str, Any] | None) -> str | None:
        return None
