"""Bounded caches for the HTTP/1.1 hot paths, owned by whoever creates the connections.

Every cache here is a pure speed-up: a lookup that misses takes the plain
path, and the plain path gives the same result (the tests check each against
it).  None is a module global: a ``Server`` creates one ``HTTP1Caches`` and
passes it to every ``ServerConnection`` it makes, so two servers (or two
tests) never share entries, and nothing needs clearing by hand.

The hot paths read ``BoundedCache.entries`` (a plain dict) themselves and count
a miss there: a method call per lookup would cost more than most
of the lookups save (~700 instructions, measured with callgrind).  Entries are
only ever added through ``put``, which keeps the bound.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, TypeVar

if TYPE_CHECKING:
    from .events import RequestHead
    from .field_lines import FieldLine
    from .head_templates import HeadTemplate, Key
    from .parser import Limits
    from .writer import AppFields

__all__ = ["BoundedCache", "CacheStats", "CachedHead", "HTTP1Caches"]

K = TypeVar("K")
V = TypeVar("V")


@dataclass(frozen=True, slots=True)
class CacheStats:
    """A snapshot of one cache's counters."""

    name: str
    size: int  # entries held now
    max_entries: int
    misses: int  # lookups that took the plain path (hits are not counted: see BoundedCache)
    clears: int  # times the cache was full and emptied


class BoundedCache(Generic[K, V]):
    """A dict holding at most ``max_entries`` entries; emptied when full.

    Emptying rather than evicting one entry keeps ``put`` O(1) without the
    bookkeeping of an LRU: the working set (a server's few distinct heads,
    hosts and responses) refills it at once.  ``max_entries=0`` holds nothing:
    every lookup misses and the caller takes the plain path.

    ``entries`` is for lookups only (``cache.entries.get(key)``); whoever looks
    up counts ``misses`` (a miss goes on to the plain path, which costs far
    more than the count).  Hits are not counted: an attribute increment is
    ~300 instructions (a new int object), a tenth of what a framed-response
    hit saves, on every request.  Add with ``put``.
    """

    __slots__ = ("name", "max_entries", "entries", "misses", "clears")

    def __init__(self, name: str, max_entries: int) -> None:
        if max_entries < 0:
            raise ValueError(f"max_entries must be >= 0, got {max_entries}")
        self.name = name
        self.max_entries = max_entries
        self.entries: dict[K, V] = {}
        self.misses = 0
        self.clears = 0

    def put(self, key: K, value: V) -> None:
        """Add an entry, emptying the cache first when it is full."""
        entries = self.entries
        if len(entries) >= self.max_entries:
            if not self.max_entries:
                return
            entries.clear()
            self.clears += 1
        entries[key] = value

    def clear(self) -> None:
        """Drop every entry (the counters stay)."""
        self.entries.clear()

    def __len__(self) -> int:
        return len(self.entries)

    def stats(self) -> CacheStats:
        return CacheStats(self.name, len(self.entries), self.max_entries, self.misses, self.clears)

    def __repr__(self) -> str:
        return (f"<BoundedCache {self.name} {len(self.entries)}/{self.max_entries} "
                f"misses={self.misses} clears={self.clears}>")


@dataclass(frozen=True, slots=True)
class CachedHead:
    """A head that passed validation: what ``HTTP1Caches.heads`` holds and a
    connection remembers as its last head (``parser.HeadReader``)."""

    limits: Limits  # the limits it was checked against
    head: RequestHead
    raw: bytes  # the exact bytes of the head, its empty line included


# Framed response heads: (status, fields, body length, Date, Server).
FramedKey = tuple[int, tuple[tuple[str, str], ...] | tuple[tuple[bytes, bytes], ...], int, bytes | None, bytes | None]
# Encoded application fields: the pairs as given.
FieldsKey = tuple[tuple[str, str], ...] | tuple[tuple[bytes, bytes], ...]


class HTTP1Caches:
    """The HTTP/1.1 speed-ups one server shares among its connections.

    Create one per server and pass it to each ``ServerConnection``; a
    connection made without one gets a fresh one of its own.  What each
    saves was measured with ``load/bench_instructions.py`` (instructions per
    request, valgrind) against the same run with that cache's bound set to 0:

    ``heads`` -- parsed heads by their exact latin-1 text, as ``CachedHead``.
        A hit skips the request-line match, the field-line ``findall``, the
        framing fields and the Host check: ``keepalive`` 66,810 -> 33,100
        instructions a request (this includes the last-head memo of
        ``parser.HeadReader``, which only holds heads from this cache).
        Heads longer than ``max_head_chars`` are never held.
    ``heads_seen`` -- the hashes of heads seen once: a head is admitted to
        ``heads`` on its second sighting, so a stream of unique heads costs one
        lookup and one insert each instead of holding their parses (holding
        them measured ~2 us slower per browser-sized miss than not caching).
    ``head_templates`` -- parsed heads by their text without the target and
        the Referer and Cookie values (``head_templates``): a browser's heads
        differ in those alone, so a hit checks them and reuses the rest of
        the parse (``browser``: 115,962 -> 90,352).  Admitted on the second
        sighting of the key (in ``heads_seen``); heads longer than
        ``max_head_chars`` are never held.
    ``field_lines`` -- field lines that passed the field-line check: their
        (name, value) and whether they are framing fields (``field_lines``).
        A head that misses ``heads`` takes its lines from here, checking only
        the lines not held (a browser's Cookie and Referer), not all of them
        (``browser``: 133,268 -> 121,875).  Lines longer than
        ``max_field_line_chars`` are checked every time (bounds the keys' size).
    ``hosts`` -- Host values that matched ``grammar.HOST_RE``: a server sees
        the same few again and again; a hit skips the match on every fully
        parsed head (``unique``: 73,774 -> 68,330).
    ``fields`` -- application field lists, encoded and checked
        (``writer.prepare_fields``): a hit skips the join, the validating
        match and the managed-field scan, for every response that ``framed``
        does not answer (``keepalive`` with ``framed`` off: 55,953 -> 40,259).
    ``framed`` -- whole response heads of plain complete responses
        (``ServerConnection.send_complete_response``): a hit is one lookup
        instead of the field check, the join and the Content-Length
        formatting (``keepalive``: 40,259 -> 33,100).  A new Date each second
        makes new keys; the old ones go with the next emptying.
    ``last_framed`` -- the last plain complete response with a short body
        whose body object came twice, whole: ``(body, status, fields, date,
        server, bytes)`` (``(body, None, ...)`` after its first time), or
        None (``ServerConnection.send_complete_response``).  One entry, not
        a bounded cache: it is compared, not looked up.  Never set when
        ``framed`` holds nothing.
    ``last_closing`` -- ``last_framed`` for a connection's last response
        (``Connection: close`` added to the head; ``evloop.http.framed``
        ``frame_closing``): a client that closes after each request is
        answered from it.  Never set when ``framed`` holds nothing.
    ``last_framed_fields`` -- the last head ``framed`` missed and the plain
        path made: ``(status, fields, date, server, the head without its
        Content-Length and empty line, the last length framed so)``, or None
        (``evloop.http.framed``).  A miss with the same status, fields, Date
        and Server (a new body length) is that head and a new Content-Length,
        held in ``framed`` when the length comes twice running.  One entry,
        compared; never set when ``framed`` holds nothing.
    ``last_head`` -- the last head found in ``framed``: ``(status, fields,
        length, date, server, head)``, or None (``evloop.http.framed`` sets it,
        ``ServerConnection.send_complete_response`` compares it).  A
        response whose body object is new (an echo, an item) with the same
        status, fields (compared: a copy of a list), length, Date and Server
        is that head, without the fields' tuple and the key's hash and
        comparison (``echo4k``: 46,148 -> 45,130).  One entry, compared; set
        from ``framed``'s entries only, so what ``framed`` holds is as before.
    """

    __slots__ = ("heads", "max_head_chars", "heads_seen", "head_templates", "field_lines", "max_field_line_chars",
                 "hosts", "fields", "framed", "last_framed", "last_closing", "last_framed_fields", "last_head")

    def __init__(
        self,
        *,
        max_heads: int = 256,
        max_head_chars: int = 2048,
        max_heads_seen: int = 4096,
        max_head_templates: int = 256,
        max_field_lines: int = 512,
        max_field_line_chars: int = 256,
        max_hosts: int = 256,
        max_fields: int = 512,
        max_framed: int = 256,
    ) -> None:
        self.heads: BoundedCache[str, CachedHead] = BoundedCache("heads", max_heads)
        self.max_head_chars = max_head_chars  # longer heads are parsed every time (bounds the keys' size)
        self.heads_seen: BoundedCache[int, bool] = BoundedCache("heads_seen", max_heads_seen)
        self.head_templates: BoundedCache[Key, HeadTemplate] = BoundedCache("head_templates", max_head_templates)
        self.field_lines: BoundedCache[str, FieldLine] = BoundedCache("field_lines", max_field_lines)
        self.max_field_line_chars = max_field_line_chars  # longer lines are checked every time (bounds the keys' size)
        self.hosts: BoundedCache[str, bool] = BoundedCache("hosts", max_hosts)
        self.fields: BoundedCache[FieldsKey, tuple[bytes, AppFields | None]] = BoundedCache("fields", max_fields)
        self.framed: BoundedCache[FramedKey, bytes] = BoundedCache("framed", max_framed)
        self.last_framed: tuple[Any, ...] | None = None
        self.last_closing: tuple[Any, ...] | None = None
        self.last_framed_fields: tuple[Any, ...] | None = None
        self.last_head: tuple[Any, ...] | None = None

    @classmethod
    def disabled(cls) -> HTTP1Caches:
        """Caches that hold nothing: every step takes the plain path (for tests and measurements)."""
        return cls(max_heads=0, max_head_chars=0, max_heads_seen=0, max_head_templates=0, max_field_lines=0,
                   max_field_line_chars=0, max_hosts=0, max_fields=0, max_framed=0)

    def all(self) -> tuple[BoundedCache[Any, Any], ...]:
        """Every cache of the group."""
        return (self.heads, self.heads_seen, self.head_templates, self.field_lines, self.hosts, self.fields,
                self.framed)

    def clear(self) -> None:
        """Empty every cache."""
        for cache in self.all():
            cache.clear()
        self.last_framed = self.last_closing = self.last_framed_fields = self.last_head = None

    def stats(self) -> list[CacheStats]:
        return [cache.stats() for cache in self.all()]
