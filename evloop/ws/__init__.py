"""Sans-I/O WebSocket for evloop (RFC 6455, permessage-deflate RFC 7692): bytes in, events out.

No sockets, selectors or clocks here.  ``handshake.accept_handshake`` decides
on an upgrade request (``ClientHandshake`` for the other side);
``connection.WebSocketConnection`` then turns received bytes into events and
calls into bytes to send.
"""

from .connection import ConnectionState, PreparedMessage, Role, WebSocketConnection
from .deflate import DeflateConfig, DeflateParams
from .errors import HandshakeError, StateError
from .events import (
    BinaryMessage,
    CloseReceived,
    ConnectionClosed,
    ConnectionFailed,
    Event,
    Ping,
    Pong,
    TextMessage,
)
from .frames import CloseCode
from .handshake import Accept, ClientHandshake, Negotiated, Refuse, accept_handshake, accept_key, wants_websocket

__all__ = [
    "Accept",
    "BinaryMessage",
    "ClientHandshake",
    "CloseCode",
    "CloseReceived",
    "ConnectionClosed",
    "ConnectionFailed",
    "ConnectionState",
    "DeflateConfig",
    "DeflateParams",
    "Event",
    "HandshakeError",
    "Negotiated",
    "Ping",
    "Pong",
    "PreparedMessage",
    "Refuse",
    "Role",
    "StateError",
    "TextMessage",
    "WebSocketConnection",
    "accept_handshake",
    "accept_key",
    "wants_websocket",
]
