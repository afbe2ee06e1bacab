"""``WallClock``: the wall-clock strings a server writes, refreshed once a second."""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable

from ..reactor import Reactor

__all__ = ["WallClock"]


class WallClock:
    """Wall-clock strings, refreshed once a second by a reactor timer: the ``Date`` field and the log time.

    A response reads ``http_date`` (RFC 9110 section 6.6.1) and an access
    log line ``log_time`` (Common Log Format) as attributes: reading the
    wall clock and formatting per response cost ~600 instructions a
    pipelined request (load/bench_instructions.py) for the date alone.  The
    strings may lag the wall clock by up to a second, as uvicorn's and
    nginx's cached dates do.  With ``http_date=False`` (``--no-date-header``)
    ``http_date`` stays None, which the response writer reads as "no Date field".
    """

    __slots__ = ("http_date", "log_time", "_timer", "_with_http_date", "_refreshed")

    def __init__(self, reactor: Reactor | None = None, *, http_date: bool = True) -> None:
        self._with_http_date = http_date
        self._refreshed: list[Callable[[], None]] = []
        self.http_date: bytes | None = None
        self.log_time = ""
        self.refresh()
        self._timer = reactor.call_every(1.0, self.refresh) if reactor is not None else None

    def refresh(self, now: float | None = None) -> None:
        """Make the strings for ``now`` (seconds since the epoch; default: the wall clock's), then call the
        ``when_refreshed`` callbacks."""
        if now is None:
            now = time.time()
        if self._with_http_date:
            self.http_date = email.utils.formatdate(now, usegmt=True).encode("ascii")
        self.log_time = time.strftime("%d/%b/%Y:%H:%M:%S %z", time.localtime(now))
        for callback in self._refreshed:
            callback()

    def when_refreshed(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after each refresh, so that text made from the old strings can be made again
        (the access log's line before: see ``AccessLog.log``)."""
        self._refreshed.append(callback)

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
