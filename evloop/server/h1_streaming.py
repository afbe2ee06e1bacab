"""Response bodies that go out as the peer takes them, a part of ``HTTPProtocol`` (``h1.py``).

A file (``FileBody``) goes with the transport's ``sendfile``; an iterable
is pulled in batches while the transport is below its high water mark, so
a connection holds at most that mark plus one batch whatever the body's
size.  ``h1.py`` frames the head (``_send_body``) and hands the body here;
a body that fails part way is ended by ``h1_faults.py`` (an abort, since
its head is out).  ``HTTPProtocol`` inherits these methods.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING, Any

from ..exits import is_stop_request
from .outcomes import close_quietly
from .phases import STREAMING

if TYPE_CHECKING:
    from ..app import FileBody, Response
    from ..http import RequestHead, ServerConnection
    from ..net.base import Transport
    from .phases import Phase, PhaseEvent

__all__ = ["ResponseStreaming", "SMALL_FILE_BYTES", "small_file_bytes"]

logger = logging.getLogger("evloop.server")

_STREAM_BATCH_BYTES = 256 * 1024  # body bytes pulled from a streamed response per write

# A file body up to this long is read and sent with its head (see small_file_bytes).
SMALL_FILE_BYTES = 16 * 1024


def small_file_bytes(body: FileBody) -> FileBody | bytes:
    """A small file body's bytes, read now (and the body closed), or ``body`` itself to go by ``sendfile``.

    A file of at most ``SMALL_FILE_BYTES`` (a stylesheet, a script, an
    icon) costs the same two system calls either way (``pread`` and one
    ``write`` of head and body, or the head's ``write`` and ``sendfile``),
    but as bytes it takes the server's path for a complete response, not the
    transport's file queue and its completion callback: a 2 KiB static file's
    whole request 155,616 -> 95,634 instructions (load/server_instructions.py
    static-small), and one copy of 16 KiB costs a few thousand.  The caller
    asks only for a body that is sent (not for HEAD, 204, 304).  A file
    ``pread`` cannot read (a pipe) and one shorter than promised are left to
    the ``sendfile`` path, which sends or reports them as it always has.
    """
    try:
        data = os.pread(body.file.fileno(), body.count, body.offset)
    except (OSError, ValueError, AttributeError):  # no descriptor, or one pread cannot read
        return body
    if len(data) != body.count:
        return body
    close_quietly(body)
    return data


class ResponseStreaming:
    """``HTTPProtocol``'s methods for a response body sent as the peer takes it (see the module docstring)."""

    # No state of its own: what these methods use lives in HTTPProtocol's
    # slots (declared below for the type checker).  Hidden from mypy, which
    # would otherwise want every name set here among this class's slots.
    if not TYPE_CHECKING:
        __slots__ = ()

    # HTTPProtocol's state and methods, which these use.
    transport: Transport | None
    conn: ServerConnection
    phase: Phase
    head: RequestHead | None
    _write_paused: bool
    _out: list[bytes]
    _body_bytes: int
    _response: Response | None
    _stream: Any

    if TYPE_CHECKING:
        def _to(self, event: PhaseEvent) -> None: ...
        def _finish(self) -> None: ...
        def _abort_response(self, why: str) -> None: ...
        def _response_refused(self, exc: Exception) -> None: ...
        def _response_done(self) -> None: ...
        def _process(self) -> None: ...

    def _send_file(self, body: FileBody) -> None:
        transport = self.transport
        assert transport is not None
        self._to("sending_file")
        self._finish()  # the head goes before the file region

        def on_done(exc: BaseException | None) -> None:
            if exc is not None or self.transport is None:
                return  # the transport failed or was closed: connection_lost ends the response
            self.conn.file_data_sent(body.count)
            self._body_bytes = body.count
            self._out.append(self.conn.send_end())
            self._response_done()
            if self.phase.reads and self.transport is not None:
                self._process()
            else:
                self._finish()

        transport.sendfile(body.file, body.offset, body.count, on_done)

    def _pump_stream(self) -> None:
        """Pull body chunks while the transport is below its high water mark.

        Chunks go out in batches of up to ``_STREAM_BATCH_BYTES`` with one
        ``writelines`` (one ``sendmsg``): a 1 MiB body in 64 KiB chunks takes
        4 system calls instead of 16, and a stream of small chunks is not a
        system call each.  A connection holds at most its high water mark
        plus one batch.  The bytes already in ``_out`` (the response head)
        go with the first batch.
        """
        conn = self.conn
        while self._stream is not None and not self._write_paused:
            transport = self.transport
            if transport is None or transport.is_closing():
                # The peer went away (a reset closes the transport at once):
                # stop pulling, or one client could hold the loop for the
                # whole body.
                self._abort_response("the client went away")
                return
            batch, self._out = self._out, []
            size = 0
            try:
                while size < _STREAM_BATCH_BYTES:
                    chunk = next(self._stream)
                    if chunk:
                        batch.append(conn.send_data(chunk))
                        size += len(chunk)
            except StopIteration:
                self._stream = None
                self._body_bytes += size
                declared = self._response.content_length if self._response is not None else None
                if declared is not None and self._body_bytes < declared:
                    # Shorter than its Content-Length: send_end would only close
                    # the connection, quietly, and the access log would count the
                    # response whole.  The framing cannot be kept: an abort.
                    transport.writelines(batch)
                    self._response_refused(ValueError(
                        f"the body ended {declared - self._body_bytes} bytes short of its Content-Length {declared}"))
                    return
                batch.append(conn.send_end())  # the last chunk, when chunked, in the same system call
                self._out = batch
                self._response_done()
                return
            except BaseException as exc:
                if is_stop_request(exc):
                    raise
                transport.writelines(batch)  # the chunks before the failure were good
                self._body_bytes += size  # and count: the log says how far the body went
                head = self.head
                logger.exception("response body of %s %s failed", head.method if head else "?",
                                 head.target if head else "?")
                self._abort_response("the body's iterator raised")
                return
            self._body_bytes += size
            transport.writelines(batch)
        if self._stream is not None and self.phase is STREAMING:
            self._to("writes_backed_up")  # the send timeout counts from this level

    def _end_response(self) -> None:
        """Release the response in flight: closes its file or calls its iterable's close(), once."""
        response, self._response = self._response, None
        self._stream = None
        if response is not None:
            close_quietly(response)
