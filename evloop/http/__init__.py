"""Sans-I/O HTTP/1.1 for evloop: bytes in, events out; calls in, bytes out.

No sockets, selectors or clocks here; see ``connection.ServerConnection``.
"""

from .connection import ServerConnection
from .errors import ProtocolError, StateError
from .events import NEED_DATA, PAUSED, ConnectionClosed, Data, EndOfMessage, RequestHead
from .parser import Limits
from .states import RecvState, SendState

__all__ = [
    "NEED_DATA",
    "PAUSED",
    "ConnectionClosed",
    "Data",
    "EndOfMessage",
    "Limits",
    "ProtocolError",
    "RecvState",
    "RequestHead",
    "SendState",
    "ServerConnection",
    "StateError",
]
