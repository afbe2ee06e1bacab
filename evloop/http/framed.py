"""Complete responses framed through the caches: ``ServerConnection.send_complete_response``'s common case.

A plain keep-alive response head (HTTP/1.1, a body allowed, no field evloop
manages among the application's) is made once by ``writer.plain_response_head``
and held in ``HTTP1Caches.framed`` by (status, fields, length, Date, Server);
the last such response with a short body is also held whole
(``HTTP1Caches.last_framed``), which ``send_complete_response`` compares
before anything else.  A connection's last response (``Connection: close``) is framed from the same
heads (``frame_closing``), and the last one with a short body is held whole
too (``HTTP1Caches.last_closing``).  A head the cache misses whose status, fields, Date and
Server are those of the last head made (``HTTP1Caches.last_framed_fields``)
is that head with a new Content-Length, not held.  The last head found in
``framed`` is remembered with what made it (``HTTP1Caches.last_head``): a
response with a new body object (an echo, an item) and the same status,
fields, length, Date and Server is that head, which ``send_complete_response``
compares before it calls ``frame_remembered``.
"""

from __future__ import annotations

from typing import AnyStr

from .caches import FramedKey, HTTP1Caches
from .writer import plain_response_head

__all__ = ["REMEMBERED_BODY_BYTES", "frame_closing", "frame_remembered", "framed_head"]

# The longest body whose framed response ``HTTP1Caches.last_framed`` holds (a hello, a health check, an error text).
REMEMBERED_BODY_BYTES = 1024


def framed_head(
    caches: HTTP1Caches, status: int, headers: tuple[tuple[AnyStr, AnyStr], ...], length: int, date: bytes | None,
    server: bytes | None,
) -> tuple[bytes | None, FramedKey | None]:
    """A plain keep-alive response head through ``HTTP1Caches.framed`` (None: the general path frames it),
    and its key there (None: unhashable fields, not held)."""
    key: FramedKey | None
    try:
        key = (status, headers, length, date, server)
        head = caches.framed.entries.get(key)
    except TypeError:  # unhashable pairs (lists): nothing to remember
        key = head = None
    if head is None:
        head = _framed_anew(caches, key, status, headers, length, date, server)
    return head, key


def _framed_anew(
    caches: HTTP1Caches, key: FramedKey | None, status: int, headers: tuple[tuple[AnyStr, AnyStr], ...], length: int,
    date: bytes | None, server: bytes | None,
) -> bytes | None:
    """``framed_head`` when ``HTTP1Caches.framed`` does not hold ``key`` (None: unhashable fields)."""
    framed = caches.framed
    framed.misses += 1
    framing = b"Content-Length: %d\r\n\r\n" % length  # the end of every head made here
    last = caches.last_framed_fields  # (status, fields, date, server, the head before its framing, length)
    if last is not None and key is not None and last[2] is date and last[3] is server and last[0] == status \
            and last[1] == headers:
        # The fields of the last head made with a new length (an echo, a JSON answer: a new length on most
        # responses): that head and the new Content-Length, without the field check and the join; held only
        # when its length comes twice running (a stream of new lengths would empty the cache): callgrind,
        # frame_remembered of a 3-4 KiB body, 1,000 lengths in turn, 12,672 -> 7,832 instructions (a hit: 4,007).
        again: bytes = last[4] + framing
        if last[5] == length:
            framed.put(key, again)
        else:
            caches.last_framed_fields = (status, headers, date, server, last[4], length)
        return again
    head = plain_response_head(status, headers, length, date, server, caches.fields)
    if head is not None and key is not None:
        framed.put(key, head)
        if framed.max_entries:
            caches.last_framed_fields = (status, headers, date, server, head[: len(head) - len(framing)], length)
    return head


def frame_remembered(
    caches: HTTP1Caches, status: int, given: list[tuple[AnyStr, AnyStr]] | tuple[tuple[AnyStr, AnyStr], ...],
    body: bytes, date: bytes | None, server: bytes | None,
) -> bytes | None:
    """``send_complete_response``'s plain response through ``HTTP1Caches.framed`` (None: the general path
    frames it); its head is remembered as ``last_head``, a short body's response as ``last_framed``.
    ``given``: the fields as the caller gave them, a list or a tuple.  ``send_complete_response`` has compared
    ``last_head`` before this call (its hit needs no call: the head and the body)."""
    length = len(body)
    framed = caches.framed
    headers = tuple(given)  # hashable, for the key (a tuple given is itself)
    # framed_head's hit, without its call: a response with a new body object (most of them) 4,946 -> 4,007
    # instructions (callgrind, a 4 KiB body; load/bench_instructions.py browser 74,135 -> 72,832, all told).
    key: FramedKey | None
    try:
        key = (status, headers, length, date, server)
        head = framed.entries.get(key)
    except TypeError:  # unhashable pairs: framed by the plain path, not held
        key = head = None
    if head is not None:
        # A head held in framed (only those: a head framed anew is held or not as _framed_anew decides).
        # Hashable (so immutable) pairs in a list or tuple, which a later response can be compared with: a
        # copy of a list, which the application may change.
        caches.last_head = (status, list(given) if type(given) is list else given, length, date, server, head)
    else:
        head = _framed_anew(caches, key, status, headers, length, date, server)
        if head is None:
            return None
        if key is None or not framed.max_entries:
            return head + body  # nothing remembered
    response = head + body
    # Remembered whole when the body object comes a second time: a new body each time (an echo, an item)
    # costs a marker, not the copy (which took browser 115,888 -> 118,691 instructions a request).
    if length <= REMEMBERED_BODY_BYTES and type(body) is bytes:
        last = caches.last_framed
        if last is None or last[0] is not body:
            caches.last_framed = (body, None, None, None, None, None)  # seen once
        else:
            caches.last_framed = (body, status, list(given) if type(given) is list else given, date, server, response)
    return response


def frame_closing(
    caches: HTTP1Caches, status: int, given: list[tuple[AnyStr, AnyStr]] | tuple[tuple[AnyStr, AnyStr], ...],
    body: bytes, close_end: bytes, date: bytes | None, server: bytes | None,
) -> bytes | None:
    """A connection's last plain response (None: the general path frames it): the framed head with its empty
    line replaced by ``close_end`` (the Connection field and the empty line), then ``body``.  A short body's is
    remembered whole as ``last_closing`` the second time its body object comes, as ``frame_remembered``
    remembers ``last_framed``.  ``given``: the fields as the caller gave them, a list or a tuple."""
    head, key = framed_head(caches, status, tuple(given), len(body), date, server)
    if head is None:
        return None
    response = head[:-2] + close_end + body
    if key is not None and caches.framed.max_entries and len(body) <= REMEMBERED_BODY_BYTES and type(body) is bytes:
        last = caches.last_closing
        if last is None or last[0] is not body:
            caches.last_closing = (body, None, None, None, None, None)  # seen once
        else:
            caches.last_closing = (body, status, list(given) if type(given) is list else given, date, server, response)
    return response
