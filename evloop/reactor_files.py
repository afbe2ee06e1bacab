"""The reactor's file watching: which descriptors it watches, and the callbacks their readiness runs.

Each registered file has one selector registration whatever it is watched
for, changed with ``modify`` as readers and writers come and go.  The
callbacks are not in the selector's keys but in lists indexed by descriptor
number (never shrunk: descriptors are small numbers the kernel reuses lowest
first), kept in step with the registrations here: every ``register``,
``modify`` and ``unregister`` goes through ``_add`` and ``_remove``.
``_readers`` and ``_writers`` hold the ``Handle`` (or None).  A reader
without arguments, as every transport's, is also in ``_reader_calls`` and
``_reader_owners``: a bound method as its function and its object, another
callable as it is with None; ``Reactor.run_once`` calls it as
``call(owner)`` (or ``call()``), its handle only when it has arguments or
callbacks are timed.

Why: with many connections open, everything a request touches that belongs
to its connection is cold in the cache.  The selector's way touched a dict
entry, the key's int (an object of its own past 256), the ``SelectorKey``,
its ``(reader, writer)`` tuple, the ``Handle`` and the bound method, a
cache line each; two slots of arrays that eight descriptors share a cache
line of replace them.  load/server_instructions.py conns1000 under
callgrind's cache simulation (a 1 MiB last level, as this machine's L2):
25.7 -> 21.5 last-level misses a request (23.4 with the lists of handles
alone), 0 at conns50 either way; instructions conns1000 29,674 -> 28,860,
keepalive 35,222 -> 34,838 (no Handle attributes read per event).
"""

from __future__ import annotations

import selectors
from collections.abc import Callable
from types import MethodType
from typing import Any

from .timers import Handle

__all__ = ["FileWatching", "SELECT_FD_LIMIT", "selector_internals"]

FileLike = Any  # an int file descriptor or an object with fileno()

# select(2) takes descriptors below FD_SETSIZE only (1024 with glibc); a larger one is accepted by
# SelectSelector.register and then kills every select call.
SELECT_FD_LIMIT = 1024


class FileWatching:
    """The ``add_reader``/``add_writer`` half of ``Reactor`` (a mixin: the reactor makes the selector)."""

    _selector: selectors.BaseSelector
    _fd_keys: dict[int, selectors.SelectorKey] | None  # the selector's own fd -> key dict, when it has one
    _fd_limit: int | None  # SELECT_FD_LIMIT for a SelectSelector
    _readers: list[Handle | None]  # fd -> the reader's handle (see the module docstring)
    _reader_calls: list[Callable[..., Any] | None]  # fd -> the reader's function, when it takes no arguments
    _reader_owners: list[Any]  # fd -> the object a bound method reader is bound to (None: call it without)
    _writers: list[Handle | None]  # fd -> the writer's handle
    _closed: bool

    def add_reader(self, fileobj: FileLike, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` whenever ``fileobj`` (an fd or object with fileno()) is readable; re-adding replaces
        the callback.  With ``SelectSelector``, a descriptor of 1024 or more raises ``ValueError``."""
        self._add(fileobj, selectors.EVENT_READ, Handle(fn, args))

    def add_writer(self, fileobj: FileLike, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` whenever ``fileobj`` is writable; re-adding replaces the callback."""
        self._add(fileobj, selectors.EVENT_WRITE, Handle(fn, args))

    def remove_reader(self, fileobj: FileLike) -> bool:
        """Stop watching ``fileobj`` for reading; returns whether a reader was removed."""
        return self._remove(fileobj, selectors.EVENT_READ)

    def remove_writer(self, fileobj: FileLike) -> bool:
        """Stop watching ``fileobj`` for writing; returns whether a writer was removed."""
        return self._remove(fileobj, selectors.EVENT_WRITE)

    def _add(self, fileobj: FileLike, event: int, handle: Handle) -> None:
        self._check_open()  # closed, or discarded in a forked child: never touch the selector
        selector = self._selector
        fd = fileobj if isinstance(fileobj, int) else fileobj.fileno()
        # Registered yet?  Looked up by number in the selector's fd -> key dict: asking get_key() for a new
        # socket costs its miss, a KeyError whose message holds the socket's repr (its addresses, family
        # and type looked up): ~76,000 instructions, a quarter of a Connection: close request
        # (load/server_instructions.py close: 303,092 -> 212,272).  By number it still raised (~16,000).
        keys = self._fd_keys
        handles = self._readers if event == selectors.EVENT_READ else self._writers
        if fd not in (keys if keys is not None else selector.get_map()):
            if self._fd_limit is not None and fd >= self._fd_limit:
                raise ValueError(
                    f"descriptor {fd} is beyond what select() can watch (below {self._fd_limit}, "
                    "FD_SETSIZE): use PollSelector or EpollSelector"
                )
            selector.register(fileobj, event)  # ValueError for a closed file (fd -1)
            if fd >= len(handles):
                self._grow_handles(fd)
            old = None
        else:
            key = selector.get_key(fileobj)
            if not key.events & event:
                selector.modify(fileobj, key.events | event)
            old = handles[fd]
        handles[fd] = handle
        # A reader's call for the loop (see the module docstring), inline: every watched connection comes here.
        if event == selectors.EVENT_READ:
            callback = handle.callback
            if handle.args:
                self._reader_calls[fd] = self._reader_owners[fd] = None
            elif type(callback) is MethodType:
                self._reader_calls[fd], self._reader_owners[fd] = callback.__func__, callback.__self__
            else:
                self._reader_calls[fd], self._reader_owners[fd] = callback, None
        if old is not None:
            old.cancel()

    def _grow_handles(self, fd: int) -> None:
        """Make the lists long enough for ``fd`` (doubling: a server's descriptors come in rising order)."""
        extra = max(fd + 1, 2 * len(self._readers)) - len(self._readers)
        self._readers.extend([None] * extra)
        self._writers.extend([None] * extra)
        self._reader_calls.extend([None] * extra)
        self._reader_owners.extend([None] * extra)

    def _remove(self, fileobj: FileLike, event: int) -> bool:
        if self._closed:
            return False
        selector = self._selector
        try:
            key = selector.get_key(fileobj)
        except (KeyError, ValueError):
            return False
        fd = key.fd
        handles = self._readers if event == selectors.EVENT_READ else self._writers
        old = handles[fd]
        if old is None:
            return False
        handles[fd] = None
        if event == selectors.EVENT_READ:
            self._reader_calls[fd] = self._reader_owners[fd] = None
        mask = key.events & ~event
        if mask:
            selector.modify(fileobj, mask)
        else:
            selector.unregister(fileobj)
        old.cancel()
        return True

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("reactor is closed")



def selector_internals(selector: selectors.BaseSelector) -> tuple[dict[int, selectors.SelectorKey] | None, Any]:
    """The selector's fd -> key dict (None: use its public get_map()), and its epoll object if it is an EpollSelector.

    The dict answers ``_add``'s "registered yet?" by number.  With epoll, run_once polls the epoll object itself:
    selectors' select() builds a list of (key, events) in Python first, ~90 opcodes a pass (a 16 B WebSocket echo,
    callgrind of the whole server: 49,157 -> 43,061 instructions a message).  A descriptor unregistered by an
    earlier callback of the pass is skipped either way (its slot of ``_readers``/``_writers`` is None); a
    registration reusing its fd number may see one spurious readiness, as epoll allows.  Other selectors'
    (key, events) become the same (fd, bits) pairs (~2,900 instructions a pass more)."""
    fd_keys: dict[int, selectors.SelectorKey] | None = getattr(selector, "_fd_to_key", None)
    epoll = None
    if type(selector) is selectors.EpollSelector and fd_keys is not None:
        epoll = getattr(selector, "_selector", None)
    return fd_keys, epoll
