"""Server lines onto a plain TCP socket at once when nothing waits in the transport's buffer."""

from __future__ import annotations

from functools import partial
from typing import Any, Callable

from twisted.internet import tcp

Send = Callable[[bytes], None]

# The buffer state read below is FileDescriptor's own; a Twisted without it gets
# the plain write path, which is always correct.
_STATE = ("dataBuffer", "_tempDataBuffer", "_writeDisconnected", "_aborting", "TLS", "socket")


def senderFor(transport: Any) -> Send:
    """
    A function that writes one line to C{transport}: C{transport.write}, or for a
    plain TCP connection one C{send} right away while its buffer is empty.

    Twisted's C{write} only queues the bytes and registers the socket for writing;
    the reactor sends them on its next poll and unregisters it. An answer per
    message is then two C{epoll_ctl} calls and one more reactor event each; the
    socket of a bridge that reads its answers almost always takes the line at
    once. Whatever the socket does not take (a full send buffer, an error) goes
    to C{transport.write}, behind which every later line queues, so lines keep
    their order and Twisted still reports a broken connection and pauses the
    protocol (the registered producer) when answers pile up unread.
    """
    if not (isinstance(transport, tcp.Connection)
            and all(hasattr(transport, name) for name in _STATE)):
        return transport.write
    # A partial, not a closure: a few hundred bytes less per idle connection.
    return partial(_sendAtOnce, transport)


def _sendAtOnce(t: Any, data: bytes) -> None:
    if (t.dataBuffer or t._tempDataBuffer or t.TLS or t.disconnecting
            or t._writeDisconnected or t._aborting or not t.connected):
        t.write(data)
        return
    try:
        sent = t.socket.send(data)
    except OSError:
        # EAGAIN, or a reset: Twisted's own write path finds out which.
        t.write(data)
        return
    if sent < len(data):
        t.write(data[sent:])
