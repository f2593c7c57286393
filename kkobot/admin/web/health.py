"""/healthz (the process answers) and /readyz (listening, database or journal taking rows, backlog, cluster)."""

from __future__ import annotations

from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from kkobot.admin.web.jsonio import jsonBody


class Healthz(Resource):
    isLeaf = True

    def render_GET(self, request: IRequest) -> bytes:
        return jsonBody(request, 200, {"status": "ok"})


def readiness(factory: Any, chatlog: Any, cluster: Any = None) -> dict[str, Any]:
    """
    What /readyz reports. C{factory.numPorts} counts the ports the bridge factory
    listens on. When the database does not take rows the chat log keeps them in the
    journal ("spooling") and every message is still answered; only a journal that
    refuses rows (a full disk) holds answers and pauses reading, so only that, or a
    closed port, makes the server not ready.
    """
    listening = factory.numPorts > 0
    database = chatlog.databaseUp
    tables = chatlog.tables()
    state = {
        "ready": listening and not chatlog.journalFull,
        "listening": listening,
        "database": "ok" if database else "unavailable",
        "spooling": not database,
        "journal_full": chatlog.journalFull,
        "backlog": {"buffered": chatlog.pending, "spooled": chatlog.backlog},
        "rejected_rows": chatlog.rowsRejected,
        # Each kind of row on its own (chat, ping, device): a table that refuses its
        # rows ("refused") keeps them waiting while the others flow; answers go on,
        # so it does not make the server unready.
        "tables": {t["kind"]: t for t in tables},
        "tables_refused": [t["table"] for t in tables if t["state"] == "refused"],
    }
    if cluster is not None and cluster.settings.enabled:
        # Redis down does not make the server unready: it answers its own phones.
        status = cluster.status()
        state["cluster"] = "ok" if status["mode"] == "cluster" else "local-only"
        state["instance"] = status["instance"]
        state["live_instances"] = status["live_instances"]
        state["redis"] = status["redis"]
    return state


class Readyz(Resource):
    isLeaf = True

    def __init__(self, factory: Any, chatlog: Any, cluster: Any = None) -> None:
        Resource.__init__(self)
        self.factory = factory
        self.chatlog = chatlog
        self.cluster = cluster

    def render_GET(self, request: IRequest) -> bytes:
        state = readiness(self.factory, self.chatlog, self.cluster)
        return jsonBody(request, 200 if state["ready"] else 503, state)
