"""/api/clients (who is connected, deployment-wide) and /api/messages (send into a room, read a message's state)."""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET

from kkobot.logs import Logger
from kkobot.bridge.outbound import Outbound
from kkobot.admin.rates import MessageRates
from kkobot.bridge.registry import ClientRegistry
from kkobot.admin.web.jsonio import jsonBody

log = Logger()

# The bridge truncates chat text at 65,000 characters; more would not arrive whole.
MAX_TEXT = 65_000
MAX_BODY = 512 * 1024


# A caller's own message id (so that a retried request is not sent twice).
MESSAGE_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
# What /api/messages/<id> calls a message that was never delivered.
STATES = {"undelivered": "expired"}


def answerLater(request: IRequest, d: Any, render: Any) -> Any:
    """Finish C{request} with C{render(result)} (code, body) once C{d} fires."""

    def done(result: Any) -> None:
        code, body = render(result)
        if not request.finished and not getattr(request, "_disconnected", False):
            request.write(jsonBody(request, code, body))
            request.finish()

    def failed(failure: Any) -> None:
        log.failure("[ADMIN] {path} failed", failure, path=request.path.decode("utf-8", "replace"))
        if not request.finished and not getattr(request, "_disconnected", False):
            request.write(jsonBody(request, 500, {"error": "server error"}))
            request.finish()

    d.addCallback(done).addErrback(failed)
    return NOT_DONE_YET


class ClientsResource(Resource):
    """
    The connections of this instance (C{clients}); with several instances, also
    every instance with its phones and last heartbeat (C{instances}), and
    C{clients} holds every live instance's connections, each naming its instance.
    """

    isLeaf = True

    def __init__(self, registry: ClientRegistry, cluster: Any = None) -> None:
        Resource.__init__(self)
        self.registry = registry
        self.cluster = cluster

    def render_GET(self, request: IRequest) -> Any:
        if self.cluster is None or not self.cluster.settings.enabled:
            clients = sorted(self.registry, key=lambda c: (c.botName, c.connectedSince))
            return jsonBody(request, 200, {"clients": [c.asDict() for c in clients]})
        return answerLater(request, self.cluster.presence.deployment(), deploymentBody)


def deploymentBody(views: list[Any]) -> tuple[int, dict[str, Any]]:
    clients = [dict(c, instance=v.name) for v in views if v.alive for c in v.connections]
    clients.sort(key=lambda c: (c.get("bot_name") or "", c.get("connected_since") or 0))
    return 200, {"clients": clients, "instances": [v.asDict() for v in views]}


class BadInput(Exception):
    """The request body is not a message we can send; the text says why."""


def parseMessage(body: bytes) -> tuple[str, str | None, str | None, str]:
    """(bot, room, channel_id, text) from a JSON body, or L{BadInput}."""
    return parseRequest(body)[:4]


def parseRequest(body: bytes) -> tuple[str, str | None, str | None, str, str | None]:
    """(bot, room, channel_id, text, id) from a JSON body, or L{BadInput}."""
    if len(body) > MAX_BODY:
        raise BadInput(f"body over {MAX_BODY} bytes")
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise BadInput("body is not JSON")
    if not isinstance(data, dict):
        raise BadInput("body must be a JSON object")
    bot, room, channel, text = (data.get(k) for k in ("bot", "room", "channel_id", "text"))
    if isinstance(channel, int) and not isinstance(channel, bool):
        channel = str(channel)  # KakaoTalk channel ids are numbers written as strings
    if not isinstance(bot, str) or not bot:
        raise BadInput("bot must be a non-empty string")
    if not isinstance(text, str) or not text.strip():
        raise BadInput("text must be a non-empty string")
    if len(text) > MAX_TEXT:
        raise BadInput(f"text is over {MAX_TEXT} characters")
    if room is not None and (not isinstance(room, str) or not room):
        raise BadInput("room must be a non-empty string")
    if channel is not None and (not isinstance(channel, str) or not channel):
        raise BadInput("channel_id must be a non-empty string")
    if room is None and channel is None:
        raise BadInput("give room or channel_id")
    messageId = data.get("id")
    if messageId is not None and not (isinstance(messageId, str) and MESSAGE_ID.fullmatch(messageId)):
        raise BadInput("id must be 1-100 letters, digits or _.:-")
    return bot, room, channel, text, messageId


class MessagesResource(Resource):
    """
    POST: send a message (202 and its id: delivered, routed to the instance holding
    the bot, or queued until the bot connects); GET /api/messages/<id>: its state,
    queued, delivered or expired (with the reason).
    """

    isLeaf = True

    def __init__(self, outbound: Outbound, rates: MessageRates) -> None:
        Resource.__init__(self)
        self.outbound = outbound
        self.rates = rates

    def render_GET(self, request: IRequest) -> Any:
        path = [p for p in request.postpath if p]
        router = getattr(self.outbound, "router", None)
        if len(path) != 1 or router is None:
            return jsonBody(request, 404, {"error": "GET /api/messages/<id>"})
        messageId = path[0].decode("utf-8", "replace")
        if not MESSAGE_ID.fullmatch(messageId):
            return jsonBody(request, 404, {"error": "no such message"})
        return answerLater(request, router.status(messageId), statusBody)

    def render_POST(self, request: IRequest) -> Any:
        # Browsers cannot send application/json cross-site without a CORS preflight,
        # which we never answer: with the session cookie, this is the CSRF guard.
        ctype = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if ctype != b"application/json":
            return jsonBody(request, 415, {"error": "send Content-Type: application/json"})
        if [p for p in request.postpath if p]:
            return jsonBody(request, 404, {"error": "POST /api/messages"})
        try:
            bot, room, channel, text, messageId = parseRequest(request.content.read(MAX_BODY + 1))
        except BadInput as e:
            return jsonBody(request, 400, {"error": str(e)})
        if room is None:
            assert channel is not None
            room = self.rates.roomName(bot, channel)
            if room is None:
                return jsonBody(
                    request, 404,
                    {"error": f"no room known for channel_id {channel} of {bot}: give room"},
                )
        if getattr(self.outbound, "router", None) is None:
            # A server without the outbound queue (tools): a bot must be connected.
            messageId = messageId or uuid.uuid4().hex
            if not self.outbound.send(bot, room, text, channel):
                return jsonBody(request, 404, {"error": f"no approved connection serves bot {bot}"})
            return jsonBody(request, 202, {"id": messageId, "bot": bot, "room": room,
                                           "channel_id": channel, "state": "delivered"})
        d = self.outbound.submit(bot, room, text, channel, messageId=messageId)

        def sent(result: Any) -> tuple[int, dict[str, Any]]:
            log.info("[ADMIN] message {id} to {bot} | {room}: {outcome}",
                     id=result.id, bot=bot, room=room, outcome=result.outcome)
            body = {"id": result.id, "bot": bot, "room": room, "channel_id": channel,
                    "state": STATES.get(result.state, result.state), "outcome": result.outcome}
            if result.instance:
                body["instance"] = result.instance
            if result.reason:
                body["reason"] = result.reason
            # Refused at once (the queue is full): the caller should try again later.
            return (202 if result.accepted else 503), body

        return answerLater(request, d, sent)


def statusBody(status: Any) -> tuple[int, dict[str, Any]]:
    if status is None:
        return 404, {"error": "no such message (unknown, or older than an hour)"}
    return 200, {
        "id": status.id,
        "state": STATES.get(status.state, status.state),
        "reason": status.reason,
        "bot": status.botName,
        "room": status.room,
        "created": status.created,
        "deadline": status.deadline,
        "origin": status.origin,
        "instance": status.target,
        "delivered_by": status.deliveredBy,
        "delivered_at": status.deliveredAt,
    }
