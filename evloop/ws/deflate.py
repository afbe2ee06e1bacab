"""permessage-deflate (RFC 7692): negotiation and the per-connection compressor.

Theory of operation
-------------------
A message is compressed as one raw DEFLATE stream flushed with Z_SYNC_FLUSH,
whose trailing ``00 00 ff ff`` is removed before it goes out and appended
again before it is inflated (RFC 7692 7.2.1-7.2.2).  With context takeover
(the default) each side keeps its LZ77 window from message to message, so a
compressed frame only makes sense to the one peer that saw the messages
before it; ``*_no_context_takeover`` starts every message afresh.
``*_max_window_bits`` bounds the window the named side compresses with (and
so the memory the other side needs to inflate).

zlib cannot compress raw DEFLATE with an 8-bit window (1.2.9 and later
refuse it), so an offer that would make us compress with 8 bits is declined
(server) or the handshake fails (client), as websockets does.

Inflating is bounded: ``Inflater.inflate`` asks zlib for at most one byte
more than the message may still grow (``max_length``), so a small frame that
would inflate to gigabytes costs at most the message limit in memory before
the connection fails with 1009.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

from .errors import HandshakeError

__all__ = [
    "DeflateConfig",
    "DeflateParams",
    "Deflater",
    "Inflater",
    "MessageTooBig",
    "negotiate_client",
    "negotiate_server",
    "parse_extensions",
]

EXTENSION_NAME = "permessage-deflate"
_TAIL = b"\x00\x00\xff\xff"


@dataclass(frozen=True, slots=True)
class DeflateConfig:
    """What an endpoint asks for when it offers (client) or accepts (server) permessage-deflate.

    The flags and window sizes are the RFC 7692 parameters.  A server always
    honours what the client asks and adds what is set here; a client puts
    these in its offer.  ``client_max_window_bits`` None: a client offers the
    parameter without a value (it can compress with a smaller window if the
    server asks); a server leaves the client's choice alone.
    ``compress_level`` and ``mem_level`` go to ``zlib.compressobj``; the
    defaults trade some ratio for memory and speed (websockets uses the same
    memLevel 5; level 6 is zlib's default).
    """

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int | None = None
    client_max_window_bits: int | None = None
    compress_level: int = 6
    mem_level: int = 5

    def __post_init__(self) -> None:
        for name in ("server_max_window_bits", "client_max_window_bits"):
            bits = getattr(self, name)
            if bits is not None and not 9 <= bits <= 15:
                raise ValueError(f"{name} must be between 9 and 15 (zlib cannot compress with 8)")


@dataclass(frozen=True, slots=True)
class DeflateParams:
    """The negotiated parameters, window sizes resolved (15 when not stated)."""

    server_no_context_takeover: bool = False
    client_no_context_takeover: bool = False
    server_max_window_bits: int = 15
    client_max_window_bits: int = 15
    compress_level: int = 6
    mem_level: int = 5
    # The offer named server_max_window_bits: the answer must state it, 15
    # included, or the client takes the offer as declined (RFC 7692 7.1.2.1;
    # websockets' client then fails the handshake).
    server_bits_offered: bool = False

    def response_value(self) -> str:
        """The ``Sec-WebSocket-Extensions`` value a server answers with."""
        value = EXTENSION_NAME
        if self.server_no_context_takeover:
            value += "; server_no_context_takeover"
        if self.client_no_context_takeover:
            value += "; client_no_context_takeover"
        if self.server_max_window_bits != 15 or self.server_bits_offered:
            value += f"; server_max_window_bits={self.server_max_window_bits}"
        if self.client_max_window_bits != 15:
            value += f"; client_max_window_bits={self.client_max_window_bits}"
        return value


# Sec-WebSocket-Extensions (RFC 6455 9.1):
#   extension-list = 1#( token *( ";" token [ "=" ( token / quoted-string ) ] ) )
# Parameter values here are small integers or absent, so a quoted-string is
# accepted only when it holds a token (RFC 6455 9.1 says it must).
_TOKEN = r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+"
_PARAM_RE = re.compile(rf"[ \t]*({_TOKEN})[ \t]*(?:=[ \t]*(?:({_TOKEN})|\"({_TOKEN})\"))?[ \t]*")


def parse_extensions(values: list[str]) -> list[tuple[str, list[tuple[str, str | None]]]]:
    """``Sec-WebSocket-Extensions`` field values as ``[(name, [(param, value or None)])]``.

    Empty list elements are skipped (RFC 9110 5.6.1).  Raises ``ValueError``
    when the syntax is broken.
    """
    extensions: list[tuple[str, list[tuple[str, str | None]]]] = []
    for value in values:
        for element in value.split(","):
            if not element.strip(" \t"):
                continue
            parts = element.split(";")
            name_match = re.fullmatch(rf"[ \t]*({_TOKEN})[ \t]*", parts[0])
            if name_match is None:
                raise ValueError(f"invalid extension {element.strip()[:40]!r}")
            params: list[tuple[str, str | None]] = []
            for part in parts[1:]:
                match = _PARAM_RE.fullmatch(part)
                if match is None:
                    raise ValueError(f"invalid extension parameter {part.strip()[:40]!r}")
                params.append((match[1].lower(), match[2] if match[2] is not None else match[3]))
            extensions.append((name_match[1].lower(), params))
    return extensions


def _window_bits(value: str | None) -> int | None:
    """A ``*_max_window_bits`` value (RFC 7692 7.1.2: 8 to 15, no leading zero), else None."""
    if value is not None and len(value) <= 2 and value.isdigit() and value[0] != "0" and 8 <= int(value) <= 15:
        return int(value)
    return None


_NO_VALUE = object()  # client_max_window_bits offered without a value


def _read_params(params: list[tuple[str, str | None]], is_offer: bool) -> dict[str, object] | str:
    """The parameters as a dict, or why they are invalid (RFC 7692 7, 7.1).

    Each parameter at most once; the takeover flags take no value; the window
    sizes need one, except ``client_max_window_bits`` in an offer.
    """
    seen: dict[str, object] = {}
    for name, value in params:
        if name in seen:
            return f"duplicate parameter {name}"
        if name in ("server_no_context_takeover", "client_no_context_takeover"):
            if value is not None:
                return f"{name} takes no value"
            seen[name] = True
        elif name in ("server_max_window_bits", "client_max_window_bits"):
            if value is None and name == "client_max_window_bits" and is_offer:
                seen[name] = _NO_VALUE
                continue
            bits = _window_bits(value)
            if bits is None:
                return f"invalid {name} {value!r}"
            seen[name] = bits
        else:
            return f"unknown parameter {name}"
    return seen


def negotiate_server(values: list[str], config: DeflateConfig) -> DeflateParams | None:
    """Pick the first permessage-deflate offer in ``values`` this server accepts.

    ``values``: the request's ``Sec-WebSocket-Extensions`` field values.
    Returns the parameters (``response_value()`` is the field to answer
    with) or None when no offer is acceptable.  An offer with unknown,
    repeated or invalid parameters is declined (RFC 7692 7), as is one that
    limits our window to 8 bits.  Raises ``ValueError`` when the field does
    not parse.
    """
    for name, raw in parse_extensions(values):
        if name != EXTENSION_NAME:
            continue
        offer = _read_params(raw, is_offer=True)
        if isinstance(offer, str):
            continue
        # server_max_window_bits: the client's limit on our window, lowered
        # further by ours (RFC 7692 7.1.2.1).
        server_bits = offer.get("server_max_window_bits")
        assert server_bits is None or isinstance(server_bits, int)
        if config.server_max_window_bits is not None:
            server_bits = min(server_bits or 15, config.server_max_window_bits)
        if server_bits == 8:
            continue
        # client_max_window_bits: only if the client offered the parameter
        # (RFC 7692 7.1.2.2); its value, if any, is an upper bound.
        client_offer = offer.get("client_max_window_bits")
        client_bits: int | None = None
        if client_offer is _NO_VALUE:
            client_bits = config.client_max_window_bits
        elif isinstance(client_offer, int):
            client_bits = min(client_offer, config.client_max_window_bits or 15)
        return DeflateParams(
            server_no_context_takeover=bool(offer.get("server_no_context_takeover"))
            or config.server_no_context_takeover,
            client_no_context_takeover=bool(offer.get("client_no_context_takeover"))
            or config.client_no_context_takeover,
            server_max_window_bits=server_bits or 15,
            client_max_window_bits=client_bits or 15,
            compress_level=config.compress_level,
            mem_level=config.mem_level,
            server_bits_offered="server_max_window_bits" in offer,
        )
    return None


def offer_value(config: DeflateConfig) -> str:
    """The ``Sec-WebSocket-Extensions`` value a client offers."""
    value = EXTENSION_NAME
    if config.server_no_context_takeover:
        value += "; server_no_context_takeover"
    if config.client_no_context_takeover:
        value += "; client_no_context_takeover"
    if config.server_max_window_bits is not None:
        value += f"; server_max_window_bits={config.server_max_window_bits}"
    if config.client_max_window_bits is not None:
        value += f"; client_max_window_bits={config.client_max_window_bits}"
    else:
        value += "; client_max_window_bits"
    return value


def negotiate_client(values: list[str], config: DeflateConfig | None) -> DeflateParams | None:
    """Check a server's ``Sec-WebSocket-Extensions`` answer against our offer.

    Returns the parameters, or None when the server did not accept
    permessage-deflate.  Raises ``HandshakeError`` for anything the client
    did not offer or an answer that breaks RFC 7692 7.1.
    """
    try:
        extensions = parse_extensions(values)
    except ValueError as exc:
        raise HandshakeError(str(exc)) from None
    if not extensions:
        return None
    if config is None or len(extensions) > 1 or extensions[0][0] != EXTENSION_NAME:
        raise HandshakeError("the server accepted an extension that was not offered")
    answer = _read_params(extensions[0][1], is_offer=False)
    if isinstance(answer, str):
        raise HandshakeError(f"permessage-deflate answer: {answer}")
    if config.server_no_context_takeover and not answer.get("server_no_context_takeover"):
        raise HandshakeError("permessage-deflate answer: server_no_context_takeover missing")
    server_bits = answer.get("server_max_window_bits")
    assert server_bits is None or isinstance(server_bits, int)
    ours = config.server_max_window_bits
    if ours is not None and (server_bits is None or server_bits > ours):
        raise HandshakeError("permessage-deflate answer: server_max_window_bits above the offer")
    client_bits = answer.get("client_max_window_bits")
    assert client_bits is None or isinstance(client_bits, int)
    if client_bits is None:
        client_bits = config.client_max_window_bits
    elif config.client_max_window_bits is not None and client_bits > config.client_max_window_bits:
        raise HandshakeError("permessage-deflate answer: client_max_window_bits above the offer")
    if client_bits == 8:
        raise HandshakeError("permessage-deflate answer: client_max_window_bits=8 (zlib cannot compress with 8)")
    return DeflateParams(
        server_no_context_takeover=bool(answer.get("server_no_context_takeover")),
        client_no_context_takeover=bool(answer.get("client_no_context_takeover")) or config.client_no_context_takeover,
        server_max_window_bits=server_bits or 15,
        client_max_window_bits=client_bits or 15,
        compress_level=config.compress_level,
        mem_level=config.mem_level,
    )


class MessageTooBig(Exception):
    """A message inflated past its limit (the connection closes with 1009)."""


class Deflater:
    """Compresses the messages one side sends (RFC 7692 7.2.1).

    The zlib object (about 140 KiB with a 15-bit window and memLevel 5) is
    made at the first message, and without context takeover dropped after
    each one, so an idle connection holds none.
    """

    __slots__ = ("_level", "_mem_level", "_no_takeover", "_wbits", "_zobj")

    def __init__(self, window_bits: int, no_context_takeover: bool, level: int = 6, mem_level: int = 5) -> None:
        self._wbits = -window_bits
        self._level = level
        self._mem_level = mem_level
        self._no_takeover = no_context_takeover
        self._zobj: zlib._Compress | None = None

    def deflate(self, data: bytes | bytearray, final: bool) -> bytes:
        """The compressed payload of one frame of a message (``final``: its last frame).

        Frames of one message are pieces of one DEFLATE stream, each flushed
        so the peer can inflate it on arrival; only the message's end loses
        the ``00 00 ff ff`` of its flush.
        """
        zobj = self._zobj
        if zobj is None:
            zobj = self._zobj = zlib.compressobj(self._level, zlib.DEFLATED, self._wbits, self._mem_level)
        out = zobj.compress(data) + zobj.flush(zlib.Z_SYNC_FLUSH)
        if final:
            if self._no_takeover:
                self._zobj = None
            # A sync flush always ends with an empty stored block, 00 00 ff ff.
            return out[:-4]
        return out


class Inflater:
    """Inflates the messages the peer sends, with a bound on their size (RFC 7692 7.2.2).

    Like ``Deflater``, the zlib object is made at the first compressed
    message and, without context takeover, dropped after each one.
    """

    __slots__ = ("_no_takeover", "_wbits", "_zobj")

    def __init__(self, window_bits: int, no_context_takeover: bool) -> None:
        self._wbits = -window_bits
        self._no_takeover = no_context_takeover
        self._zobj: zlib._Decompress | None = None

    def inflate(self, data: bytes | bytearray, final: bool, max_bytes: int) -> bytes:
        """The inflated bytes of a piece of a compressed message.

        ``final``: the piece ends the message.  ``max_bytes``: how much the
        message may still grow; raises ``MessageTooBig`` when it would grow
        more, having produced at most ``max_bytes + 1`` bytes.  Raises
        ``zlib.error`` when the data is not DEFLATE.
        """
        zobj = self._zobj
        if zobj is None:
            zobj = self._zobj = zlib.decompressobj(self._wbits)
        # max_length 0 means unlimited to zlib; max_bytes + 1 is never 0.
        out = zobj.decompress(data, max_bytes + 1)
        if len(out) > max_bytes:
            raise MessageTooBig
        if final:
            tail = zobj.decompress(_TAIL, max_bytes - len(out) + 1)
            if tail:
                if len(tail) + len(out) > max_bytes:
                    raise MessageTooBig
                out += tail
            if self._no_takeover:
                self._zobj = None
        return out
