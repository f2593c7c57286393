"""/healthz (the process answers) and /readyz (listening, database or journal taking rows, backlog)."""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from kkobot.web.jsonio import jsonBody


class Healthz(Resource):
    isLeaf = True

    def render_GET(self, request: IRequest) -> bytes:
        return jsonBody(request, 200, {"status": "ok"})


def readiness(factory: Any, chatlog: Any) -> dict[str, Any]:
    """
    What /readyz reports. C{factory.numPorts} counts the ports the bridge factory
    listens on. The chat log answers whether the database takes rows (C{databaseUp}),
    whether rows are kept in the journal meanwhile (C{spooling}, C{spoolBacklog}),
    and whether the journal itself refuses rows (C{journalFull}): only then are
    answers held and reading paused, so only then is the server not ready.
    """
    listening = factory.numPorts > 0
    database = bool(getattr(chatlog, "databaseUp", getattr(chatlog, "ready", False)))
    spooling = bool(getattr(chatlog, "spooling", False))
    journalFull = bool(getattr(chatlog, "journalFull", False))
    return {
        "ready": listening and (database or spooling) and not journalFull,
        "listening": listening,
        "database": "ok" if database else "unavailable",
        "spooling": spooling,
        "journal_full": journalFull,
        "backlog": {
            "buffered": int(getattr(chatlog, "pending", 0)),
            "spooled": int(getattr(chatlog, "spoolBacklog", 0)),
        },
        "rejected_rows": int(getattr(chatlog, "rowsRejected", 0)),
    }


class Readyz(Resource):
    isLeaf = True

    def __init__(self, factory: Any, chatlog: Any) -> None:
        Resource.__init__(self)
        self.factory = factory
        self.chatlog = chatlog

    def render_GET(self, request: IRequest) -> bytes:
        state = readiness(self.factory, self.chatlog)
        return jsonBody(request, 200 if state["ready"] else 503, state)
