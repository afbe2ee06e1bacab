"""The receive buffer (bytes waiting to be parsed) and the send queue (bytes
waiting for a socket, and file regions for ``sendfile``).

Work is proportional to bytes: small writes are coalesced into one trailing
``bytearray`` (many tiny ``send`` calls cost more than one copy), large ones are
kept as they are, and a partly sent item is advanced with a ``memoryview``
instead of being sliced into a new ``bytes``.  The queued size is a running
count, never re-summed.
"""

from __future__ import annotations

import collections
from collections.abc import Callable
from typing import Any

__all__ = ["FileRegion", "ReceiveBuffer", "SendQueue", "byte_view"]

# Writes up to this size are copied into a shared bytearray ...
_COALESCE_MAX_WRITE = 16 * 1024
# ... until that bytearray holds this much.
_COALESCE_MAX_BUFFER = 64 * 1024


def byte_view(data: Any) -> bytes | bytearray | memoryview:
    """``data`` as something whose ``len()`` and slices count bytes.

    ``bytes`` and ``bytearray`` are returned as they are; any other buffer
    (a memoryview of ``array('i')``, a multi-dimensional view, ``array``
    itself) becomes a one-dimensional unsigned-byte view.  Without this a
    partial send would slice the rest by items, not bytes, and lose data.
    """
    if type(data) is bytes or type(data) is bytearray:
        return data
    view = memoryview(data)
    if view.ndim != 1 or view.format != "B":
        view = view.cast("B")  # TypeError for a non-contiguous buffer: it cannot be sent as it is
    return view


class FileRegion:
    """``count`` bytes of the file descriptor ``fd`` starting at ``offset``, to send with sendfile.

    ``on_done(exc)`` is called once: with None when the region was sent, or
    with the exception (or None) when the queue was dropped before that.
    """

    __slots__ = ("fd", "offset", "remaining", "on_done")

    def __init__(self, fd: int, offset: int, count: int, on_done: Callable[[BaseException | None], Any] | None) -> None:
        self.fd = fd
        self.offset = offset
        self.remaining = count
        self.on_done = on_done

    def finish(self, exc: BaseException | None = None) -> None:
        on_done, self.on_done = self.on_done, None
        if on_done is not None:
            on_done(exc)


Item = bytes | bytearray | memoryview | FileRegion


class SendQueue:
    """FIFO of byte chunks and file regions, with a running byte count (``size``).

    The deque is made when the first item is queued and dropped when the
    queue empties: most writes go out at once (the transports send before
    they queue), and an empty deque is ~700 bytes (its first block), which
    every idle keep-alive connection held (tracemalloc of an evloop server
    with 2,000 idle connections: 3,236 -> 2,368 bytes a connection).
    """

    __slots__ = ("_items", "size")

    def __init__(self) -> None:
        self._items: collections.deque[Item] | None = None
        self.size = 0

    def _deque(self) -> collections.deque[Item]:
        items = self._items
        if items is None:
            items = self._items = collections.deque()
        return items

    def __bool__(self) -> bool:
        return bool(self._items)

    def append(self, data: bytes | bytearray | memoryview) -> None:
        """Queue bytes.  Mutable inputs are copied, so the caller may reuse them."""
        n = len(data)
        if not n:
            return
        items = self._items
        if items is None:
            items = self._items = collections.deque()
        if n <= _COALESCE_MAX_WRITE:
            last = items[-1] if items else None
            if type(last) is bytearray and len(last) < _COALESCE_MAX_BUFFER:
                last += data
            else:
                items.append(bytearray(data))
        elif type(data) is bytes or (type(data) is memoryview and type(data.obj) is bytes):
            # Immutable already (a view of bytes is the unsent rest of a bytes
            # object after a partial send): keep it, no copy.  A read-only view
            # of a mutable buffer is copied: its owner may still change it.
            items.append(data)
        else:
            items.append(bytes(data))
        self.size += n

    def append_file(self, region: FileRegion) -> None:
        """Queue a file region; it is sent after the bytes queued before it."""
        self._deque().append(region)
        self.size += region.remaining

    def head_file(self) -> FileRegion | None:
        """The file region at the front of the queue, if the front is one."""
        items = self._items
        if items and type(items[0]) is FileRegion:
            return items[0]
        return None

    def buffers(self, max_count: int = 64) -> list[bytes | bytearray | memoryview]:
        """The leading byte chunks (up to the first file region), for ``send``/``sendmsg``."""
        out: list[bytes | bytearray | memoryview] = []
        for item in self._items or ():
            if type(item) is FileRegion or len(out) == max_count:
                break
            out.append(item)  # type: ignore[arg-type]
        return out

    def take(self, limit: int) -> bytes | bytearray | memoryview | None:
        """Remove and return the leading byte chunk, at most ``limit`` bytes of it (a view of a larger one).

        None when the queue is empty or starts with a file region.  For a
        consumer that copies what it takes (TLS encryption), one call where
        ``buffers`` and ``consume`` are two.
        """
        items = self._items
        if not items:
            return None
        item = items[0]
        if type(item) is FileRegion:
            return None
        n = len(item)  # type: ignore[arg-type]  # a byte chunk (mypy does not narrow on type() is)
        if n <= limit:
            items.popleft()
            if not items:
                self._items = None
        else:
            view = item if type(item) is memoryview else memoryview(item)  # type: ignore[arg-type]
            items[0] = view[limit:]
            item, n = view[:limit], limit
        self.size -= n
        return item  # type: ignore[return-value]

    def consume(self, n: int) -> None:
        """Drop the first ``n`` bytes of leading byte chunks (they were sent)."""
        self.size -= n
        items = self._deque()
        while n:
            item = items[0]
            size = len(item)  # type: ignore[arg-type]
            if n >= size:
                items.popleft()
                n -= size
            else:
                items[0] = memoryview(item)[n:]  # type: ignore[arg-type]
                return
        if not items:
            self._items = None

    def file_progress(self, region: FileRegion, n: int) -> None:
        """Record that ``n`` bytes of the head file region were sent; pops it when done."""
        region.offset += n
        region.remaining -= n
        self.size -= n
        if region.remaining <= 0:
            items = self._deque()
            items.popleft()
            if not items:
                self._items = None
            region.finish(None)

    def file_head_read(self, region: FileRegion, data: bytes) -> None:
        """Replace the first ``len(data)`` bytes of the head file region with ``data``, read from it.

        The read-and-send fallback for when ``sendfile`` cannot be used: the
        bytes move from the region into the queue, so ``size`` is unchanged.
        """
        n = len(data)
        region.offset += n
        region.remaining -= n
        items = self._deque()
        if region.remaining <= 0:
            items.popleft()
            region.finish(None)  # its bytes are all read: the file may close now
        items.appendleft(data)

    def clear(self, exc: BaseException | None = None) -> None:
        """Drop everything; file regions are told why."""
        items, self._items = self._items, None
        self.size = 0
        for item in items or ():
            if type(item) is FileRegion:
                item.finish(exc)


class ReceiveBuffer:
    """Received bytes not yet parsed: ``data[pos:]``.

    ``searched`` counts bytes past ``pos`` that the current search (head
    terminator, chunk-size line, trailer section) has already examined; any
    code that advances ``pos`` resets it.  It is relative to ``pos`` so that
    compaction does not disturb it.

    ``data`` is a bytearray, or a ``bytes`` read kept as it came: an owner
    may store a read that arrives when nothing is buffered (the usual
    keep-alive request, a small POST) as ``data`` and parse it where it is,
    with no copy into a bytearray and none out of it
    (``evloop.http.connection.ServerConnection.receive_data``).  Whoever changes
    ``data`` in place checks its type first: ``feed`` copies a kept read
    into a bytearray when more bytes follow it, ``take_buffered``
    (``evloop.http.body_readers``) slices one, and an owner empties either
    by storing ``EMPTY`` (bytes have no ``clear()``).  Measured against
    copying every read (the whole server, load/server_instructions.py
    ``--no-access-log``): wsgi-echo4k 63,270 -> 60,922, echo4k 53,145 ->
    50,764, keepalive 32,906 -> 32,152 instructions a request.
    """

    __slots__ = ("data", "pos", "searched")

    def __init__(self) -> None:
        self.data: bytes | bytearray = bytearray()
        self.pos = 0
        self.searched = 0

    def __len__(self) -> int:
        return len(self.data) - self.pos

    def feed(self, chunk: bytes | bytearray | memoryview) -> None:
        data = self.data
        pos = self.pos
        if type(data) is bytearray:
            # Compact only when the consumed prefix is at least as large as
            # what is kept, so the moves cost amortised linear time.
            if pos == len(data):
                data.clear()
                self.pos = 0
            elif pos * 2 >= len(data):
                del data[:pos]
                self.pos = 0
        else:
            # A kept read, with more bytes behind it: what is left of it copied into a bytearray of our own.
            self.data = data = bytearray(data[pos:] if pos else data)
            self.pos = 0
        data += chunk  # a bytearray by now


EMPTY = b""  # an empty buffer's ``data`` (see ReceiveBuffer)
