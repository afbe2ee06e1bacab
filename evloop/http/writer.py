"""Response serialisation: status lines, field blocks, chunk framing.

The connection decides framing and keep-alive; this module only turns
decisions into bytes.  Every response goes out as HTTP/1.1 (RFC 9110 2.5: a
server sends its highest conformant version with the received major version).
"""

from collections.abc import Iterable, Sequence
from http import HTTPStatus  # the standard library's, not evloop.http
from typing import Any, AnyStr, overload

from . import grammar
from .caches import BoundedCache, FieldsKey
from .fields import field_error, parse_content_length

STATUS_LINES: dict[int, bytes] = {
    s.value: f"HTTP/1.1 {s.value} {s.phrase}\r\n".encode("latin-1") for s in HTTPStatus
}
LAST_CHUNK = b"0\r\n\r\n"
CRLF = b"\r\n"


def status_line(status: int) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n``; unknown codes get an empty reason (RFC 9112 4)."""
    line = STATUS_LINES.get(status)
    if line is not None:
        return line
    # RFC 9110 section 15: three digits whose first, 1 to 5, is the class.
    # Response, the connection and this line all refuse the rest, so no
    # "HTTP/1.1 999" reaches the wire.
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"invalid status code {status!r} (RFC 9110 15: 100 to 599)")
    return b"HTTP/1.1 %d \r\n" % status


def custom_status_line(status: int, reason: str) -> bytes:
    """``HTTP/1.1 <status> <reason>\\r\\n`` with the application's own reason phrase.

    Raises ValueError for an invalid status, or a reason holding CR, LF or
    another control character, or a character outside latin-1.
    """
    status_line(status)  # the status's own checks
    # RFC 9112 4: reason-phrase = *( HTAB / SP / VCHAR / obs-text ), a field value's characters.
    if grammar.FIELD_VALUE_RE.fullmatch(reason) is None:
        raise ValueError(f"invalid reason phrase {reason!r} (RFC 9112 4: tabs, spaces and visible latin-1 only)")
    return b"HTTP/1.1 %d %b\r\n" % (status, reason.encode("latin-1"))


def response_head(
    status: int, block: bytes, framing: bytes, connection: bytes, date: bytes | None, server: bytes | None,
    reason: str | None = None,
) -> bytes:
    """The one builder of response heads: the status line, ``Server`` and
    ``Date`` (left out when None: the application gave its own, or an
    interim response), the application's field ``block``, the ``framing``
    and ``connection`` fields, and the empty line.

    Every argument but ``status`` and ``reason`` (the status line's reason
    phrase, None: the standard one) is serialised already (field lines end
    in CRLF); raises ValueError for an invalid status or reason.
    """
    if reason is None:
        line = STATUS_LINES.get(status) or status_line(status)
    else:
        line = custom_status_line(status, reason)
    if server is not None and date is not None:
        return b"".join((line, b"Server: ", server, b"\r\nDate: ", date, b"\r\n", block, framing, connection, CRLF))
    parts = [line]
    if server is not None:
        parts += (b"Server: ", server, CRLF)
    if date is not None:
        parts += (b"Date: ", date, CRLF)
    parts += (block, framing, connection, CRLF)
    return b"".join(parts)


def reason_phrase(status: int) -> str:
    line = STATUS_LINES.get(status)
    return line[13:-2].decode("latin-1") if line is not None else ""


@overload
def encode_fields(headers: Sequence[tuple[str, str]]) -> bytes: ...
@overload
def encode_fields(headers: Sequence[tuple[bytes, bytes]]) -> bytes: ...
def encode_fields(headers: Sequence[Sequence[Any]]) -> bytes:  # str or bytes pairs, told apart below
    """Serialise (name, value) pairs, all ``str`` or all ``bytes``, as field lines.

    Raises ValueError when a name is not a token or a value holds CR, LF or
    another control character (response splitting), or when a ``str`` is not
    latin-1.
    """
    if not headers:
        return b""
    if headers[0][0].__class__ is str:
        text = "\r\n".join(map(": ".join, headers)) + "\r\n"
        # A CRLF inside a value would make an extra, valid-looking line.
        if grammar.RESPONSE_FIELDS_RE.fullmatch(text) is None or text.count("\n") != len(headers):
            raise ValueError(_why_invalid(headers))
        return text.encode("latin-1")
    block = b"\r\n".join(map(b": ".join, headers)) + b"\r\n"
    if grammar.RESPONSE_FIELDS_BYTES_RE.fullmatch(block) is None or block.count(b"\n") != len(headers):
        raise ValueError(_why_invalid([(name.decode("latin-1"), value.decode("latin-1")) for name, value in headers]))
    return block


def _why_invalid(headers: Sequence[Sequence[Any]]) -> str:
    """The error path of ``encode_fields``: name the field that failed (``fields.field_error``)."""
    for name, value in headers:
        error = field_error(name, value)
        if error is not None:
            return error
    return f"invalid response header in {headers!r}"


def has_special_fields(block: bytes) -> bool:
    """Does the block set a field evloop manages (Connection, framing, Date, Server)?"""
    return grammar.RESPONSE_SPECIAL_BYTES_RE.search(block) is not None


class AppFields:
    """What an application's own fields say about framing and connection.

    ``block`` drops Content-Length and Transfer-Encoding: framing is decided
    by the connection, from ``content_length`` (set here when the application
    gave exactly one valid Content-Length).
    """

    __slots__ = ("block", "content_length", "connection", "close", "date", "server")

    def __init__(self, block: bytes) -> None:
        self.content_length = None
        self.connection = False
        self.close = False
        self.date = False
        self.server = False
        kept = []
        lengths = []
        for line in block.split(b"\r\n")[:-1]:
            name, _, value = line.partition(b":")
            name = name.lower()
            value = value.strip(b" \t")
            if name == b"content-length":
                lengths.append(value.decode("latin-1"))
                continue
            if name == b"transfer-encoding":
                continue
            if name == b"connection":
                self.connection = True
                tokens = {t.strip(b" \t").lower() for t in value.split(b",")}
                self.close = self.close or b"close" in tokens
            elif name == b"date":
                self.date = True
            elif name == b"server":
                self.server = True
            kept.append(line)
        if lengths:
            self.content_length = parse_content_length(lengths)
        self.block = b"".join([line + b"\r\n" for line in kept])


def prepare_fields(
    headers: Iterable[tuple[AnyStr, AnyStr]], cache: BoundedCache[FieldsKey, tuple[bytes, AppFields | None]]
) -> tuple[bytes, AppFields | None]:
    """``encode_fields`` plus ``AppFields`` when the block sets a managed field.

    Applications tend to send the same few header lists again and again, so
    results are kept in ``cache`` (``HTTP1Caches.fields``) by value.
    """
    fields = tuple(headers)  # read once: an iterator of pairs works
    try:
        cached = cache.entries.get(fields)
        cacheable = True
    except TypeError:  # unhashable pairs (lists): no caching
        cached = None
        cacheable = False
    if cached is not None:
        return cached
    cache.misses += 1
    block = encode_fields(fields)
    result = (block, AppFields(block) if has_special_fields(block) else None)
    if cacheable:
        cache.put(fields, result)
    return result


def chunk(data: bytes) -> bytes:
    """One chunk (RFC 9112 7.1); never call with empty data (that ends the body)."""
    return b"%x\r\n%b\r\n" % (len(data), data)


def error_body(status: int, reason: str) -> bytes:
    return f"{status} {reason_phrase(status)}: {reason}\n".encode()


def plain_response_head(
    status: int,
    headers: Iterable[tuple[AnyStr, AnyStr]],
    length: int,
    date: bytes | None,
    server: bytes | None,
    fields: BoundedCache[FieldsKey, tuple[bytes, AppFields | None]],
) -> bytes | None:
    """The head of a keep-alive HTTP/1.1 response with a ``length``-byte
    body, or None when the general path must decide (a field evloop manages
    among ``headers``, a status without content, an invalid status)."""
    if headers:
        block, app = prepare_fields(headers, fields)
        if app is not None:
            return None
    else:
        block = b""
    if status == 204 or status == 304 or not 200 <= status <= 599:
        return None
    return response_head(status, block, b"Content-Length: %d\r\n" % length, b"", date, server)
