"""``LoopStats``: what ``Reactor.stats()`` reports (the counters themselves live on the reactor's hot path)."""

from __future__ import annotations

import dataclasses

__all__ = ["LoopStats"]


@dataclasses.dataclass(frozen=True)
class LoopStats:
    """What ``Reactor.stats()`` reports.

    ``passes`` and ``callbacks`` count since the reactor was created
    (``callbacks``: the ready callbacks and timers a pass took, cancelled
    ones included, plus the I/O events it dispatched).  ``timers_pending``
    and ``ready``: the timers and ready callbacks waiting now.
    ``max_timer_lag_s`` is the worst delay, on the reactor's clock, between a
    timer's deadline and the pass that ran it, since the previous ``stats()``
    call (``interval_s`` ago).  ``slow_callbacks``: callbacks that held the
    loop at least ``slow_callback_s`` since the reactor was created (0 while
    that is None: nothing is timed then).
    """

    passes: int
    callbacks: int
    timers_pending: int
    ready: int
    max_timer_lag_s: float
    interval_s: float
    slow_callbacks: int = 0
