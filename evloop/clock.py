"""Clocks for the reactor: the real monotonic clock, and one that tests move by hand.

Everything in the reactor and above it (timers, ``run_once`` timeouts,
``run_until_complete`` bounds, server deadlines) reads time through
``reactor.time()``, which asks the reactor's clock.  A clock (``Clock``) has
three methods:

``time()``
    The current time in seconds; never goes backwards.
``select_timeout(delay_s)``
    How long, in real seconds, ``select`` may block while the nearest timer is
    ``delay_s`` clock-seconds away.  The real clock answers ``delay_s``; a
    manual clock answers ``0`` for a timer already due, else ``None`` (its
    time moves only when told, so a future timer gives no reason to wake
    up) or, with ``autojump``, ``0``.
``idle_until(deadline)``
    Called when a pass found nothing to do before the timer due at
    ``deadline``: a manual clock with ``autojump`` jumps there, the others do
    nothing.

``ManualClock`` follows Twisted's ``task.Clock`` (time moves only by
``advance``) and trio's ``MockClock`` (``autojump``: when the loop has nothing
to do but wait for a timer, time jumps to it), so a test of a ten-minute
timeout runs in microseconds without sleeping.
"""

from __future__ import annotations

import math
import time
from typing import Protocol

__all__ = ["Clock", "MonotonicClock", "ManualClock"]


class Clock(Protocol):
    """What a reactor needs of a clock: the three methods described above."""

    def time(self) -> float: ...
    def select_timeout(self, delay_s: float) -> float | None: ...
    def idle_until(self, deadline: float) -> None: ...


class MonotonicClock:
    """The real clock: ``time.monotonic()``."""

    __slots__ = ()

    time = staticmethod(time.monotonic)

    def select_timeout(self, delay_s: float) -> float | None:
        return delay_s

    def idle_until(self, deadline: float) -> None:
        pass

    def __repr__(self) -> str:
        return "MonotonicClock()"


class ManualClock:
    """A clock that moves only when told: ``advance(seconds)`` or ``set(when)``.

    ``autojump=True``: when the reactor has nothing to run and no descriptor
    is ready, the clock jumps straight to the next timer's deadline instead
    of the loop waiting for it (trio's ``MockClock(autojump_threshold=0)``).
    A reactor with a manual clock never sleeps for a timer: without
    ``autojump``, ``run_once()`` with no bound blocks until I/O arrives, so
    tests call ``run_once(0)`` after ``advance()``.
    """

    __slots__ = ("_now", "autojump")

    def __init__(self, start: float = 0.0, *, autojump: bool = False) -> None:
        self._now = _finite(start, "start")
        self.autojump = autojump

    def time(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        """Move the clock forward by ``seconds`` (>= 0)."""
        seconds = _finite(seconds, "seconds")
        if seconds < 0:
            raise ValueError(f"a clock cannot go backwards (advance({seconds!r}))")
        self._now += seconds

    def set(self, when: float) -> None:
        """Move the clock forward to ``when``."""
        when = _finite(when, "when")
        if when < self._now:
            raise ValueError(f"a clock cannot go backwards ({when!r} < {self._now!r})")
        self._now = when

    def select_timeout(self, delay_s: float) -> float | None:
        if delay_s <= 0 or self.autojump:
            return 0.0  # a timer is due now, or time will jump to it
        return None

    def idle_until(self, deadline: float) -> None:
        if self.autojump and deadline > self._now:
            self._now = deadline

    def __repr__(self) -> str:
        return f"ManualClock({self._now!r}, autojump={self.autojump!r})"


def _finite(value: float, name: str) -> float:
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    return value
