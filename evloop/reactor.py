"""The reactor: a single-threaded event loop over the ``selectors`` module.

Theory of operation.  One pass of the loop (``run_once``):

1. compute how long ``select`` may block: zero when callbacks are ready, else
   until the nearest timer (or forever / the caller's bound);
2. ``select`` and call the reader and writer callbacks of the ready files;
3. move the timers that are due onto the ready queue;
4. run the callbacks that were ready *when this step began*.  Callbacks queued
   while it runs wait for the next pass, so a callback that keeps rescheduling
   itself cannot starve I/O.

Every user callback is called from ``_run_callback``: an exception is reported
(to the exception handler or the ``evloop`` logger) and the loop goes on;
``KeyboardInterrupt`` and ``SystemExit`` pass through.

Signals are delivered with ``signal.set_wakeup_fd``: the C-level handler
writes the signal number into a socket pair that the reactor watches, and the
user's handler runs later as an ordinary callback, never inside the signal
frame (where it could interrupt any bytecode of the loop).

Fork: a child process must not use a reactor created by its parent.  The epoll
object and the signal socket pair are shared across ``fork()``, so a child that
registers or unregisters files would change the parent's reactor.  In the
child, call ``reactor.discard_after_fork()`` on every inherited reactor and
create a fresh ``Reactor``; ``run()`` refuses to run a reactor in a process
other than the one that created it.
"""

from __future__ import annotations

import collections
import logging
import os
import selectors
import signal
import socket
import time
from typing import Any, Callable

from .timers import Handle, Timer, TimerQueue

__all__ = ["Reactor", "Handle", "Timer"]

logger = logging.getLogger("evloop")

FileLike = Any  # an int file descriptor or an object with fileno()
ExceptionHandler = Callable[[BaseException, Handle], None]

READ_BUFFER_SIZE = 256 * 1024  # the most one socket read takes (Reactor.read_buffer)
_MAX_SELECT_TIMEOUT_S = 24 * 3600.0  # selectors reject absurd timeouts on some platforms


class Reactor:
    """A selector-based event loop: timers, ready callbacks, file readiness, signals.

    ``selector`` defaults to ``selectors.DefaultSelector()`` (epoll on Linux);
    ``SelectSelector`` and ``PollSelector`` instances work too.
    ``slow_callback_s``: when set, every callback that holds the loop longer is
    logged with its name, which is how a blocking handler is found.
    """

    def __init__(
        self, selector: selectors.BaseSelector | None = None, *, slow_callback_s: float | None = None
    ) -> None:
        self._selector = selector if selector is not None else selectors.DefaultSelector()
        self._ready: collections.deque[Handle] = collections.deque()
        self._timers = TimerQueue()
        self._running = False
        self._stopping = False
        self._closed = False
        self._pid = os.getpid()
        self._exception_handler: ExceptionHandler | None = None
        self.slow_callback_s = slow_callback_s
        # Signals: signum -> Handle, plus what we replaced, to restore it.
        self._signal_handlers: dict[int, Handle] = {}
        self._previous_signal_handlers: dict[int, Any] = {}
        self._signal_rsock: socket.socket | None = None
        self._signal_wsock: socket.socket | None = None
        self._previous_wakeup_fd = -1
        # Scratch space for socket reads (``recv_into``), shared by the
        # transports of this reactor: the loop runs one callback at a time and
        # each read is copied out at once.  ``recv(n)`` would allocate n bytes
        # per read and shrink them: at 256 KiB glibc may serve that with an
        # mmap and a munmap per read, which was measured to triple the cost
        # of a small request (see load/BENCHMARKS.md, 2026-11-26).
        self.read_buffer = memoryview(bytearray(READ_BUFFER_SIZE))

    # ----------------------------------------------------------------- clock
    def time(self) -> float:
        """The reactor's clock: ``time.monotonic()`` seconds."""
        return time.monotonic()

    # ------------------------------------------------------------- callbacks
    def call_soon(self, fn: Callable[..., Any], *args: Any) -> Handle:
        """Run ``fn(*args)`` on the next pass of the loop; returns a cancellable handle."""
        handle = Handle(fn, args)
        self._ready.append(handle)
        return handle

    def call_later(self, delay_s: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Run ``fn(*args)`` after ``delay_s`` seconds; returns a timer with ``cancel()``."""
        return self._timers.schedule(time.monotonic() + delay_s, fn, args)

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Run ``fn(*args)`` at ``when`` on the reactor's clock (see ``time()``).

        Timers with the same deadline run in the order they were scheduled.
        """
        return self._timers.schedule(when, fn, args)

    # ------------------------------------------------------------------- I/O
    def add_reader(self, fileobj: FileLike, fn: Callable[..., Any], *args: Any) -> None:
        """Call ``fn(*args)`` whenever ``fileobj`` (an fd or object with fileno()) is readable.

        Adding a reader again for the same file replaces the callback.
        """
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
        self._check_open()
        selector = self._selector
        try:
            key = selector.get_key(fileobj)
        except KeyError:
            data = (handle, None) if event == selectors.EVENT_READ else (None, handle)
            selector.register(fileobj, event, data)
            return
        reader, writer = key.data
        if event == selectors.EVENT_READ:
            old, data = reader, (handle, writer)
        else:
            old, data = writer, (reader, handle)
        selector.modify(fileobj, key.events | event, data)
        if old is not None:
            old.cancel()

    def _remove(self, fileobj: FileLike, event: int) -> bool:
        if self._closed:
            return False
        selector = self._selector
        try:
            key = selector.get_key(fileobj)
        except (KeyError, ValueError):
            return False
        reader, writer = key.data
        if event == selectors.EVENT_READ:
            old, data = reader, (None, writer)
        else:
            old, data = writer, (reader, None)
        if old is None:
            return False
        mask = key.events & ~event
        if mask:
            selector.modify(fileobj, mask, data)
        else:
            selector.unregister(fileobj)
        old.cancel()
        return True

    # --------------------------------------------------------------- signals
    def add_signal_handler(self, signum: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` as an ordinary loop callback whenever ``signum`` arrives.

        Must be called from the main thread.  The previous Python-level handler
        is restored by ``remove_signal_handler`` and by ``close()``.
        """
        self._check_open()
        if signum not in self._signal_handlers:
            self._ensure_signal_wakeup()
            try:
                previous = signal.signal(signum, _ignore_in_signal_frame)
            except BaseException:
                # e.g. SIGKILL: leave no wakeup fd behind when no handler is set.
                if not self._signal_handlers:
                    self._close_signal_wakeup()
                raise
            self._previous_signal_handlers[signum] = previous
            # Let blocking system calls restart; the wakeup fd still fires.
            signal.siginterrupt(signum, False)
        self._signal_handlers[signum] = Handle(fn, args)

    def remove_signal_handler(self, signum: int) -> bool:
        """Remove the handler for ``signum`` and restore the previous one; returns whether one was set."""
        handle = self._signal_handlers.pop(signum, None)
        if handle is None:
            return False
        handle.cancel()
        signal.signal(signum, self._previous_signal_handlers.pop(signum))
        if not self._signal_handlers:
            self._close_signal_wakeup()
        return True

    def _ensure_signal_wakeup(self) -> None:
        if self._signal_rsock is not None:
            return
        rsock, wsock = socket.socketpair()
        rsock.setblocking(False)
        wsock.setblocking(False)
        self._previous_wakeup_fd = signal.set_wakeup_fd(wsock.fileno(), warn_on_full_buffer=False)
        self._signal_rsock, self._signal_wsock = rsock, wsock
        self.add_reader(rsock, self._read_signals)

    def _close_signal_wakeup(self) -> None:
        if self._signal_rsock is None:
            return
        self.remove_reader(self._signal_rsock)
        signal.set_wakeup_fd(self._previous_wakeup_fd)
        self._previous_wakeup_fd = -1
        self._signal_rsock.close()
        assert self._signal_wsock is not None
        self._signal_wsock.close()
        self._signal_rsock = self._signal_wsock = None

    def _read_signals(self) -> None:
        assert self._signal_rsock is not None
        try:
            data = self._signal_rsock.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        for signum in data:
            handle = self._signal_handlers.get(signum)
            if handle is not None:
                self._ready.append(Handle(handle.callback, handle.args))

    # ----------------------------------------------------------------- errors
    def set_exception_handler(self, handler: ExceptionHandler | None) -> None:
        """Report callback exceptions to ``handler(exc, handle)`` instead of the ``evloop`` logger."""
        self._exception_handler = handler

    def _report_exception(self, exc: BaseException, handle: Handle) -> None:
        if self._exception_handler is not None:
            try:
                self._exception_handler(exc, handle)
                return
            except Exception:  # a broken handler must not break the loop
                logger.exception("exception handler failed")
        logger.error("exception in callback %r", handle, exc_info=exc)

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        """Run passes of the loop until ``stop()`` is called."""
        self._check_open()
        if self._running:
            raise RuntimeError("reactor is already running")
        if os.getpid() != self._pid:
            raise RuntimeError("this reactor was created in another process: after fork(), create a new Reactor")
        self._running = True
        self._stopping = False
        try:
            while not self._stopping:
                self.run_once()
        finally:
            self._running = False
            self._stopping = False

    def stop(self) -> None:
        """Make ``run()`` return after the current pass."""
        self._stopping = True

    @property
    def is_running(self) -> bool:
        return self._running

    @property
    def is_closed(self) -> bool:
        return self._closed

    def run_once(self, timeout_s: float | None = None) -> None:
        """Run one pass: select (blocking at most ``timeout_s``), I/O callbacks, due timers, ready callbacks."""
        self._check_open()
        ready = self._ready
        timers = self._timers
        if ready or self._stopping:
            timeout = 0.0
        else:
            deadline = timers.next_deadline()
            if deadline is None:
                timeout = timeout_s
            else:
                timeout = max(0.0, deadline - time.monotonic())
                if timeout_s is not None and timeout_s < timeout:
                    timeout = timeout_s
            if timeout is not None and timeout > _MAX_SELECT_TIMEOUT_S:
                timeout = _MAX_SELECT_TIMEOUT_S

        try:
            events = self._selector.select(timeout)
        except InterruptedError:
            events = []

        run_callback = self._run_callback
        read_event = selectors.EVENT_READ
        write_event = selectors.EVENT_WRITE
        for key, mask in events:
            reader, writer = key.data
            if mask & read_event and reader is not None and not reader.cancelled:
                run_callback(reader)
            if mask & write_event and writer is not None and not writer.cancelled:
                run_callback(writer)

        if timers.heap_size:
            ready.extend(timers.pop_due(time.monotonic()))

        # Only what was ready when this step began: later additions wait a pass.
        for _ in range(len(ready)):
            handle = ready.popleft()
            if not handle.cancelled:
                run_callback(handle)

    def _run_callback(self, handle: Handle) -> None:
        slow_s = self.slow_callback_s
        start = time.monotonic() if slow_s is not None else 0.0
        try:
            handle.callback(*handle.args)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as exc:
            self._report_exception(exc, handle)
        if slow_s is not None:
            took = time.monotonic() - start
            if took >= slow_s:
                logger.warning("slow callback %r held the loop for %.3f s", handle, took)

    # ------------------------------------------------------------- lifetime
    def close(self) -> None:
        """Release the selector and signal resources; pending callbacks are dropped."""
        if self._closed:
            return
        if self._running:
            raise RuntimeError("cannot close a running reactor")
        for signum in list(self._signal_handlers):
            self.remove_signal_handler(signum)
        self._close_signal_wakeup()
        self._closed = True
        self._ready.clear()
        self._timers.clear()
        self._selector.close()

    def discard_after_fork(self) -> None:
        """In a forked child: drop this inherited reactor without touching the parent's.

        Closes the child's copies of the selector and signal descriptors without
        unregistering anything (that would change the parent's epoll set), and
        restores default signal wiring in the child.  Then create a new Reactor.
        """
        if self._closed:
            return
        self._closed = True
        if self._signal_rsock is not None:
            signal.set_wakeup_fd(-1)
            for signum, previous in self._previous_signal_handlers.items():
                signal.signal(signum, previous)
            self._signal_rsock.close()
            assert self._signal_wsock is not None
            self._signal_wsock.close()
            self._signal_rsock = self._signal_wsock = None
        self._signal_handlers.clear()
        self._previous_signal_handlers.clear()
        self._ready.clear()
        self._timers.clear()
        # Closing the selector only drops this process's descriptor; it is
        # unregister/modify calls that would reach into the shared epoll set.
        self._selector.close()

    def __enter__(self) -> "Reactor":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _check_open(self) -> None:
        if self._closed:
            raise RuntimeError("reactor is closed")


def _ignore_in_signal_frame(signum: int, frame: Any) -> None:
    """Python-level handler: the work happens in the loop, woken by the wakeup fd."""
