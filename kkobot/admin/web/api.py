"""/api/clients (the registry as JSON) and /api/messages (send a message into a room)."""

from __future__ import annotations

import json
import uuid

from twisted.web.iweb import IRequest
from twisted.web.resource import Resource

from kkobot.logs import Logger
from kkobot.bridge.outbound import Outbound
from kkobot.admin.rates import MessageRates
from kkobot.bridge.registry import ClientRegistry
from kkobot.admin.web.jsonio import jsonBody

log = Logger()

# The bridge truncates chat text at 65,000 characters; more would not arrive whole.
MAX_TEXT = 65_000
MAX_BODY = 512 * 1024


class ClientsResource(Resource):
    isLeaf = True

    def __init__(self, registry: ClientRegistry) -> None:
        Resource.__init__(self)
        self.registry = registry

    def render_GET(self, request: IRequest) -> bytes:
        clients = sorted(self.registry, key=lambda c: (c.botName, c.connectedSince))
        return jsonBody(request, 200, {"clients": [c.asDict() for c in clients]})


class BadInput(Exception):
    """The request body is not a message we can send; the text says why."""


def parseMessage(body: bytes) -> tuple[str, str | None, str | None, str]:
    """(bot, room, channel_id, text) from a JSON body, or L{BadInput}."""
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
    return bot, room, channel, text


class MessagesResource(Resource):
    isLeaf = True

    def __init__(self, outbound: Outbound, rates: MessageRates) -> None:
        Resource.__init__(self)
        self.outbound = outbound
        self.rates = rates

    def render_POST(self, request: IRequest) -> bytes:
        # Browsers cannot send application/json cross-site without a CORS preflight,
        # which we never answer: with the session cookie, this is the CSRF guard.
        ctype = (request.getHeader(b"content-type") or b"").split(b";")[0].strip().lower()
        if ctype != b"application/json":
            return jsonBody(request, 415, {"error": "send Content-Type: application/json"})
        try:
            bot, room, channel, text = parseMessage(request.content.read(MAX_BODY + 1))
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
        messageId = uuid.uuid4().hex
        if not self.outbound.send(bot, room, text, channel):
            return jsonBody(request, 404, {"error": f"no approved connection serves bot {bot}"})
        log.info(
            "[ADMIN] message {id} sent to {bot} | {room}", id=messageId, bot=bot, room=room
        )
        return jsonBody(
            request, 202,
            {"id": messageId, "bot": bot, "room": room, "channel_id": channel},
        )
