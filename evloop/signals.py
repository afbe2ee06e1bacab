"""Signal handlers that run as ordinary loop callbacks: a reactor's ``SignalRouter``.

Theory of operation.  While a router holds handlers, the process's
``signal.set_wakeup_fd`` is the write end of its reactor's self-pipe: the
C-level signal handler writes the signal's number there (never zero, which
the reactor's own thread-safe wake-ups write), and the Python-level handler
does nothing.  An ordinary callback drains the self-pipe (``evloop.selfpipe``)
and hands the bytes to ``signals_received``, which queues one dispatch per
signal on the reactor's ready queue.  So the user's handler runs later, as an
ordinary callback, never inside the signal frame, where it could interrupt
any bytecode of the loop.  A dispatch looks its handler up when it runs: a
handler removed in between (by an earlier callback of the pass) never runs.

The wakeup fd is process-wide, so only one router (one reactor) at a time may
hold signal handlers; another one's ``add`` raises ``RuntimeError`` rather
than silently taking the signals away.
"""

from __future__ import annotations

import collections
import signal
import socket
from collections.abc import Callable
from typing import Any

from .timers import Handle

__all__ = ["SignalRouter"]

# The process-wide signal wakeup fd belongs to at most one router at a time.
# A strong reference: the owner keeps its wakeup socket open, or the fd number
# could be reused while the wakeup fd still names it, and signals written into
# another socket.
_wakeup_owner: SignalRouter | None = None


class SignalRouter:
    """The signal handlers of one reactor, dispatched through its ready queue.

    ``ready``: the reactor's ready queue.  ``wake_wsock``: the write end of
    its self-pipe, the wakeup fd while this router holds handlers.  The
    self-pipe passes the signal numbers it reads to ``signals_received``.  Call order: ``add``/``remove`` any number of
    times, then ``close()`` (in the process that created it) or
    ``discard_after_fork()`` (in a forked child); main thread only, as
    ``signal.signal`` is.
    """

    __slots__ = ("_ready", "_wake_wsock", "_handlers", "_previous", "_previous_wakeup_fd")

    def __init__(self, ready: collections.deque[Handle], wake_wsock: socket.socket) -> None:
        self._ready = ready
        self._wake_wsock = wake_wsock
        self._handlers: dict[int, Handle] = {}  # signum -> the user's callback
        self._previous: dict[int, Any] = {}  # signum -> the handler this router replaced
        self._previous_wakeup_fd = -1

    def add(self, signum: int, fn: Callable[..., Any], args: tuple[Any, ...]) -> None:
        """Run ``fn(*args)`` whenever ``signum`` arrives; adding again replaces the callback.

        Raises ``RuntimeError`` while another router holds the wakeup fd, and
        what ``signal.signal`` raises (``ValueError`` outside the main thread
        or for a signal that cannot be caught, ``OSError``), leaving nothing
        changed.
        """
        if signum not in self._handlers:
            self._take_wakeup()
            try:
                previous = signal.signal(signum, _ignore_in_signal_frame)
            except BaseException:
                # e.g. SIGKILL: leave no wakeup fd behind when no handler is set.
                if not self._handlers:
                    self._release_wakeup()
                raise
            # None: a handler installed outside Python; the default is the best we can restore.
            self._previous[signum] = signal.SIG_DFL if previous is None else previous
            # Let blocking system calls restart; the wakeup fd still fires.
            signal.siginterrupt(signum, False)
        self._handlers[signum] = Handle(fn, args)

    def remove(self, signum: int) -> bool:
        """Remove the handler for ``signum`` and restore the previous one; returns whether one was set.

        A dispatch of ``signum`` already queued does not run it.  The last
        removal gives the wakeup fd back.
        """
        handle = self._handlers.pop(signum, None)
        if handle is None:
            return False
        handle.cancel()
        signal.signal(signum, self._previous.pop(signum))
        if not self._handlers:
            self._release_wakeup()
        return True

    def signals_received(self, data: bytes) -> None:
        """Queue a dispatch for each signal number in ``data`` that has a handler (zeros are skipped)."""
        handlers = self._handlers
        for signum in data:
            if signum and signum in handlers:
                self._ready.append(Handle(self._dispatch, (signum,)))

    def close(self) -> None:
        """Remove every handler, restoring the previous ones and the wakeup fd."""
        try:
            for signum in list(self._handlers):
                self.remove(signum)
            self._release_wakeup()
        finally:
            self._handlers.clear()
            self._previous.clear()

    def discard_after_fork(self) -> None:
        """In a forked child: restore the previous handlers and wakeup fd, and forget the rest.

        No handle is cancelled and nothing is written: the child only puts
        back the process-wide state it inherited from before this router.
        """
        global _wakeup_owner
        try:
            if _wakeup_owner is self:
                _wakeup_owner = None
                signal.set_wakeup_fd(self._previous_wakeup_fd)
                for signum, previous in self._previous.items():
                    signal.signal(signum, previous)
        finally:
            self._handlers.clear()
            self._previous.clear()

    def _dispatch(self, signum: int) -> None:
        # Looked up when it runs, not when the signal was read (see the module docstring).
        handle = self._handlers.get(signum)
        if handle is not None:
            handle.callback(*handle.args)

    def _take_wakeup(self) -> None:
        global _wakeup_owner
        owner = _wakeup_owner
        if owner is self:
            return
        if owner is not None:
            raise RuntimeError(
                "another Reactor in this process holds signal handlers (the signal wakeup fd is "
                "process-wide): remove them or close that reactor first"
            )
        self._previous_wakeup_fd = signal.set_wakeup_fd(self._wake_wsock.fileno(), warn_on_full_buffer=False)
        _wakeup_owner = self

    def _release_wakeup(self) -> None:
        global _wakeup_owner
        if _wakeup_owner is not self:
            return
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        self._previous_wakeup_fd = -1
        _wakeup_owner = None


def _ignore_in_signal_frame(signum: int, frame: Any) -> None:
    """Python-level handler: the work happens in the loop, woken by the wakeup fd."""
