"""The reactor: a single-threaded event loop over the ``selectors`` module.

Theory of operation.  One pass of the loop (``run_once``):

1. compute how long ``select`` may block: zero when callbacks are ready, else
   until the nearest timer (or forever / the caller's bound);
2. ``select`` and call the reader and writer callbacks of the ready files;
3. move the timers that are due onto the ready queue;
4. run the callbacks that were ready *when this step began*.  Callbacks queued
   while it runs wait for the next pass, so a callback that keeps rescheduling
   itself cannot starve I/O.

Every user callback is called under a ``try`` in ``run_once`` (I/O callbacks directly, the others through
``_run_callback``): an exception is reported to the exception handler (``evloop.reporting``; by default the
``evloop`` logger) with its context, and the loop goes on; ``KeyboardInterrupt`` and ``SystemExit`` pass through
(unless ``contain_exits`` is set and no signal raised them: ``evloop.exits``).
Time is read from the reactor's clock (``evloop.clock``), never from
``time.monotonic()`` directly, so tests can drive every deadline by hand.

Wake-ups.  Each reactor owns a self-pipe (``evloop.selfpipe``) that it
watches like any file: ``call_soon_threadsafe`` queues its callback, then
writes a byte there to end a sleeping ``select``, and the C-level signal
handler writes signal numbers there, which the reactor's ``SignalRouter``
(``evloop.signals``) turns into ordinary callbacks, never run inside the
signal frame.

Fork.  A forked child shares the epoll object and the self-pipe, so every
inherited reactor is discarded in every forked child (``evloop.forking``);
``discard_after_fork`` below is what that does to one reactor.
"""

from __future__ import annotations

import collections
import logging
import math
import os
import selectors
import socket
import time
from collections.abc import Callable
from types import MethodType
from typing import Any, TypeVar

from .clock import Clock, MonotonicClock
from .forking import fork_and_discard, live_reactors
from .futures import Future
from .reactor_files import SELECT_FD_LIMIT, FileWatching, selector_internals
from .reporting import ErrorReporting, safe_repr
from .reporting import ExceptionHandler as ExceptionHandler  # re-exported: handlers were typed from here
from .selfpipe import SelfPipe
from .stats import LoopStats
from .timers import Handle, PeriodicHandle, Timer, TimerQueue

__all__ = ["Reactor", "Handle", "Timer", "PeriodicHandle", "LoopStats", "Clock"]

logger = logging.getLogger("evloop")

T = TypeVar("T")

READ_BUFFER_SIZE = 256 * 1024  # the most one read of TLS, pipes, UDP takes (Reactor.read_buffer)
_MAX_SELECT_TIMEOUT_S = 24 * 3600.0  # selectors reject absurd timeouts on some platforms
# The most events one epoll.poll returns (the rest, still ready, come first in the next pass): its default of
# 1023 mallocs 12 KiB a call, 64 a block glibc keeps cached (~215 instructions a pass, callgrind).
_EPOLL_MAX_EVENTS = 64
_INF = math.inf
# epoll's readiness bits, as selectors reads them: anything but POLLOUT (POLLIN, an error, a hangup) wakes the
# reader, anything but POLLIN the writer.  The loop asks ``mask != _POLLOUT`` and ``mask != _POLLIN``, which for
# a mask that is not 0 is ``mask & ~_POLLOUT`` and ``mask & ~_POLLIN``: epoll never reports a descriptor with no
# bit set (nor does the selectors path below), and 3.11 specializes a comparison of small ints where ``&`` takes
# the generic path (load/server_instructions.py --no-access-log, a request: conns1000 26,677 -> 26,187,
# keepalive 32,905 -> 32,568).
_POLLIN, _POLLOUT = 0x001, 0x004
_POLL_BITS = (0, _POLLIN, _POLLOUT, _POLLIN | _POLLOUT)  # indexed by EVENT_READ | EVENT_WRITE


class _NoDirectCalls:
    """The loop's ``calls`` while callbacks are timed (``slow_callback_s``): no reader is called directly, every one
    goes through its handle and ``_run_callback``; the untimed loop reads ``_reader_calls`` itself."""

    __slots__ = ()

    def __getitem__(self, fd: int) -> None:
        return None


_NO_DIRECT_CALLS = _NoDirectCalls()


class Reactor(ErrorReporting, FileWatching):
    """A selector-based event loop: timers, ready callbacks, file readiness, signals, futures.

    ``selector`` defaults to ``selectors.DefaultSelector()`` (epoll on Linux);
    ``SelectSelector`` and ``PollSelector`` instances work too.
    ``clock``: where time comes from (``evloop.MonotonicClock()`` by default;
    ``evloop.ManualClock()`` for tests); ``reactor.time()`` reads it, in
    seconds, and everything above the reactor takes its time from there.
    ``slow_callback_s``: when set, every callback that holds the loop longer
    (in real time) is logged with its name, which is how a blocking handler
    is found.
    """

    def __init__(
        self,
        selector: selectors.BaseSelector | None = None,
        *,
        clock: Clock | None = None,
        slow_callback_s: float | None = None,
    ) -> None:
        self._selector = selector if selector is not None else selectors.DefaultSelector()
        self._fd_keys, self._epoll = selector_internals(self._selector)
        self._fd_limit = SELECT_FD_LIMIT if isinstance(self._selector, selectors.SelectSelector) else None
        # fd -> reader handle, writer handle, reader's function and its object (evloop.reactor_files).
        self._readers: list[Handle | None] = []
        self._writers: list[Handle | None] = []
        self._reader_calls: list[Callable[..., Any] | None] = []
        self._reader_owners: list[Any] = []
        self._clock: Clock = clock if clock is not None else MonotonicClock()
        # reactor.time(): the clock's own function, not a method calling it.  Server deadlines read it on every
        # request: the frame of a method, with the finite-delay check as a function call, cost 600 instructions a
        # keep-alive request (load/bench_instructions.py: 32,840 -> 32,238; 32,120 before this clock existed).  For
        # the default clock it is time.monotonic itself.
        self.time: Callable[[], float] = self._clock.time
        self._real_clock = type(self._clock) is MonotonicClock
        self._ready: collections.deque[Handle] = collections.deque()
        self._idle: list[Handle] = []  # call_when_idle: run when nothing else is ready
        self._timers = TimerQueue()
        self._running = False
        self._in_pass = False
        self._stopping = False
        self._closed = False
        self._pid = os.getpid()
        # False once closed or discarded (in a forked child): run_once tests this one flag instead of calling
        # os.getpid() each pass (a system call, 5-8% of a pass).
        self._runnable = True
        self._closing = False  # inside close(): no new resource may start
        self.slow_callback_s = slow_callback_s
        # Open transports, listeners and pending connections: close() ends them.
        self._resources: set[Any] = set()
        # The SIGCHLD fallback of evloop.net.process (made by its first child watched that way).
        self._sigchld_watcher: Any = None
        self._passes = 0  # loop statistics (see stats())
        self._callbacks_run = 0
        self._max_timer_lag = 0.0
        self._slow_callbacks = 0
        self._stats_since = self._clock.time()
        # Scratch space for the reads (``recv_into``) of the TLS, pipe and UDP transports of this reactor: the loop
        # runs one callback at a time and each read is copied out at once.  ``recv(n)`` would allocate n bytes per
        # read and shrink them: at 256 KiB glibc may serve that with an mmap and a munmap per read, which was
        # measured to triple the cost of a small request (see load/BENCHMARKS.md, 2026-11-26).  TCP reads take
        # at most 64 KiB with ``recv``, under that threshold (``net.tcp._RECV_SIZE``).
        self.read_buffer = memoryview(bytearray(READ_BUFFER_SIZE))
        # The self-pipe (see the module docstring).
        try:
            self._self_pipe = SelfPipe(self._ready)
        except BaseException:
            self._selector.close()
            raise
        self._signals = self._self_pipe.signals
        try:
            self.add_reader(self._self_pipe.rsock, self._self_pipe.readable)
        except BaseException:
            self._self_pipe.close()
            self._selector.close()
            raise
        self._resolver: Any = None  # resolve(): created on first use (evloop.net.resolver)
        live_reactors.add(self)  # last: the at-fork hook sees only whole reactors

    # ----------------------------------------------------------------- clock
    @property
    def clock(self) -> Clock:
        return self._clock

    # ------------------------------------------------------------- callbacks
    def call_soon(self, fn: Callable[..., Any], *args: Any) -> Handle:
        """Run ``fn(*args)`` on the next pass of the loop; returns a cancellable handle.

        Not thread-safe: from another thread use ``call_soon_threadsafe``.  ``RuntimeError`` once the reactor is
        closed (the call would never run)."""
        if self._closed:
            raise RuntimeError("reactor is closed")
        handle = Handle(fn, args)
        self._ready.append(handle)
        return handle

    def call_when_idle(self, fn: Callable[..., Any], *args: Any) -> Handle:
        """Run ``fn(*args)`` once, when the loop has nothing else to do.

        While idle callbacks are pending, a pass that starts with nothing
        ready polls for I/O without waiting; when that poll finds no I/O and
        no timer is due, the idle callbacks run, before the loop would block.
        A busy loop never runs them: use them for work that may wait, such as
        flushing buffered log lines (with a timer as well when it must not
        wait for ever).  Returns a cancellable handle.
        """
        if self._closed:
            raise RuntimeError("reactor is closed")
        handle = Handle(fn, args)
        self._idle.append(handle)
        return handle

    def call_soon_threadsafe(self, fn: Callable[..., Any], *args: Any) -> Handle:
        """Like ``call_soon``, callable from any thread (or a host program's signal handler).

        It wakes a loop sleeping in ``select`` at once, through the self-pipe.
        This is the only reactor method that may be called from outside the
        loop's thread.  After ``close()`` it raises ``RuntimeError``; a call
        that races with ``close()`` in another thread may be dropped.
        """
        if self._closed:
            raise RuntimeError("reactor is closed")
        handle = Handle(fn, args)
        self._ready.append(handle)  # deque.append is atomic; before the wake byte (evloop.selfpipe)
        self._self_pipe.wake()
        return handle

    def call_later(self, delay_s: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Run ``fn(*args)`` after ``delay_s`` seconds; returns a timer with ``cancel()``.

        A negative delay counts as 0 (as in asyncio); NaN or an infinity
        raises ``ValueError`` (either would freeze every timer behind it).
        """
        if not -_INF < delay_s < _INF:  # NaN and the infinities (inline: timers are armed per request)
            raise ValueError(f"call_later() needs a finite delay in seconds, got {delay_s!r}")
        if delay_s < 0:
            delay_s = 0.0
        if self._closed:
            raise RuntimeError("reactor is closed")
        return self._timers.schedule(self._clock.time() + delay_s, fn, args)

    def call_at(self, when: float, fn: Callable[..., Any], *args: Any) -> Timer:
        """Run ``fn(*args)`` at ``when`` on the reactor's clock (see ``time()``).

        Timers with the same deadline run in the order they were scheduled.
        NaN or an infinity raises ``ValueError``.
        """
        if not -_INF < when < _INF:
            raise ValueError(f"call_at() needs a finite time, got {when!r}")
        if self._closed:
            raise RuntimeError("reactor is closed")
        return self._timers.schedule(when, fn, args)

    def call_every(self, interval_s: float, fn: Callable[..., Any], *args: Any) -> PeriodicHandle:
        """Run ``fn(*args)`` every ``interval_s`` seconds, first one interval from now.

        Drift-free: beat ``k`` is due at ``start + k * interval_s`` whatever
        the callback's own duration.  After a stall, the beats that were
        missed are skipped (counted in ``handle.missed``), never run in a
        burst.  An exception from ``fn`` is reported and the beats go on.
        Returns a handle whose ``cancel()`` stops the beats.
        """
        if not 0 < interval_s < _INF:
            raise ValueError(f"call_every() needs a positive finite interval, got {interval_s!r}")
        return PeriodicHandle(self, interval_s, fn, args)

    # ----------------------------------------------------------------- futures
    def create_future(self) -> Future[Any]:
        """A new ``evloop.Future`` whose done callbacks run on this reactor."""
        return Future(self)

    def run_until_complete(self, future: Future[T], timeout_s: float | None = None) -> T:
        """Run the loop until ``future`` is done; return its result or raise its exception.

        ``timeout_s`` is on the reactor's clock: when it passes first,
        ``TimeoutError`` is raised and the future is left as it is.  The
        future must be completed by something this reactor runs (a future
        of another reactor would never wake this one).  Raises
        ``RuntimeError`` when the loop is already running or ``stop()`` is
        called before the future is done.
        """
        self._check_can_run()
        timed_out = False

        def time_is_up() -> None:
            nonlocal timed_out
            timed_out = True

        timer = None if timeout_s is None else self.call_later(timeout_s, time_is_up)
        self._running = True
        try:
            while not future.done():
                if timed_out:
                    raise TimeoutError(f"the future was not done within {timeout_s} s")
                if self._stopping:
                    raise RuntimeError("the reactor was stopped before the future was done")
                self.run_once()
        finally:
            self._running = False
            self._stopping = False
            if timer is not None:
                timer.cancel()
        return future.result()

    def resolve(
        self, host: Any, port: Any, family: int = 0, type: int = socket.SOCK_STREAM
    ) -> Future[list[tuple[Any, ...]]]:
        """``socket.getaddrinfo(host, port, family, type)`` without blocking: a ``Future`` of its list
        or its ``socket.gaierror``, from an ``evloop.Resolver`` made on first use (see its docstring)."""
        if self._resolver is None:
            from .net.resolver import Resolver  # the DNS modules load only in programs that resolve
            self._resolver = Resolver(self)
        return self._resolver.resolve(host, port, family, type)  # type: ignore[no-any-return]

    # --------------------------------------------------------------- signals
    def add_signal_handler(self, signum: int, fn: Callable[..., Any], *args: Any) -> None:
        """Run ``fn(*args)`` as an ordinary loop callback whenever ``signum`` arrives.

        Must be called from the main thread.  The previous Python-level handler
        is restored by ``remove_signal_handler`` and by ``close()``.  The
        signal wakeup fd is one per process: while another open reactor holds
        signal handlers, this raises ``RuntimeError`` instead of silently
        taking its signals away.
        """
        self._check_open()
        self._signals.add(signum, fn, args)

    def remove_signal_handler(self, signum: int) -> bool:
        """Remove the handler for ``signum`` and restore the previous one; returns whether one was set."""
        return self._signals.remove(signum)

    # ------------------------------------------------------------ the loop
    def run(self) -> None:
        """Run passes of the loop until ``stop()`` is called.

        A ``stop()`` called before ``run()`` makes it run one pass and return
        (as asyncio's ``run_forever`` does).
        """
        self._check_can_run()
        self._running = True
        try:
            stopping = self._stopping
            self._run_passes(0.0 if stopping else None, stopping)
        finally:
            self._running = False
            self._stopping = False

    def stop(self) -> None:
        """Make ``run()`` return after the current pass (or after its first, if not yet running)."""
        self._stopping = True

    @property
    def is_running(self) -> bool:
        return self._running

    @property
    def is_closed(self) -> bool:
        return self._closed

    def run_once(self, timeout_s: float | None = None) -> None:
        """Run one pass: select (blocking at most ``timeout_s`` real seconds), I/O callbacks, due timers, ready
        callbacks.  Calling it from inside a callback of the same reactor raises ``RuntimeError``."""
        self._run_passes(timeout_s, True)

    def _run_passes(self, timeout_s: float | None, once: bool) -> None:
        """One pass (``once``: ``run_once``), or passes until a callback calls ``stop()``: ``run()``'s in this one
        frame, not a call of ``run_once`` each: ~1,100 instructions a keep-alive request (server_instructions.py)."""
        if self._in_pass:
            raise RuntimeError("run_once() called from a callback of the same reactor: the loop is not re-entrant")
        ready, time = self._ready, self.time  # time: a method-style call of the attribute is never specialized
        readers, writers, reader_calls, owners = self._readers, self._writers, self._reader_calls, self._reader_owners
        self._in_pass = True
        try:
            while True:
                if not self._runnable:
                    self._check_can_run()
                # Idle callbacks wait for a pass that starts with nothing ready and whose poll (timeout 0: under load,
                # the pass's own select) finds no I/O and no due timer.
                timer_deadline, poll_for_idle = None, False
                if ready:
                    timeout: float | None = 0.0
                elif self._idle:
                    poll_for_idle, timeout = True, 0.0
                elif timeout_s is None and self._real_clock and (
                    not (heap := self._timers.heap) or not (first := heap[0])[2].cancelled
                ):
                    # run()'s pass on the real clock, the nearest timer live (or none): its wait read here, not by
                    # _wait_bound's general steps: ~1,000 instructions a pass (tests/reactor/test_reactor_wait.py).
                    if heap:
                        timeout = first[0] - time()
                        if timeout < 0.0:
                            timeout = 0.0
                        elif timeout > _MAX_SELECT_TIMEOUT_S:
                            timeout = _MAX_SELECT_TIMEOUT_S
                    else:
                        timeout = None
                else:
                    timeout, timer_deadline = self._wait_bound(timeout_s)

                try:  # (fd, poll bits) pairs, from epoll itself when it can (see reactor_files.selector_internals)
                    if (epoll := self._epoll) is not None:
                        events = epoll.poll(timeout, _EPOLL_MAX_EVENTS)  # None blocks; timeouts are kept >= 0
                    else:
                        events = [(key.fd, _POLL_BITS[mask]) for key, mask in self._selector.select(timeout) if mask]
                except InterruptedError:
                    events = []
                if timer_deadline is not None and not events:
                    self._clock.idle_until(timer_deadline)  # ManualClock(autojump=True) jumps here

                # I/O callbacks run here: through _run_callback (~400 instructions) only when timed or with arguments.
                # From fd-indexed lists (None: unregistered by a callback of this pass, or all once a callback discarded
                # the reactor, _drop_state): see evloop.reactor_files.  Per event no test of _closed nor of timed.
                timed = self.slow_callback_s is not None  # (the fd-indexed lists are grown in place: read once above)
                calls = _NO_DIRECT_CALLS if timed else reader_calls
                for fd, mask in events:
                    if mask != _POLLOUT and (call := calls[fd]) is not None:
                        try:
                            call(owner) if (owner := owners[fd]) is not None else call()  # a bound method's, or not
                        except BaseException as exc:
                            self._reader_failed(call, owner, exc)
                    elif mask != _POLLOUT and (reader := readers[fd]) is not None and not reader.cancelled:
                        self._run_callback(reader)  # reports what the reader raises
                    if mask != _POLLIN and (writer := writers[fd]) is not None and not writer.cancelled:
                        try:
                            self._run_callback(writer) if timed else writer.callback(*writer.args)
                        except BaseException as exc:
                            self._callback_failed(writer, exc)

                if (heap := self._timers.heap) and (heap[0][0] <= time() or heap[0][2].cancelled):
                    self._ready_due_timers()
                if poll_for_idle and not events and not ready:
                    ready.extend(self._idle)
                    self._idle.clear()

                count = len(ready)
                self._passes += 1
                self._callbacks_run += count + len(events)
                if count:
                    self._run_ready(count)
                if once or self._stopping:
                    return
        finally:
            self._in_pass = False

    def _run_ready(self, count: int) -> None:
        """Run the first ``count`` ready callbacks: those that were ready when this step of the pass began
        (later additions wait a pass; none once a callback closed or discarded the reactor: ready is empty).
        A method of its own called only when there are some: a pass of one-in-flight I/O has none."""
        ready = self._ready
        timed = self.slow_callback_s is not None
        while count and ready:  # called here unless timed, as the I/O callbacks are: a frame less each (~250)
            count -= 1
            handle = ready.popleft()
            if not handle.cancelled:
                try:
                    self._run_callback(handle) if timed else handle.callback(*handle.args)
                except BaseException as exc:
                    self._callback_failed(handle, exc)

    def _ready_due_timers(self) -> None:
        """Move the timers that are due onto the ready queue (a cancelled one on top of the heap is dropped)."""
        now = self._clock.time()
        due = self._timers.pop_due(now)
        if due:
            lag = now - due[0].when  # the earliest deadline lags the most
            if lag > self._max_timer_lag:
                self._max_timer_lag = lag
            self._ready.extend(due)

    def _wait_bound(self, timeout_s: float | None) -> tuple[float | None, float | None]:
        """How long this pass's select may block (the caller's bound, the next timer), and that timer's deadline.
        epoll.poll() blocks for ever on a negative timeout, where selectors' select() polls."""
        timeout = timeout_s if timeout_s is None or timeout_s > 0.0 else 0.0
        # Peek at the earliest entry: a method call and a property read each pass cost ~1,000 instructions.
        heap = self._timers.heap
        if heap:
            first = heap[0]
            timer_deadline = first[0] if not first[2].cancelled else self._timers.next_deadline()
        else:
            timer_deadline = None
        if timer_deadline is not None:
            clock = self._clock
            delay = timer_deadline - clock.time()
            if delay < 0:
                delay = 0.0
            wait = delay if self._real_clock else clock.select_timeout(delay)  # the real clock's is delay: no call
            if wait is not None and (timeout is None or wait < timeout):
                timeout = wait
        if timeout is not None and timeout > _MAX_SELECT_TIMEOUT_S:
            timeout = _MAX_SELECT_TIMEOUT_S
        return timeout, timer_deadline

    def _run_callback(self, handle: Handle) -> None:
        slow_s = self.slow_callback_s
        start = time.monotonic() if slow_s is not None else 0.0  # real time: how long the loop was held
        try:
            handle.callback(*handle.args)
        except BaseException as exc:
            self._callback_failed(handle, exc)
        if slow_s is not None:
            took = time.monotonic() - start
            if took >= slow_s:
                self._slow_callbacks += 1
                logger.warning("slow callback %r held the loop for %.3f s", handle, took)

    def _reader_failed(self, call: Callable[..., Any], owner: Any, exc: BaseException) -> None:
        """A reader called as ``call(owner)`` or ``call()`` raised: reported with a handle of that callback."""
        self._callback_failed(Handle(call if owner is None else MethodType(call, owner), ()), exc)

    def _callback_failed(self, handle: Handle, exc: BaseException) -> None:
        """A callback raised: report it and go on (a stop request, see ``exit_stops_loop``, goes on up)."""
        if self.exit_stops_loop(exc):
            raise exc
        self.call_exception_handler(
            {"message": f"exception in callback {safe_repr(handle)}", "exception": exc, "handle": handle}
        )

    def stats(self) -> LoopStats:
        """Counters of the loop (see ``LoopStats``); starts a new interval for the worst timer lag."""
        now = self._clock.time()
        result = LoopStats(
            passes=self._passes,
            callbacks=self._callbacks_run,
            timers_pending=len(self._timers),
            ready=len(self._ready),
            max_timer_lag_s=self._max_timer_lag,
            interval_s=now - self._stats_since,
            slow_callbacks=self._slow_callbacks,
        )
        self._max_timer_lag = 0.0
        self._stats_since = now
        return result

    # ------------------------------------------------------------- lifetime
    def fork(self) -> int:
        """Fork the process safely; returns the child's pid in the parent and 0 in the child.

        Every signal is blocked across ``os.fork()``.  In the child every
        inherited reactor is discarded (``discard_after_fork``: the parent's
        reactor is not touched, and the signal handlers from before the
        reactor's are back) before signals are unblocked, so a signal sent to
        the child can never run the parent's handler.  The child creates its own
        ``Reactor`` if it needs one.  Forking from inside a callback is fine,
        but the child must not return into the discarded loop (``run()``
        would raise ``RuntimeError``): end it with ``os._exit()``.
        """
        self._check_open()
        if os.getpid() != self._pid:
            raise RuntimeError("this reactor was created in another process")
        return fork_and_discard(self)

    def close(self) -> None:
        """Close the reactor: every open transport and listener, then the selector and the self-pipe.

        Each open transport is aborted and its protocol's ``connection_lost``
        is called before this returns (what those callbacks schedule on this
        reactor is dropped with the rest); pending callbacks and timers are
        dropped; signal handlers are restored.  In a forked child it only
        discards the inherited reactor (see ``discard_after_fork``).  Closing
        twice is harmless.
        """
        if self._closed:
            return
        if os.getpid() != self._pid:
            self.discard_after_fork()
            return
        if self._running or self._in_pass:
            raise RuntimeError("cannot close a running reactor")
        # From here on no resource may start (a connection_lost that opens a
        # replacement gets RuntimeError), so this ends.
        self._closing = True
        while self._resources:
            resource = self._resources.pop()
            try:
                resource._close_with_reactor()
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as exc:
                self.call_exception_handler({"message": "closing with the reactor failed", "exception": exc,
                                             "resource": resource})
        try:
            self._signals.close()
            self.remove_reader(self._self_pipe.rsock)
        finally:
            self._drop_state()

    def discard_after_fork(self, *, close_connections: bool = True) -> None:
        """In a forked child: drop this inherited reactor without touching the parent's.

        Closes the child's copies of the selector and the self-pipe without
        unregistering anything (that would change the parent's epoll set),
        restores the signal handlers from before the reactor's and the
        wakeup fd, and calls back nothing.  With ``close_connections`` it
        also closes the child's copies of the connections' sockets, so that
        a connection the parent closes is not kept open by the child;
        listening sockets stay open either way (pre-fork servers hand them
        to children).

        Every forked child runs this by itself, through an
        ``os.register_at_fork`` hook, with ``close_connections=False`` (a
        child of ``subprocess`` or ``multiprocessing`` may have been handed
        one of those sockets); ``reactor.fork()`` runs it with signals
        blocked and closes the connections.
        """
        if self._closed:
            if close_connections:
                self._discard_resources()
            return
        try:
            self._signals.discard_after_fork()
            if close_connections:
                self._discard_resources()
        finally:
            # Closing the selector only drops this process's descriptor; it is
            # unregister/modify calls that would reach into the shared epoll set.
            self._drop_state()

    def _discard_resources(self) -> None:
        resources, self._resources = self._resources, set()
        for resource in resources:
            try:
                resource._discard_after_fork()
            except Exception as exc:
                logger.error("discarding %s after fork() failed", safe_repr(resource), exc_info=exc)

    def _drop_state(self) -> None:
        """The end shared by close() and discard_after_fork(): nothing runs again."""
        self._closed = True
        self._runnable = False
        live_reactors.discard(self)
        # No callback for the rest of a pass whose callback discarded the reactor (a forked child that went on):
        # the loop finds None for each event's descriptor instead of testing _closed per event.
        for handles in (self._readers, self._writers, self._reader_calls, self._reader_owners):
            handles[:] = [None] * len(handles)
        self._ready.clear()
        self._idle.clear()
        self._timers.clear()
        self._selector.close()
        self._self_pipe.close()

    def __enter__(self) -> Reactor:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    # ------------------------------------------------------------- resources
    def _track(self, resource: Any) -> None:
        """Remember an open transport, listener or pending connection, for ``close()``.

        The object has a ``_close_with_reactor()`` method that ends it at
        once (and calls ``connection_lost`` for a transport).
        """
        if self._closed or self._closing:
            raise RuntimeError("reactor is closed" if self._closed else "reactor is closing")
        self._resources.add(resource)

    def _untrack(self, resource: Any) -> None:
        self._resources.discard(resource)

    def _check_can_run(self) -> None:
        if os.getpid() != self._pid:
            raise RuntimeError(
                "this reactor was created in another process: after fork() the child must use a new "
                "Reactor (reactor.fork() discards the inherited one)"
            )
        self._check_open()
        if self._running:
            raise RuntimeError("reactor is already running")
