"""The two state machines of an HTTP/1.1 server connection, as tables (see ``evloop.http.connection``).

Each side's transitions are one table, ``(state, event) -> state``; an
event a state does not take raises ``StateError`` naming both.
"""

import enum

from .errors import StateError

__all__ = ["RECV_EVENTS", "RECV_TRANSITIONS", "SEND_EVENTS", "SEND_TRANSITIONS", "RecvState", "SendState",
           "recv_transition", "send_transition"]


class RecvState(enum.Enum):
    IDLE = "IDLE"
    BODY = "BODY"
    DONE = "DONE"
    CLOSED = "CLOSED"
    ERROR = "ERROR"

    # Members are singletons; identity hashing keeps table lookups in C.
    __hash__ = object.__hash__


class SendState(enum.Enum):
    IDLE = "IDLE"
    SEND_RESPONSE = "SEND_RESPONSE"
    SEND_BODY = "SEND_BODY"
    DONE = "DONE"
    MUST_CLOSE = "MUST_CLOSE"
    SWITCHED = "SWITCHED"  # a 101 went out: the connection speaks another protocol now

    __hash__ = object.__hash__


RECV_EVENTS = ("head", "complete_head", "data", "end", "eof", "error", "next_cycle")
RECV_TRANSITIONS = {
    (RecvState.IDLE, "head"): RecvState.BODY,
    # With implicit_end, a head without a body is the whole request.
    (RecvState.IDLE, "complete_head"): RecvState.DONE,
    (RecvState.BODY, "data"): RecvState.BODY,
    (RecvState.BODY, "end"): RecvState.DONE,
    (RecvState.DONE, "next_cycle"): RecvState.IDLE,
    (RecvState.IDLE, "eof"): RecvState.CLOSED,
    (RecvState.BODY, "eof"): RecvState.CLOSED,
    (RecvState.IDLE, "error"): RecvState.ERROR,
    (RecvState.BODY, "error"): RecvState.ERROR,
}

SEND_EVENTS = (
    "request",
    "informational",
    "response",
    "complete_response",
    "data",
    "end",
    "error_response",
    "next_cycle",
    "switch_protocols",
)
SEND_TRANSITIONS = {
    (SendState.IDLE, "request"): SendState.SEND_RESPONSE,
    (SendState.SEND_RESPONSE, "informational"): SendState.SEND_RESPONSE,
    (SendState.SEND_RESPONSE, "response"): SendState.SEND_BODY,
    (SendState.SEND_RESPONSE, "complete_response"): SendState.DONE,
    (SendState.SEND_BODY, "data"): SendState.SEND_BODY,
    (SendState.SEND_BODY, "end"): SendState.DONE,
    (SendState.DONE, "next_cycle"): SendState.IDLE,
    # An error response is always possible; once a response has started it
    # is empty and only forces the close.
    (SendState.IDLE, "error_response"): SendState.MUST_CLOSE,
    (SendState.SEND_RESPONSE, "error_response"): SendState.MUST_CLOSE,
    (SendState.SEND_BODY, "error_response"): SendState.MUST_CLOSE,
    (SendState.DONE, "error_response"): SendState.MUST_CLOSE,
    (SendState.MUST_CLOSE, "error_response"): SendState.MUST_CLOSE,
    # A 101 answers a complete request (the WebSocket handshake has no
    # body); after it HTTP is over on this connection, in both directions.
    (SendState.SEND_RESPONSE, "switch_protocols"): SendState.SWITCHED,
}

_SEND_DONE = SendState.DONE
_SEND_MUST_CLOSE = SendState.MUST_CLOSE


def recv_transition(state: RecvState, event: str) -> RecvState:
    try:
        return RECV_TRANSITIONS[state, event]
    except KeyError:
        raise StateError(f"receiving side: no transition from {state.name} on {event!r}") from None


def send_transition(state: SendState, event: str, keep_alive: bool = True) -> SendState:
    try:
        new = SEND_TRANSITIONS[state, event]
    except KeyError:
        raise StateError(f"sending side: no transition from {state.name} on {event!r}") from None
    if new is _SEND_DONE and not keep_alive:
        return _SEND_MUST_CLOSE
    return new
