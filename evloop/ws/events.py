"""Events returned by ``WebSocketConnection.next_event``.

Call grammar on the receiving side::

    ( TextMessage | BinaryMessage | Ping | Pong )* [ CloseReceived | ConnectionFailed ] [ ConnectionClosed ]

``next_event`` returns None when it needs more bytes.  With
``deliver_fragments`` a message may come as several ``TextMessage`` or
``BinaryMessage`` events, the last with ``final`` true; otherwise each event
is a whole message.  ``Ping`` and ``Pong`` may come between the pieces of a
message.  After ``CloseReceived`` or ``ConnectionFailed`` the connection's
state is ``CLOSED`` and nothing else is read; ``ConnectionClosed`` follows
``receive_data(b"")`` (the peer's EOF) and is always the last event.
"""

from dataclasses import dataclass


@dataclass(slots=True)
class TextMessage:
    """A text message (or, with ``deliver_fragments``, a piece of one), valid UTF-8."""

    data: str
    final: bool = True


@dataclass(slots=True)
class BinaryMessage:
    """A binary message (or, with ``deliver_fragments``, a piece of one)."""

    data: bytes
    final: bool = True


@dataclass(slots=True)
class Ping:
    """A Ping from the peer; with ``auto_pong`` (the default) the Pong is already queued."""

    payload: bytes


@dataclass(slots=True)
class Pong:
    """A Pong from the peer (an answer to our ``ping`` or unsolicited, RFC 6455 5.5.3)."""

    payload: bytes


@dataclass(slots=True)
class CloseReceived:
    """The peer's Close frame: ``code`` 1005 when it had none.

    If we had not sent a Close yet, the answering Close (same code) is
    queued in ``data_to_send``.  Either way the closing handshake is done:
    a server closes the TCP connection once ``data_to_send`` is written
    (RFC 6455 7.1.1); a client waits for the server to close it.
    """

    code: int
    reason: str


@dataclass(slots=True)
class ConnectionFailed:
    """The peer broke the protocol (RFC 6455 7.1.7): a Close frame with ``code``
    (1002, 1007 or 1009) is queued in ``data_to_send``; write it and close the
    TCP connection.  ``reason`` says what was wrong (for the log; the Close
    frame carries a short version)."""

    code: int
    reason: str


@dataclass(slots=True)
class ConnectionClosed:
    """The peer closed the TCP connection.  ``code`` is the close code of the
    closing handshake if it completed, else 1006 (abnormal closure)."""

    code: int
    reason: str = ""


Event = TextMessage | BinaryMessage | Ping | Pong | CloseReceived | ConnectionFailed | ConnectionClosed
