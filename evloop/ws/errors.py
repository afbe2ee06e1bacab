"""Errors raised by the WebSocket layer.

A peer that breaks the protocol after the handshake is not an exception: the
connection returns a ``ConnectionFailed`` event and queues the Close frame.
"""


class HandshakeError(Exception):
    """A client's view of a server's handshake answer that it cannot accept (the reason is the message)."""


class StateError(RuntimeError):
    """The application used a WebSocketConnection out of order (a bug in the caller).

    The message names the state and the call that had no transition, e.g.
    ``send_text`` after ``close``.
    """
