"""Events produced by ``ServerConnection.next_event``.

Per request the call grammar is::

    RequestHead Data* EndOfMessage PAUSED*

then, after ``start_next_cycle``, the next request, or ``ConnectionClosed``
once the peer has closed and nothing is buffered.  ``NEED_DATA`` may appear
anywhere before ``EndOfMessage``.  A connection made with ``implicit_end``
returns a request without a body as its ``RequestHead`` alone, and one with
a Content-Length body as ``RequestHead Data*`` (no ``EndOfMessage`` follows:
the receiving side is DONE once the last ``Data`` is returned).
"""

from dataclasses import dataclass, field

from .target import target_parts


@dataclass(slots=True)
class RequestHead:
    """A parsed, validated request line and header section.

    Read-only by contract: the parser hands out the same object again for an
    identical head (see ``parser.parse_head``), so ``headers`` is a tuple.
    """

    method: str  # "GET"
    target: str  # request-target as sent, e.g. "/a%20b?x=1"
    version: str  # "HTTP/1.1" or "HTTP/1.0" (1.x, x > 1, is served as "HTTP/1.1")
    # (name as sent, value without OWS), received order, latin-1; for an
    # absolute-form target, Host holds its authority (RFC 9112 3.2.2).
    headers: tuple[tuple[str, str], ...]
    keep_alive: bool  # what the request asks for: 1.1 unless "close", 1.0 only with "keep-alive"
    content_length: int | None  # None when chunked or when there is no body
    chunked: bool
    expect_continue: bool  # "Expect: 100-continue" on HTTP/1.1
    host: str | None  # Host field or absolute-form authority, lowercased (RFC 3986 3.2.2)
    # Facts derived from the fields above when the head is made: a cached head
    # serves many requests, which then read them instead of computing them
    # (two string comparisons in ServerConnection.next_event, the target's
    # split in Request; measured with load/bench_instructions.py against
    # computing them per request: pipelined 23,240 -> 22,164, keepalive
    # 34,819 -> 33,556 instructions a request).
    http10: bool = field(init=False, repr=False, compare=False)  # version == "HTTP/1.0"
    is_head: bool = field(init=False, repr=False, compare=False)  # method == "HEAD"
    target_parts: tuple[str, str, str] = field(init=False, repr=False, compare=False)  # target.target_parts

    def __post_init__(self) -> None:
        self.http10 = self.version == "HTTP/1.0"
        self.is_head = self.method == "HEAD"
        self.target_parts = target_parts(self.target)


@dataclass(slots=True)
class Data:
    """A piece of the request body (chunk boundaries are not preserved)."""

    data: bytes


@dataclass(slots=True)
class EndOfMessage:
    """The request body is complete; ``trailers`` from a chunked body."""

    trailers: list[tuple[str, str]]


@dataclass(slots=True)
class ConnectionClosed:
    """The peer closed its side and no complete request is left to read."""


class _Sentinel:
    __slots__ = ("_name",)

    def __init__(self, name: str) -> None:
        self._name = name

    def __repr__(self) -> str:
        return self._name


# Not enough bytes buffered to produce the next event: read more.
NEED_DATA = _Sentinel("NEED_DATA")
# A request is complete and its response is not finished: later bytes stay
# unparsed until ``start_next_cycle``.
PAUSED = _Sentinel("PAUSED")

# What ``ServerConnection.next_event`` returns.
Event = RequestHead | Data | EndOfMessage | ConnectionClosed | _Sentinel
