"""The opening handshake (RFC 6455 section 4), both sides, as decisions on header pairs.

Server side: ``accept_handshake(method, version, headers, ...)`` takes a
parsed request (``evloop.http.RequestHead``'s fields) and returns ``Accept``
(the fields of the 101 response and what was negotiated) or ``Refuse`` (an
HTTP answer to send instead).  ``wants_websocket`` tells an upgrade request
from a plain GET, which gets the route's ordinary HTTP answer.

Client side: ``ClientHandshake`` makes the request and checks the answer.

Every field we build goes through ``evloop.http.fields.check_field``, the
one header codec of the HTTP side.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..http.fields import check_field, is_valid_name
from .deflate import DeflateConfig, DeflateParams, negotiate_client, negotiate_server, offer_value
from .errors import HandshakeError

__all__ = [
    "Accept",
    "ClientHandshake",
    "Negotiated",
    "Refuse",
    "accept_handshake",
    "accept_key",
    "wants_websocket",
]

_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 1.3
WEBSOCKET_VERSION = "13"
DEFAULT_DEFLATE = DeflateConfig()  # permessage-deflate on, the RFC's defaults

Headers = Iterable[tuple[str, str]]


def accept_key(key: str) -> str:
    """``Sec-WebSocket-Accept`` for a ``Sec-WebSocket-Key`` (RFC 6455 4.2.2 item 5.4)."""
    return base64.b64encode(hashlib.sha1(key.encode("ascii") + _GUID).digest()).decode("ascii")


def _values(headers: Headers, name: str) -> list[str]:
    """The values of every field named ``name`` (lowercase), in order."""
    return [value for field_name, value in headers if field_name.lower() == name]


def _tokens(values: list[str]) -> list[str]:
    """The elements of comma-list values (RFC 9110 5.6.1), lowercased, empty ones skipped."""
    return [element.strip(" \t").lower() for value in values for element in value.split(",") if element.strip(" \t")]


def wants_websocket(headers: Headers) -> bool:
    """Whether a request asks to upgrade to WebSocket (``Upgrade`` lists ``websocket``)."""
    return "websocket" in _tokens(_values(headers, "upgrade"))


@dataclass(slots=True)
class Accept:
    """Answer ``101 Switching Protocols`` with ``headers``, then speak WebSocket.

    ``subprotocol`` and ``deflate`` are what was negotiated; pass them to
    ``WebSocketConnection``.
    """

    headers: list[tuple[str, str]]
    subprotocol: str | None
    deflate: DeflateParams | None
    status: int = 101


@dataclass(slots=True)
class Refuse:
    """Answer with this HTTP response instead of upgrading (the connection stays HTTP).

    ``reason`` is for the log; ``body`` says it to the client in plain text.
    """

    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


def _refuse(status: int, reason: str, *extra: tuple[str, str]) -> Refuse:
    body = (reason + "\n").encode("utf-8")
    return Refuse(status, reason, [("Content-Type", "text/plain; charset=utf-8"), *extra], body)


def accept_handshake(
    method: str,
    version: str,
    headers: Headers,
    *,
    subprotocols: Sequence[str] = (),
    deflate: DeflateConfig | None = DEFAULT_DEFLATE,
) -> Accept | Refuse:
    """Decide on a WebSocket upgrade request (RFC 6455 4.2.1-4.2.2).

    ``method``, ``version`` and ``headers`` as in ``RequestHead`` (field
    names in any case).  ``subprotocols``: those this endpoint speaks, in its
    order of preference; the first the client also lists is chosen (none:
    the answer names none and the client decides).  ``deflate``: accept
    permessage-deflate with these settings, or None to leave it off.

    Refusals: 405 for a method other than GET, 400 for HTTP/1.0, a missing
    Host, an ``Upgrade`` without ``websocket``, a ``Connection`` without
    ``upgrade``, a key that is not 16 bytes of base64 or a broken extension
    field; 426 with ``Sec-WebSocket-Version: 13`` for another version.
    Raises ``ValueError`` when a configured subprotocol is not a token.
    """
    headers = list(headers)
    if method != "GET":
        return _refuse(405, "a WebSocket handshake is a GET", ("Allow", "GET"))
    if version != "HTTP/1.1":
        return _refuse(400, "a WebSocket handshake needs HTTP/1.1")
    if not _values(headers, "host"):
        return _refuse(400, "Host field missing")
    if "websocket" not in _tokens(_values(headers, "upgrade")):
        return _refuse(400, "Upgrade field without websocket")
    if "upgrade" not in _tokens(_values(headers, "connection")):
        return _refuse(400, "Connection field without upgrade")
    versions = _values(headers, "sec-websocket-version")
    if len(versions) != 1 or versions[0].strip(" \t") != WEBSOCKET_VERSION:
        return _refuse(
            426,
            "unsupported WebSocket version (13 is supported)",
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Version", WEBSOCKET_VERSION),
        )
    keys = _values(headers, "sec-websocket-key")
    if len(keys) != 1:
        return _refuse(400, "one Sec-WebSocket-Key field needed")
    key = keys[0].strip(" \t")
    try:
        raw_key = base64.b64decode(key, validate=True)
    except (binascii.Error, ValueError):
        raw_key = b""
    if len(raw_key) != 16:
        return _refuse(400, "Sec-WebSocket-Key is not 16 bytes of base64")

    response = [("Upgrade", "websocket"), ("Connection", "Upgrade"), ("Sec-WebSocket-Accept", accept_key(key))]
    subprotocol = None
    offered = [p.strip(" \t") for v in _values(headers, "sec-websocket-protocol") for p in v.split(",")]
    for candidate in subprotocols:
        if is_valid_name(candidate) is None:
            raise ValueError(f"subprotocol {candidate!r} is not a token (RFC 6455 4.1)")
        if candidate in offered:  # case-sensitive, RFC 6455 4.1 item 10
            subprotocol = candidate
            response.append(("Sec-WebSocket-Protocol", candidate))
            break
    params = None
    if deflate is not None:
        try:
            params = negotiate_server(_values(headers, "sec-websocket-extensions"), deflate)
        except ValueError as exc:
            return _refuse(400, f"Sec-WebSocket-Extensions: {exc}")
        if params is not None:
            response.append(("Sec-WebSocket-Extensions", params.response_value()))
    for name, value in response:
        check_field(name, value)
    return Accept(response, subprotocol, params)


@dataclass(slots=True)
class Negotiated:
    """What a server's 101 answer settled, for ``WebSocketConnection``."""

    subprotocol: str | None
    deflate: DeflateParams | None


class ClientHandshake:
    """A client's opening handshake: the request to send and the check of the answer.

    ``host``: the Host field value (``example.com:8080``); ``target``: the
    request target (``/chat?room=1``).  ``subprotocols``: offered in this
    order.  ``deflate``: offer permessage-deflate with these settings, or
    None.  ``headers``: more fields (``Origin``, cookies...).  ``key``: the
    ``Sec-WebSocket-Key`` (random when None; tests pass a fixed one).
    """

    __slots__ = ("deflate", "headers", "host", "key", "subprotocols", "target")

    def __init__(
        self,
        host: str,
        target: str = "/",
        *,
        subprotocols: Sequence[str] = (),
        deflate: DeflateConfig | None = DEFAULT_DEFLATE,
        headers: Headers = (),
        key: str | None = None,
    ) -> None:
        self.host = host
        self.target = target
        self.subprotocols = tuple(subprotocols)
        self.deflate = deflate
        self.headers = list(headers)
        self.key = key if key is not None else base64.b64encode(os.urandom(16)).decode("ascii")

    def request_headers(self) -> list[tuple[str, str]]:
        """The request's fields, checked."""
        fields = [
            ("Host", self.host),
            ("Upgrade", "websocket"),
            ("Connection", "Upgrade"),
            ("Sec-WebSocket-Key", self.key),
            ("Sec-WebSocket-Version", WEBSOCKET_VERSION),
        ]
        if self.subprotocols:
            fields.append(("Sec-WebSocket-Protocol", ", ".join(self.subprotocols)))
        if self.deflate is not None:
            fields.append(("Sec-WebSocket-Extensions", offer_value(self.deflate)))
        fields.extend(self.headers)
        for name, value in fields:
            check_field(name, value)
        return fields

    def request(self) -> bytes:
        """The whole request head to write."""
        if any(c in self.target for c in " \r\n\t") or not self.target:
            raise ValueError(f"invalid request target {self.target!r}")
        lines = [f"GET {self.target} HTTP/1.1"]
        lines.extend(f"{name}: {value}" for name, value in self.request_headers())
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def check_response(self, status: int, headers: Headers) -> Negotiated:
        """Check the server's answer (RFC 6455 4.1, the client's checks 1-6).

        Raises ``HandshakeError`` with the reason for any status but 101, a
        missing ``Upgrade: websocket`` or ``Connection: upgrade``, a wrong
        ``Sec-WebSocket-Accept``, a subprotocol or an extension that was not
        offered.
        """
        headers = list(headers)
        if status != 101:
            raise HandshakeError(f"status {status} instead of 101")
        if "websocket" not in _tokens(_values(headers, "upgrade")):
            raise HandshakeError("Upgrade field without websocket")
        if "upgrade" not in _tokens(_values(headers, "connection")):
            raise HandshakeError("Connection field without upgrade")
        accepts = _values(headers, "sec-websocket-accept")
        if len(accepts) != 1 or accepts[0].strip(" \t") != accept_key(self.key):
            raise HandshakeError("wrong Sec-WebSocket-Accept")
        protocols = _values(headers, "sec-websocket-protocol")
        subprotocol = None
        if protocols:
            subprotocol = protocols[0].strip(" \t")
            if len(protocols) > 1 or subprotocol not in self.subprotocols:
                raise HandshakeError(f"subprotocol {subprotocol!r} was not offered")
        deflate = negotiate_client(_values(headers, "sec-websocket-extensions"), self.deflate)
        return Negotiated(subprotocol, deflate)
