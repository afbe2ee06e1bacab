"""A reactor's self-pipe: how other threads and signals wake a loop sleeping in ``select``.

Theory of operation.  Each reactor owns a socket pair whose reading end it
watches.  Two things write to it: ``wake()``, after ``call_soon_threadsafe``
queued its callback (a zero byte, to wake a ``select`` that is sleeping in
another thread's favour), and, when signal handlers are installed, the
C-level signal handler through ``signal.set_wakeup_fd`` (the signal number,
never zero).  Draining the pipe hands those numbers to the ``SignalRouter``
(``evloop.signals``), which queues the user's handlers as ordinary callbacks.

A thread-safe call goes straight onto the ready queue (``deque.append`` is
atomic) before its wake byte is written, and reading the pipe is itself
queued behind it (``readable`` queues the drain): the call runs first,
without waiting for that ``recv`` (as in asyncio, whose wake-up this
matches).  Only one wake byte is in the pipe at a time: a byte per call could
fill the pipe, and the signal numbers written into the same pipe would then
be lost.
"""

from __future__ import annotations

import collections
import socket

from .signals import SignalRouter
from .timers import Handle

__all__ = ["SelfPipe"]

_RECV_BYTES = 4096


class SelfPipe:
    """The socket pair that wakes one reactor, and the signal router it carries.

    ``ready``: the reactor's ready queue.  The reactor watches ``rsock`` with
    ``readable`` as its reader callback.  ``wake()`` may be called from any
    thread; everything else from the loop's thread.  ``close()`` last (the
    reactor unregisters ``rsock`` first, or skips that in a forked child).
    Raises what ``socket.socketpair()`` raises.
    """

    __slots__ = ("rsock", "_wsock", "_ready", "_pending", "_drain_handle", "signals")

    def __init__(self, ready: collections.deque[Handle]) -> None:
        self.rsock, self._wsock = socket.socketpair()
        self.rsock.setblocking(False)
        self._wsock.setblocking(False)
        self._ready = ready
        self._pending = False  # a wake byte is in the pipe
        self._drain_handle = Handle(self._drain, ())
        self.signals = SignalRouter(ready, self._wsock)

    def wake(self) -> None:
        """Make a loop sleeping in ``select`` return; call it after queueing the callback.

        Any thread.  Does nothing once the pipe is closed.
        """
        # A call that finds the flag set was queued before the pass that
        # reads that byte, which then runs with a non-empty ready queue and
        # so never sleeps before running it.
        if not self._pending:
            self._pending = True
            try:
                self._wsock.send(b"\0")
            except OSError:
                pass  # the reactor closed under us: nothing to wake

    def readable(self) -> None:
        """The reader callback of ``rsock``: queue the drain behind the thread-safe calls already queued."""
        self._ready.append(self._drain_handle)

    def _drain(self) -> None:
        while True:
            try:
                data = self.rsock.recv(_RECV_BYTES)
            except (BlockingIOError, InterruptedError):
                break
            # One zero byte is the usual read (a thread-safe call's wake-up),
            # and the router has nothing to do with it: calling it anyway
            # cost a wake-up 3% more instructions (callgrind).
            if data != b"\0":
                self.signals.signals_received(data)
            if len(data) < _RECV_BYTES:
                break  # drained: spare the recv that would raise BlockingIOError
        # After the drain, never before: a call that wrote its byte between a
        # clear and the recv would have its byte swallowed with the flag left
        # set, and every later call would skip its byte.  A call that found
        # the flag still set is already on the ready queue, so the next pass
        # does not sleep.
        self._pending = False

    def close(self) -> None:
        """Close both ends (in a forked child, only this process's copies)."""
        self.rsock.close()
        self._wsock.close()
