"""The phases of one HTTP/1.1 connection in the server, and the one table of their transitions.

The sans-I/O ``ServerConnection`` knows the protocol's states (what may be
parsed or sent next); this machine knows the connection's place in the
server's life: whose turn it is (the client's, the app's, the socket's) and
which deadline runs.  Every change of phase goes through ``TRANSITIONS``; a
pair that is not in it is a bug and raises ``PhaseError`` naming both.

::

    NEW --head_started--> HEAD            (the deadline counted from the accept runs on)
    NEW, IDLE, HEAD --head_with_body--> BODY --body_progress--> BODY
    NEW, IDLE, HEAD, BODY --request--> IN_APP --deferred--> DEFERRED
    IN_APP --read_body--> BODY     (a streamed-body route took the head: its body is read now)
    IN_APP, DEFERRED --streaming--> STREAMING         IN_APP, DEFERRED --sending_file--> SENDING_FILE
    IN_APP, DEFERRED, STREAMING, SENDING_FILE --response_done--> IDLE
    IN_APP, DEFERRED, STREAMING, SENDING_FILE --last_response_done--> CLOSING
    IDLE --writes_backed_up--> DRAINING --writes_drained--> IDLE
    NEW, IDLE, HEAD, BODY --error_response--> LINGER
    NEW, IDLE, DRAINING, HEAD, BODY, DEFERRED --close--> CLOSING   (DEFERRED: the client left; request abandoned)
    IN_APP, DEFERRED --upgrade--> UPGRADED   (101 sent: the transport has another protocol, server/ws.py)
    any --lost--> CLOSED

Each phase has at most one deadline, armed by the transition into it
(``PHASE_TIMEOUTS`` names which setting it is); the server's handler of an
expired deadline is chosen by the phase.
"""

from __future__ import annotations

import enum
from typing import Literal

from .config import LINGER_S, ServerConfig

__all__ = ["Phase", "PhaseEvent", "PhaseError", "TRANSITIONS", "PHASE_TIMEOUTS", "READING_PHASES",
           "SENDING_PHASES", "phase_timeouts"]


class Phase(enum.Enum):
    NEW = "new"                    # accepted, no byte of a request yet: the header timeout from the accept
    IDLE = "idle"                  # between requests, no byte of the next one: the keep-alive timeout
    HEAD = "head"                  # part of a request head is buffered: the header timeout
    BODY = "body"                  # reading a request body: the body timeout, re-armed by each part
    IN_APP = "in_app"              # the handler is running (it holds the loop: no deadline can fire)
    DEFERRED = "deferred"          # the handler returned without a response: the handler timeout for respond()
    STREAMING = "streaming"        # sending an iterable body: the send timeout while the peer lags
    SENDING_FILE = "sending_file"  # sending a file region: the send timeout
    DRAINING = "draining"          # a response is queued above the high water mark: the send timeout
    CLOSING = "closing"            # the last response is queued; the transport closes once it is sent
    LINGER = "linger"              # an error response is sent and half-closed: drain the client's bytes
    UPGRADED = "upgraded"          # a 101 went out: another protocol owns the transport (no deadline here)
    CLOSED = "closed"              # the connection is gone

    # Members are singletons: identity hashing.
    __hash__ = object.__hash__

    # Set below from TRANSITIONS, READING_PHASES and SENDING_PHASES.
    exits: dict[str, tuple[Phase, bool]]
    reads: bool  # the next request is read and parsed in this phase
    sends: bool  # this phase's deadline is the send timeout


PhaseEvent = Literal[
    "head_started", "head_with_body", "body_progress", "request", "deferred", "streaming", "sending_file",
    "response_done", "last_response_done", "writes_backed_up", "writes_drained", "error_response", "close",
    "upgrade", "lost", "read_body",
]


class PhaseError(RuntimeError):
    """An event that the connection's current phase does not allow: a bug in the server."""

    def __init__(self, phase: Phase, event: str) -> None:
        super().__init__(f"connection phase {phase.name} has no transition on {event!r}")
        self.phase = phase
        self.event = event


NEW, IDLE, HEAD, BODY = Phase.NEW, Phase.IDLE, Phase.HEAD, Phase.BODY
IN_APP, DEFERRED, STREAMING, SENDING_FILE = Phase.IN_APP, Phase.DEFERRED, Phase.STREAMING, Phase.SENDING_FILE
DRAINING, CLOSING, LINGER, CLOSED = Phase.DRAINING, Phase.CLOSING, Phase.LINGER, Phase.CLOSED
UPGRADED = Phase.UPGRADED

# Phases in which the next request is read and parsed.
READING_PHASES = frozenset((NEW, IDLE, HEAD, BODY))
# Phases whose deadline is the send timeout: the peer must keep reading what we queue.
SENDING_PHASES = frozenset((STREAMING, SENDING_FILE, DRAINING, CLOSING))
_RESPONDING = (IN_APP, DEFERRED, STREAMING, SENDING_FILE)

# (phase, event) -> (next phase, whether the transition arms the next phase's deadline).
TRANSITIONS: dict[tuple[Phase, str], tuple[Phase, bool]] = {
    # A head begun on a new connection must end within the header timeout of
    # the accept (as nginx's client_header_timeout): the deadline runs on.
    (NEW, "head_started"): (HEAD, False),
    (IDLE, "head_started"): (HEAD, True),
    **{(phase, "head_with_body"): (BODY, True) for phase in (NEW, IDLE, HEAD)},
    (BODY, "body_progress"): (BODY, True),
    **{(phase, "request"): (IN_APP, True) for phase in (NEW, IDLE, HEAD, BODY)},
    (IN_APP, "deferred"): (DEFERRED, True),
    (IN_APP, "read_body"): (BODY, True),  # a streamed-body route: the app has the request, the body follows
    **{(phase, "streaming"): (STREAMING, True) for phase in (IN_APP, DEFERRED)},
    **{(phase, "sending_file"): (SENDING_FILE, True) for phase in (IN_APP, DEFERRED)},
    **{(phase, "response_done"): (IDLE, True) for phase in _RESPONDING},
    **{(phase, "last_response_done"): (CLOSING, True) for phase in _RESPONDING},
    (IDLE, "writes_backed_up"): (DRAINING, True),
    # A stream that fills the buffer again starts a new send timeout from its new level.
    (STREAMING, "writes_backed_up"): (STREAMING, True),
    (DRAINING, "writes_drained"): (IDLE, True),
    **{(phase, "error_response"): (LINGER, True) for phase in (NEW, IDLE, HEAD, BODY)},
    # From DEFERRED: the client left while its request was in the app.
    **{(phase, "close"): (CLOSING, True) for phase in (NEW, IDLE, DRAINING, HEAD, BODY, DEFERRED)},
    # The app accepted a WebSocket handshake, at once or from respond().
    **{(phase, "upgrade"): (UPGRADED, True) for phase in (IN_APP, DEFERRED)},
    **{(phase, "lost"): (CLOSED, True) for phase in Phase},
}

# Which deadline each phase runs: a ServerConfig field name, "linger", or None.
PHASE_TIMEOUTS: dict[Phase, str | None] = {
    NEW: "header_timeout_s",
    IDLE: "keepalive_timeout_s",
    HEAD: "header_timeout_s",
    BODY: "body_timeout_s",
    IN_APP: None,
    DEFERRED: "handler_timeout_s",
    STREAMING: "send_timeout_s",
    SENDING_FILE: "send_timeout_s",
    DRAINING: "send_timeout_s",
    CLOSING: "send_timeout_s",
    LINGER: "linger",
    UPGRADED: None,  # the new protocol runs its own deadlines
    CLOSED: None,
}


# Each member carries its own exits from the table, and whether it reads or
# sends, as attributes: a member's hash goes through Python-level slot
# lookups (~40 ns), so ``TRANSITIONS[phase, event]`` cost twice
# ``phase.exits[event]`` and a set membership twice an attribute (measured
# with /tmp-style timeit; ~0.1 us of a 2.4 us pipelined request).  The exits
# are a plain dict, not a subclass with ``__missing__``: CPython 3.11
# specializes a subscript of an exact dict only, and a dict subclass's goes
# through the generic ``__getitem__`` slot (~290 instructions against ~40;
# two a keep-alive request).  So an event a phase does not allow is a
# KeyError there, which ``HTTPProtocol._to`` turns into ``PhaseError``.  The
# few sites in h1.py that write a transition out (``request``,
# ``response_done``, ...) subscript ``exits`` themselves: a phase there that
# lacks the event (a bug) raises a KeyError naming the event, not PhaseError.
for _phase in Phase:
    _phase.exits = {event: target for (source, event), target in TRANSITIONS.items() if source is _phase}
    _phase.reads = _phase in READING_PHASES
    _phase.sends = _phase in SENDING_PHASES
del _phase


def phase_timeouts(config: ServerConfig) -> dict[Phase, float | None]:
    """Each phase's deadline in seconds for ``config`` (None: that phase has none)."""
    return {
        phase: LINGER_S if name == "linger" else _seconds(config, name) for phase, name in PHASE_TIMEOUTS.items()
    }


def _seconds(config: ServerConfig, name: str | None) -> float | None:
    if name is None:
        return None
    value = float(getattr(config, name))
    if name == "handler_timeout_s" and value == 0:
        return None  # documented: 0 turns the handler timeout off
    return value
