"""Callback handles and the timer heap.

Theory of operation: timers live in a binary heap of ``(when, seq, timer)``
tuples, so ordering is by deadline and, for equal deadlines, by the order they
were scheduled (``seq`` never repeats).  Most timers in a server are timeouts
that get cancelled before they fire, so cancelling is O(1): the timer is only
marked, and the heap drops it lazily when it reaches the top.  When cancelled
entries make up more than half of a large heap, the heap is rebuilt without
them, which keeps memory and the cost of ``heappush`` proportional to the live
timers (the trick asyncio's ``_run_once`` uses).

This module knows nothing of clocks: callers pass the current time in.
"""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from typing import Any

__all__ = ["Handle", "Timer", "TimerQueue", "PeriodicHandle"]

# Rebuild the heap only past this many cancelled entries: for small heaps the
# lazy pops are cheaper than a rebuild.
_MIN_CANCELLED_TO_COMPACT = 256


class Handle:
    """A callback scheduled on a reactor; ``cancel()`` stops it from running."""

    __slots__ = ("callback", "args", "cancelled")

    def __init__(self, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        """Prevent the callback from running; cancelling twice is harmless."""
        if not self.cancelled:
            self.cancelled = True
            # Drop references early so cancelled handles keep nothing alive.
            self.callback = _cancelled_callback
            self.args = ()

    def __repr__(self) -> str:
        state = " cancelled" if self.cancelled else ""
        return f"<{type(self).__name__} {_describe(self.callback)}{state}>"


class Timer(Handle):
    """A handle that runs at a deadline (``when``, on the reactor's clock)."""

    __slots__ = ("when", "_queue")

    def __init__(
        self, when: float, callback: Callable[..., Any], args: tuple[Any, ...], queue: TimerQueue | None
    ) -> None:
        super().__init__(callback, args)
        self.when = when
        self._queue = queue

    def cancel(self) -> None:
        """Prevent the timer from firing.  O(1): the heap drops it lazily."""
        # Handle.cancel's steps written out: most timers are cancelled, and the
        # super() call and the queue method call were a third of the cost.
        if not self.cancelled:
            self.cancelled = True
            self.callback = _cancelled_callback
            self.args = ()
            queue = self._queue
            if queue is not None:
                self._queue = None
                queue._cancelled += 1
                if queue._cancelled > _MIN_CANCELLED_TO_COMPACT and queue._cancelled * 2 > len(queue.heap):
                    queue._compact()


class TimerQueue:
    """A heap of timers ordered by deadline, then by scheduling order."""

    __slots__ = ("heap", "_seq", "_cancelled")

    def __init__(self) -> None:
        # (when, sequence, timer) entries, earliest first; cancelled ones leave
        # lazily.  Read-only outside: the reactor peeks at heap[0] each pass.
        self.heap: list[tuple[float, int, Timer]] = []
        self._seq = itertools.count()
        self._cancelled = 0

    def __len__(self) -> int:
        """Live (not cancelled) timers."""
        return len(self.heap) - self._cancelled

    @property
    def heap_size(self) -> int:
        """Entries in the heap, cancelled ones included (for tests and stats)."""
        return len(self.heap)

    def schedule(self, when: float, callback: Callable[..., Any], args: tuple[Any, ...] = ()) -> Timer:
        """Add a timer that is due at ``when`` and return it."""
        timer = Timer(when, callback, args, self)
        heapq.heappush(self.heap, (when, next(self._seq), timer))
        return timer

    def next_deadline(self) -> float | None:
        """The earliest live deadline, or None when no timer is live."""
        heap = self.heap
        while heap and heap[0][2].cancelled:
            heapq.heappop(heap)
            self._cancelled -= 1
        return heap[0][0] if heap else None

    def pop_due(self, now: float) -> list[Timer]:
        """Remove and return the live timers due at ``now``, in firing order.

        Cancelled entries at the top of the heap go too, due or not, so a
        heap of cancelled timers empties on the next pass.
        """
        heap = self.heap
        due: list[Timer] = []
        while heap and (heap[0][0] <= now or heap[0][2].cancelled):
            timer = heapq.heappop(heap)[2]
            if timer.cancelled:
                self._cancelled -= 1
            else:
                timer._queue = None  # fired: a later cancel() must not count it
                due.append(timer)
        return due

    def clear(self) -> None:
        for _, _, timer in self.heap:
            timer._queue = None
        self.heap.clear()
        self._cancelled = 0

    def _compact(self) -> None:
        """Rebuild the heap without its cancelled entries."""
        self.heap = [entry for entry in self.heap if not entry[2].cancelled]
        heapq.heapify(self.heap)
        self._cancelled = 0


def _cancelled_callback(*args: Any) -> None:
    """Stands in for the callback of a cancelled handle."""


def _describe(callback: Callable[..., Any]) -> str:
    name = getattr(callback, "__qualname__", None)
    if isinstance(name, str) and name:
        return name
    try:
        return repr(callback)
    except Exception:  # a repr that raises must not turn a report into a crash
        return f"<{type(callback).__name__} (repr failed)>"


class PeriodicHandle:
    """A call repeated every ``interval_s`` seconds (``Reactor.call_every``); ``cancel()`` stops it.

    Beat ``k`` is due at ``start + k * interval_s`` on the reactor's clock:
    the next beat is scheduled from the intended time, not from when the
    last call ended, so the period does not drift.  When the loop was held
    past one or more beats, those are skipped and counted in ``missed``; the
    next call is the first beat still in the future (no burst of catch-up
    calls after a stall).  ``calls`` counts the calls made.
    """

    __slots__ = ("_reactor", "interval_s", "callback", "args", "calls", "missed", "_start", "_beat", "_due",
                 "_timer", "cancelled")

    def __init__(self, reactor: Any, interval_s: float, callback: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self._reactor = reactor
        self.interval_s = interval_s
        self.callback = callback
        self.args = args
        self.calls = 0
        self.missed = 0
        self.cancelled = False
        # Beat k is due at start + k * interval: computed, never accumulated,
        # so rounding errors do not add up over many beats.
        self._start: float = reactor.time()
        self._beat = 1
        self._due: float = self._start + interval_s
        self._timer: Timer | None = reactor.call_at(self._due, self._on_beat)

    @property
    def when(self) -> float:
        """When the next call is due."""
        return self._due

    def cancel(self) -> None:
        """Stop the beats; harmless when called twice or from the callback itself."""
        if not self.cancelled:
            self.cancelled = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.callback = _cancelled_callback
            self.args = ()

    def _on_beat(self) -> None:
        self._timer = None
        self.calls += 1
        try:
            self.callback(*self.args)
        except BaseException as exc:
            if self._reactor.exit_stops_loop(exc):
                raise  # the next beat is still scheduled (finally), for a host that goes on
            # Reported here, so the report names this handle and its callback;
            # the beats go on.
            self._reactor.call_exception_handler(
                {"message": f"exception in periodic callback {self!r}", "exception": exc, "handle": self}
            )
        finally:
            if not self.cancelled:
                self._schedule_next()

    def _schedule_next(self) -> None:
        now = self._reactor.time()
        beat = self._beat + 1
        due = self._start + beat * self.interval_s
        if due < now:
            # Beats were missed: skip to the first one still ahead.
            skipped = int((now - due) // self.interval_s) + 1
            beat += skipped
            due = self._start + beat * self.interval_s
            if due < now:  # rounding of the division: one more
                skipped += 1
                beat += 1
                due = self._start + beat * self.interval_s
            self.missed += skipped
        self._beat = beat
        self._due = due
        self._timer = self._reactor.call_at(due, self._on_beat)

    def __repr__(self) -> str:
        state = " cancelled" if self.cancelled else f" every {self.interval_s} s"
        return f"<PeriodicHandle {_describe(self.callback)}{state}>"
