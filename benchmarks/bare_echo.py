"""A bare Twisted line server answering `# echo` like kkobot, as the no-database baseline."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from twisted.internet import reactor
from twisted.internet.protocol import Factory
from twisted.protocols.basic import LineReceiver

# Must stay byte-identical to kkobot's reply so both targets send the same bytes.
HANDSHAKE_COMPLETE = {
    "success": True,
    "approved": True,
    "message": "ok",
    "server_version": "1.0.0",
}
ECHO_PREFIX = "# echo "
USAGE = "사용법: # echo {내용}"


def _dumps(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class BareEcho(LineReceiver):
    """One bridge connection: handshake, then `analyze` -> `messageResponse`, ping -> ping."""

    delimiter = b"\n"
    # 65,000 Hangul characters are ~195 KB of UTF-8; 1 MiB keeps kkobot's bound.
    MAX_LENGTH = 1 << 20

    def connectionMade(self) -> None:
        self.handshaken = False
        self.bot_name = ""

    def send(self, event: str, data: dict[str, Any]) -> None:
        self.sendLine(_dumps({"event": event, "data": data}))

    def error(self, code: str, message: str) -> None:
        self.send("error", {"code": code, "message": message, "timestamp": int(time.time() * 1000)})

    def lineLengthExceeded(self, line: bytes) -> None:
        self.error("LINE_TOO_LONG", "line too long")
        self.transport.loseConnection()

    def lineReceived(self, line: bytes) -> None:
        if line.endswith(b"\r"):
            line = line[:-1]
        if not line.strip():
            return
        # Parsing every line is the point: kkobot pays for it, so the baseline must too.
        try:
            msg = json.loads(line)
        except ValueError:
            self.error("BAD_JSON", "not JSON")
            return
        if not isinstance(msg, dict):
            self.error("BAD_JSON", "not a JSON object")
            return
        event = msg.get("event")
        if not self.handshaken:
            data = msg if event is None else msg.get("data") if event == "handshake" else None
            if not isinstance(data, dict) or "botName" not in data:
                self.error("HANDSHAKE_REQUIRED", "send the handshake first")
                return
            self.handshaken = True
            self.bot_name = str(data.get("botName"))
            self.send("handshakeComplete", dict(HANDSHAKE_COMPLETE))
            return
        data = msg.get("data")
        if not isinstance(data, dict):
            self.error("BAD_EVENT", "data must be an object")
            return
        if event == "analyze":
            text = data.get("text")
            if not isinstance(text, str):
                return
            if text.startswith(ECHO_PREFIX) and text[len(ECHO_PREFIX):].strip():
                reply = "에코: " + text[len(ECHO_PREFIX):]
            elif text.rstrip() == "# echo":
                reply = USAGE
            else:
                return
            self.send(
                "messageResponse",
                {"room": data.get("room"), "text": reply, "channel_id": data.get("channelId")},
            )
        elif event == "ping":
            self.send(
                "ping", {"bot_name": self.bot_name, "server_timestamp": int(time.time() * 1000)}
            )


class BareEchoFactory(Factory):
    protocol = BareEcho


def main(argv: list[str] | None = None) -> int:
    """Listen on 127.0.0.1 (or --host) and serve until SIGTERM/SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument("--host", default="127.0.0.1")
    args = parser.parse_args(argv)
    port = reactor.listenTCP(args.port, BareEchoFactory(), interface=args.host)
    # The driver and the tests block on this exact line instead of sleeping.
    print(f"listening on {port.getHost().port}", flush=True)
    reactor.run()
    return 0


if __name__ == "__main__":
    sys.exit(main())
