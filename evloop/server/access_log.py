"""The access log: one Common Log Format line per response, cheap enough to leave on.

Theory of operation.  The lines go to the ``evloop.access`` logger of the
standard ``logging`` module, so users configure them as any other log
(levels, handlers, formatters, ``dictConfig``).  Two costs made the default
server 2.8x slower with its access log on: a ``LogRecord`` and a handler
call per line (about 8 us of the 11 us a keep-alive request took), and a
``write`` system call per line.  So:

- ``BufferedAccessHandler`` collects lines and writes them in one ``write``:
  when the loop goes idle (``reactor.call_when_idle``), or 20 ms after the
  last write when that was less than 20 ms ago (a timer, idle or not),
  at least once a second, when 512 lines (about 50 KiB) are waiting, and at
  shutdown.  ``evloop-demo`` installs it on ``evloop.access``.
- When that handler is the logger's only destination and would print the
  message as it is (no formatter of its own, no filters, no propagation),
  ``AccessLog`` appends the line to it directly: the same bytes, without the
  ``LogRecord``.  Any other configuration takes ``logger.info``.  The route
  is chosen again by the once-a-second flush (and at shutdown), so a
  reconfiguration takes effect within a second of the next line.

A format of the user's (``--access-log-format``, ``--log-format json``)
takes ``FormattedAccessLog``: the line comes from one function compiled
from the format (``evloop.logline.compile_access_format``), and the
default line's path above is left as it was measured.
"""

from __future__ import annotations

import logging
import sys
from math import floor
from typing import IO, Any

from ..logline import (
    THREE_DIGITS,
    JSONAccessLine,
    LineFormat,
    compile_access_format,
    duration_text,
    in_quotes,
    line_start,
    line_status,
    request_log_prefix,
)
from ..reactor import Reactor
from .wallclock import WallClock

__all__ = ["AccessLog", "FormattedAccessLog", "make_access_log", "BufferedAccessHandler", "install_access_handler",
           "access_logger"]

access_logger = logging.getLogger("evloop.access")
_server_logger = logging.getLogger("evloop.server")  # what goes wrong with the access log itself

_FLUSH_INTERVAL_S = 1.0
# At most one flush per this spacing: under pipelining the loop goes idle
# between a client's bursts, and a write per burst cost 5-7% of pipeline16
# and hello (load/bench/run.py, against a build without idle flushes).
# Lines that come sooner wait for a timer at the spacing's end, which writes
# them, idle or not: waiting for idle after it too cost an idle handle and
# a pass (~3,000 instructions a flush: see AccessLog._lines_waiting); a loop
# that is never idle writes every 20 ms instead of every second (at 50,000
# lines a second, 512 lines fill the handler first).
_IDLE_FLUSH_SPACING_S = 0.02
# The statuses whose responses carry no body (RFC 9110 sections 15.3.5,
# 15.4.5); nor does any response to HEAD.  The server frames by them too.
BODILESS_STATUSES = frozenset((204, 304))
_CAPACITY_LINES = 512  # about 50 KiB a write: few system calls, bounded memory
_MAX_STARTS = 256  # remembered line starts, by client host (see AccessLog._prefix); emptied when full
_MAX_STATUS_PARTS = 256  # remembered status parts of lines, by status and size; emptied when full
# Durations under this many whole microseconds have their texts remembered
# in a list, by index (see AccessLog.log); longer ones by their milliseconds.
_LISTED_US = 10_000
_MAX_MILLIS = 4096  # remembered texts of whole milliseconds; emptied when full
# A duration's last three digits with the line's end.
_MICRO_LINE_ENDS = tuple(f"{digits}\n" for digits in THREE_DIGITS)


class BufferedAccessHandler(logging.Handler):
    """A stream handler that writes its lines in batches.

    Until a server has attached it (``AccessLog``), or when none is
    attached, every line is written at once, like ``logging.StreamHandler``.
    While attached, lines wait until the attached server flushes (loop idle,
    or 20 ms after its last write; once a second; shutdown) or
    ``capacity_lines`` are waiting.
    ``logging.shutdown()`` (run at exit) flushes it too.
    """

    def __init__(self, stream: IO[str] | None = None, capacity_lines: int = _CAPACITY_LINES) -> None:
        super().__init__()
        self.stream = stream if stream is not None else sys.stderr
        self.capacity_lines = capacity_lines
        # The text waiting to be written, as the pieces that join into it:
        # two a line (the line up to its end, then the end with its newline),
        # so that AccessLog adds a line's remembered prefix and duration
        # without concatenating them first (see AccessLog.log).
        self.pieces: list[str] = []
        self.capacity_pieces = 2 * capacity_lines
        self.attached = 0  # servers that flush this handler
        # Writes that failed since the last that worked, and their lines (see flush).
        self.failed_writes = 0
        self.failed_lines = 0

    def emit(self, record: logging.LogRecord) -> None:
        try:
            self.add_line(self.format(record))
        except Exception:
            self.handleError(record)

    def add_line(self, line: str) -> None:
        """Queue one formatted line (without its newline)."""
        pieces = self.pieces
        pieces.append(line)
        pieces.append("\n")
        if len(pieces) >= self.capacity_pieces or not self.attached:
            self.flush()

    def waiting_lines(self) -> int:
        """Lines queued and not yet written."""
        return len(self.pieces) // 2

    def formats_plainly(self) -> bool:
        """Would a record be written as its bare message (so a line may skip the ``LogRecord``)?"""
        return self.formatter is None and not self.filters

    def flush(self) -> None:
        pieces = self.pieces
        if not pieces:
            return
        lock = self.lock  # acquire() and release() without their calls (see AccessLog._lines_waiting)
        if lock:
            lock.acquire()
        try:
            self.pieces = []
            self.stream.write("".join(pieces))
            self.stream.flush()
        except Exception:
            # The first failure is reported whole (logging's handleError: its
            # traceback on stderr); the ones after it only counted until a
            # write works again: a full disk failed every flush, a traceback
            # each (152 for 201 requests).
            self.failed_writes += 1
            self.failed_lines += len(pieces) // 2
            if self.failed_writes == 1:
                self.handleError(logging.makeLogRecord({"msg": "writing access log lines failed"}))
        else:
            if self.failed_writes:
                _server_logger.warning("access log: writing works again after %d failed writes (%d lines, which "
                                       "may be lost)", self.failed_writes, self.failed_lines)
                self.failed_writes = self.failed_lines = 0
        finally:
            if lock:
                lock.release()


def install_access_handler(stream: IO[str] | None = None) -> BufferedAccessHandler:
    """Send ``evloop.access`` lines, unprefixed, to ``stream`` (stderr) through a buffered handler."""
    handler = BufferedAccessHandler(stream)
    for old in list(access_logger.handlers):
        if isinstance(old, BufferedAccessHandler):
            old.flush()
            access_logger.removeHandler(old)
    access_logger.addHandler(handler)
    access_logger.propagate = False
    return handler


class AccessLog:
    """One server's access log: formats each line once and delivers it (see the module docstring)."""

    __slots__ = ("_reactor", "_wall", "_logger", "_direct", "_handlers", "_flush_timer", "_last_flush",
                 "_idle_flush", "_act_at", "_ends", "_millis", "_starts", "_status_parts", "_last_time", "_last_host",
                 "_last_start",
                 "_last_target", "_last_method", "_last_version", "_last_target_text", "_last_status", "_last_size",
                 "_last_end", "_last_client", "_last_head", "_last_prefix")

    def __init__(self, reactor: Reactor, wall: WallClock, logger: logging.Logger = access_logger) -> None:
        self._reactor = reactor
        self._wall = wall  # its log_time is the lines' timestamp (a second's resolution, as CLF has)
        self._logger = logger
        self._direct: BufferedAccessHandler | None = None
        self._handlers: list[BufferedAccessHandler] = []
        self._flush_timer: Any = None  # the at-least-once-a-second flush
        # The flush scheduled for the waiting lines (an idle callback, or a timer at the spacing's end): None
        # when none is.
        self._idle_flush: Any = None
        # The waiting pieces at which log() turns to _lines_waiting: 0 while
        # no flush is scheduled (the next line asks for one), else the direct
        # handler's capacity.  One test a line for both (~4 opcodes, ~70 instructions less).
        self._act_at = 0
        self._last_flush = -_IDLE_FLUSH_SPACING_S
        # The parts of the last line's prefix, and what they were made from
        # (see _prefix); the starts of this second's hosts and the status
        # parts by status and size are remembered, both bounded.
        self._starts: dict[str | None, str] = {}
        self._status_parts: dict[tuple[int, int], str] = {}
        self._last_time = ""
        self._last_host: str | None = ""  # never a host: the first line makes its start
        self._last_start = ""
        self._last_target = self._last_method = self._last_version = self._last_target_text = ""
        self._last_status = 0
        self._last_size = -1
        self._last_end = ""
        # The client and head of the last line, compared by identity first (see log).
        self._last_client: Any = None
        self._last_head: Any = None
        self._last_prefix = ""
        # Duration texts with the line's newline ("0.000125\n"), by whole
        # microseconds under _LISTED_US: filled as they come.
        self._ends: list[str | None] = [None] * _LISTED_US
        self._millis: dict[int, str] = {}  # by whole milliseconds: "0.000"
        self._choose_route()
        wall.when_refreshed(self._new_second)

    def _new_second(self) -> None:
        # The wall clock's log_time has changed: the line before's prefix is
        # not the next line's, whatever its head (see log).
        self._last_head = None

    def log(self, client: Any, head: Any, status: int, body_bytes: int, duration_s: float, request: Any = None) -> None:
        """Log one response: ``client`` the peer's address (a tuple, whose host is logged; anything else
        is logged as ``-``), ``head`` the request's ``RequestHead`` (its method, target, version and
        ``is_head``), ``body_bytes`` the length of the response's body (logged as 0 when none is sent:
        to a HEAD request, in a 204 or a 304: the line before's size is reused without working that out);
        ``request`` (an ``evloop.app.Request`` or None) is for the formats that show its fields or id
        (``FormattedAccessLog``)."""
        direct = self._direct
        if direct is None:
            self._log_through_logger(client, head, status, body_bytes, duration_s)
            return
        # Durations repeat at microsecond resolution: the texts of the short
        # ones (with the line's newline) are remembered in a list, by whole
        # microseconds (floor: an int index, no hash; a duration is never
        # negative, the clock being monotonic); formatting a float cost ~3,000
        # instructions a line, a float key in a dict ~350 more than the index.
        # The list's end is the bound (zero-cost try: 4 opcodes less than
        # comparing with _LISTED_US, ~70 instructions a line).
        us = floor(duration_s * 1e6)
        try:
            end = self._ends[us]
        except IndexError:  # _LISTED_US or more: not remembered
            end = self._duration_end(us)
        if end is None:
            end = self._ends[us] = self._duration_end(us)
        # The line up to its duration is the line before's when nothing in it
        # changed, else joined from remembered parts (_prefix): the same text
        # as format_access_log (measured with load/bench_instructions.py
        # against formatting every line whole: pipelined-log 33,486 -> 29,932,
        # keepalive-log 44,321 -> 40,440 instructions a request).  The prefix
        # and the end go to the handler as two pieces, joined only when
        # written: no line string is made.
        pieces = direct.pieces
        if (head is self._last_head and status == self._last_status and body_bytes == self._last_size
                and (client is self._last_client or type(client) is tuple and client[0] == self._last_host)):
            # The head of the line before (the parser hands out one object for
            # a repeated head) and its connection, or another connection from
            # the same host (the line shows the host only; connections from a
            # proxy or a load generator take turns: load/server_instructions.py
            # keepalive, 50 connections, 43,888 -> 43,394): no key to build and hash,
            # and compared by identity rather than field by field (pipelined
            # requests through the glue with the log on, best of 9 CPU-time
            # runs, three alternating: 2.29-2.42 against 2.24-2.34 us).
            # Its time is the line before's too: a new second forgets the
            # line before's head (_new_second), as the wall clock says when
            # it moves (no time to compare a line: ~180 instructions less).
            pieces.append(self._last_prefix)
        else:
            pieces.append(self._prefix(client, head, status, body_bytes, self._wall.log_time))
        pieces.append(end)
        if len(pieces) >= self._act_at:
            self._lines_waiting(direct)

    def _lines_waiting(self, direct: BufferedAccessHandler | None) -> None:
        """``log``'s slow path (and ``_deliver``'s): a full handler is written; a flush is scheduled if none is.

        The idle flush, or a timer that writes while the last write is nearer
        than ``_IDLE_FLUSH_SPACING_S``; and the once-a-second flush.  Its
        steps are here, not in calls of their own: with _flush_idle's and
        the handler's, 6 calls a flush less.  With the timer's own write (see
        _IDLE_FLUSH_SPACING_S), a keep-alive request and its flush 5 ms after
        the last write cost 96,592 -> 90,170 instructions (valgrind, on a
        manual clock).
        """
        if direct is not None and len(direct.pieces) >= direct.capacity_pieces:
            direct.flush()
        if self._idle_flush is None:
            reactor = self._reactor
            wait = self._last_flush + _IDLE_FLUSH_SPACING_S - reactor.time()
            if wait > 0:
                self._idle_flush = reactor.call_later(wait, self._flush_idle)
            else:
                self._idle_flush = reactor.call_when_idle(self._flush_idle)
            self._act_at = 0 if direct is None else direct.capacity_pieces  # as _set_idle_flush
            if self._flush_timer is None:
                self._flush_timer = reactor.call_later(_FLUSH_INTERVAL_S, self._flush_due)

    def _log_through_logger(self, client: Any, head: Any, status: int, body_bytes: int, duration_s: float) -> None:
        """``log``'s line as a record of the logger's, when the handler does not take it directly."""
        if self._logger.isEnabledFor(logging.INFO):
            prefix = self._prefix(client, head, status, body_bytes, self._wall.log_time)
            self._deliver(prefix + duration_text(duration_s))

    def _duration_end(self, us: int) -> str:
        """The text of a duration of ``us`` whole microseconds, with the line's newline.

        Joined from the text of its whole milliseconds (remembered: far
        fewer values) and a table of three-digit texts.  A response's
        duration is new far more often than its prefix (a pipelined burst's
        requests wait for the ones before: the whole server under valgrind
        missed on most lines); formatting it whole (duration_text) cost
        ~3,000 instructions more than this.  The same text as duration_text.
        """
        ms, micro = divmod(us, 1000)
        millis = self._millis
        text = millis.get(ms)
        if text is None:
            if len(millis) >= _MAX_MILLIS:
                millis.clear()
            seconds, milli = divmod(ms, 1000)
            text = millis[ms] = f"{seconds}.{THREE_DIGITS[milli]}"
        return text + _MICRO_LINE_ENDS[micro]

    def _prefix(self, client: Any, head: Any, status: int, body_bytes: int, when: str) -> str:
        """The line up to its duration, joined from parts, each kept from the line before when it is the same.

        The start by the client's host and second (remembered for the
        second: connections from one host take turns), the request line's
        fields (a browser's target is new on every request: it is escaped
        and never remembered), the status part by status and size (the
        status part first: it reads the method the line before had).  The
        prefix is joined again only when a part changed (a new head object
        for the same request keeps it).  Remembering whole prefixes by all
        six fields, for the second, cost a browser's line more than it saved
        (a key to hash, a dict entry that is never read again: browser-log
        less browser in load/bench_instructions.py --manual-clock 14,163 ->
        10,616 instructions).
        """
        changed = False
        # The same client object (a connection's lines) has the last line's host: only a new second can
        # change the start (~250 instructions a line less, load/bench_instructions.py browser-log).
        if client is not self._last_client or when is not self._last_time:
            host = client[0] if isinstance(client, tuple) else None  # client_host(client), without the call
            if host != self._last_host or when is not self._last_time:
                starts = self._starts
                if when is not self._last_time:
                    starts.clear()
                    self._last_time = when
                start = starts.get(host)
                if start is None:
                    if len(starts) >= _MAX_STARTS:
                        starts.clear()
                    start = starts[host] = line_start(host, when)
                self._last_host, self._last_start = host, start
                changed = True
        # The size logged: the body's length, 0 when none is sent (HEAD, 204,
        # 304); worked out here, where a part changes, not for every line.
        if status != self._last_status or body_bytes != self._last_size or head.method != self._last_method:
            size = 0 if head.is_head or status in BODILESS_STATUSES else body_bytes
            status_parts = self._status_parts
            end = status_parts.get((status, size))
            if end is None:
                if len(status_parts) >= _MAX_STATUS_PARTS:
                    status_parts.clear()
                end = status_parts[status, size] = line_status(status, size)
            self._last_status, self._last_size, self._last_end = status, body_bytes, end
            changed = True
        target = head.target
        if target != self._last_target or head.method != self._last_method or head.version != self._last_version:
            self._last_target, self._last_method, self._last_version = target, head.method, head.version
            # The parser admits a token as the method and HTTP/1.x as the
            # version: only the target can need escaping, and escaping is
            # per character, so the line is the same as in_quotes of it
            # whole.  in_quotes(target), its check without the call: most
            # targets need no escape.
            if not (target.isascii() and target.isprintable()) or '"' in target or "\\" in target:
                target = in_quotes(target)
            self._last_target_text = target
            changed = True
        self._last_client, self._last_head = client, head
        if changed:
            self._last_prefix = (f"{self._last_start}{self._last_method} {self._last_target_text} {self._last_version}"
                                 f"{self._last_end}")
        return self._last_prefix

    def log_unusual(self, client_host: str | None, request_line: str, status: int, size: int, duration_s: float,
                    incomplete: bool, request: Any = None) -> None:
        """Log a request that did not end the ordinary way: refused (``request_line`` as
        far as it was read) or cut short (``incomplete``: the line ends with the word
        ``incomplete``, as nginx's ``$request_completion`` is empty for one)."""
        if self._direct is None and not self._logger.isEnabledFor(logging.INFO):
            return
        prefix = request_log_prefix(client_host, request_line, status, size, self._wall.log_time)
        self._deliver(f"{prefix}{duration_text(duration_s)}{' incomplete' if incomplete else ''}")

    def _deliver(self, line: str) -> None:
        direct = self._direct
        if direct is not None:
            direct.add_line(line)
        else:
            self._logger.info(line)
        if self._idle_flush is None:
            self._lines_waiting(direct)

    def _set_idle_flush(self, handle: Any) -> None:
        self._idle_flush = handle
        direct = self._direct
        self._act_at = 0 if handle is None or direct is None else direct.capacity_pieces

    def _flush_idle(self) -> None:
        # Writes only: the route is chosen again by the once-a-second flush
        # (_flush_due), not on every idle write (~100 Python opcodes a write;
        # measured with _duration_end's change, see there).  _set_idle_flush's
        # steps without its call (see _lines_waiting).
        self._idle_flush = None
        self._act_at = 0
        self._write_waiting()

    def _write_waiting(self) -> None:
        self._last_flush = self._reactor.time()
        for handler in self._handlers:
            handler.flush()

    def flush(self) -> None:
        """Write the waiting lines now, and choose the route again."""
        self._write_waiting()
        self._choose_route()

    def _flush_due(self) -> None:
        # At least once a second even if the loop never goes idle.
        self._flush_timer = None
        self.flush()
        if self._idle_flush is not None:
            # Still not idle: the idle flush stays scheduled (one, not one a
            # second), and this timer keeps the once-a-second bound meanwhile.
            self._flush_timer = self._reactor.call_later(_FLUSH_INTERVAL_S, self._flush_due)

    def close(self) -> None:
        """Flush, stop the timer, and leave the handlers writing each line at once."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._idle_flush is not None:
            self._idle_flush.cancel()
            self._set_idle_flush(None)
        self.flush()
        for handler in self._handlers:
            handler.attached -= 1
        self._handlers = []
        self._direct = None

    def _choose_route(self) -> None:
        # The handler takes the lines directly when it would write each
        # message as it is; else they go through the logger.
        logger = self._logger
        handlers = [h for h in logger.handlers if isinstance(h, BufferedAccessHandler)]
        for handler in handlers:
            if handler not in self._handlers:
                handler.attached += 1
        for handler in self._handlers:
            if handler not in handlers:
                handler.attached -= 1
                handler.flush()
        self._handlers = handlers
        only = logger.handlers[0] if len(logger.handlers) == 1 else None
        plain = (
            isinstance(only, BufferedAccessHandler)
            and only.formats_plainly()
            and only.level <= logging.INFO
            and not logger.filters
            and not logger.propagate
            and logger.isEnabledFor(logging.INFO)
        )
        self._direct = only if plain and isinstance(only, BufferedAccessHandler) else None
        self._set_idle_flush(self._idle_flush)  # the new handler's capacity


class FormattedAccessLog(AccessLog):
    """An access log whose lines follow ``line_format`` (``--access-log-format``, or JSON);
    delivered as ``AccessLog``'s.

    ``line_format`` takes the fields by position, in ``logline._LINE_ARGS``'s
    order; a line costs its atoms (a request's header is looked up only
    when the format shows it, the request id made only when it shows that).
    """

    __slots__ = ("_line",)

    def __init__(self, reactor: Reactor, wall: WallClock, line_format: LineFormat,
                 logger: logging.Logger = access_logger) -> None:
        super().__init__(reactor, wall, logger)
        self._line = line_format

    def log(self, client: Any, head: Any, status: int, body_bytes: int, duration_s: float, request: Any = None) -> None:
        if self._direct is None and not self._logger.isEnabledFor(logging.INFO):
            return
        method, target, version = head.method, head.target, head.version
        size = 0 if head.is_head or status in BODILESS_STATUSES else body_bytes
        self._deliver(self._line(client_host(client), f"{method} {target} {version}", method, target, version,
                                 status, size, duration_s, self._wall.log_time, request))

    def log_unusual(self, client_host: str | None, request_line: str, status: int, size: int, duration_s: float,
                    incomplete: bool, request: Any = None) -> None:
        if self._direct is None and not self._logger.isEnabledFor(logging.INFO):
            return
        method, _, rest = request_line.partition(" ")
        target, _, version = rest.partition(" ")
        # A cut-short response keeps its request's line; the format has no atom saying so.
        self._deliver(self._line(client_host, request_line, method, target, version, status, size, duration_s,
                                 self._wall.log_time, request))


def client_host(client: Any) -> str | None:
    """The host an access line shows for a peer address: a TCP peer's; None (logged ``-``) for anything else."""
    return client[0] if isinstance(client, tuple) else None


def make_access_log(reactor: Reactor, wall: WallClock, config: Any) -> AccessLog | None:
    """The access log a ``ServerConfig`` asks for: None when off; ``ValueError`` for a format that is not one."""
    if not config.access_log:
        return None
    fmt = config.access_log_format
    if fmt is None:
        return AccessLog(reactor, wall)
    return FormattedAccessLog(reactor, wall, JSONAccessLine() if fmt == "json" else compile_access_format(fmt))
