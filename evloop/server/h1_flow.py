"""Flow control and closing of an HTTP/1.1 connection, a part of ``HTTPProtocol`` (``h1.py``).

The transport's water marks (``pause_writing``/``resume_writing``), reading
stopped and started by the protocol (a pipelining client too far ahead, a
response backed up), and the server's ways to end a connection (after its
response, at once).  ``HTTPProtocol`` inherits these methods.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .phases import DRAINING, IDLE, NEW, Phase

if TYPE_CHECKING:
    from ..http import ServerConnection
    from ..net.base import Transport
    from .phases import PhaseEvent

__all__ = ["FlowControl"]


class FlowControl:
    """``HTTPProtocol``'s flow control and closing (see the module docstring)."""

    # No state of its own (see h1_streaming.ResponseStreaming).
    if not TYPE_CHECKING:
        __slots__ = ()

    # HTTPProtocol's state and methods, which these use.
    transport: Transport | None
    conn: ServerConnection
    phase: Phase
    _stream: Any
    _reading_paused: bool
    _write_paused: bool

    if TYPE_CHECKING:
        def _to(self, event: PhaseEvent) -> None: ...
        def _finish(self) -> None: ...
        def _process(self) -> None: ...
        def _pump_stream(self) -> None: ...

    def pause_writing(self) -> None:
        self._write_paused = True
        if self.phase is IDLE:
            # A response (or a burst of them) went out above the high water
            # mark: the next request waits until the peer takes them, and the
            # send timeout (not the keep-alive one) bounds how long it may pin them.
            # Reading stops too: nothing would parse what came meanwhile.
            self._to("writes_backed_up")
            self._pause_reading()

    def resume_writing(self) -> None:
        self._write_paused = False
        if self._stream is not None:
            self._pump_stream()
        if self.phase is DRAINING:
            self._to("writes_drained")
        if self.phase.reads and self.transport is not None:
            self._resume_reading()
            self._process()
        else:
            self._finish()

    def close_when_idle(self) -> None:
        """Graceful shutdown: close now if no request is in progress, else after its response."""
        if self.phase in (NEW, IDLE, DRAINING) and not self.conn.buffered_bytes:
            self._close()
        else:
            self.conn.keep_alive = False  # the response in progress (or the next, buffered) is the last

    def abort(self) -> None:
        if self.transport is not None:
            self.transport.abort()

    def _close(self) -> None:
        """Close after what is queued is sent (bounded by the send timeout)."""
        if self.transport is not None:
            self._to("close")
            self._finish()
            self.transport.close()

    def _pause_reading(self) -> None:
        if not self._reading_paused and self.transport is not None:
            self._reading_paused = True
            self.transport.pause_reading()

    def _resume_reading(self) -> None:
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
