"""Request bodies that do not stay in memory: spooled to a file, or handed to a streamed-body route.

Theory of operation.  ``HTTPProtocol`` (``h1.py``) keeps a short body in
memory, as it always did, up to its ``_memory_room`` (``body_spool_bytes``).
Where a body goes otherwise is its *sink*, held in the protocol's ``_sink``
from the moment it is chosen until the request ends (its response is done,
or the connection is lost or upgraded).  With a sink the room is 0, so each
part the protocol adds overflows at once: ``body_overflowed`` passes it to
the sink's ``write(data)``.  The protocol calls the sink's ``end()`` at the
end of the body and ``close()`` when the request ends, on every path.  The
ordinary path pays one length test per part for all this.

``SpooledBody``: a body that passes ``ServerConfig.body_spool_bytes`` (1 MiB)
moves to an unnamed temporary file (``tempfile.TemporaryFile`` in
``tmp_dir``: ``O_TMPFILE`` on Linux, so no name is ever visible and nothing
is left behind even by a killed process) and the rest is written there as
it arrives.  The request gets the file as ``request.stream`` (and WSGI as
``wsgi.input``); ``close()`` closes, and so deletes, it.  Writes are
ordinary blocking writes on the loop's thread: they go to the page cache,
as nginx's ``client_body_temp_path`` writes do.

``StreamedBody``: the route (``App.stream_request_body``) answered the head
with a ``ReceiveBody``; each part goes to its ``BodyReceiver`` at once,
``pause()`` stops reading, ``end()`` asks it for the response.

A sink that fails (a full disk, a receiver that raised) answers 500 with
``Connection: close`` through the protocol's error path.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ..app import Request, SpooledRequest
from ..exits import is_stop_request
from ..streamed_body import BodyReceiver
from .outcomes import internal_error

if TYPE_CHECKING:
    from ..app import Response
    from .h1 import HTTPProtocol

__all__ = ["SpooledBody", "StreamedBody", "body_overflowed", "stream_body"]

logger = logging.getLogger("evloop.server")


def body_overflowed(protocol: HTTPProtocol, held: bytes | bytearray) -> None:
    """The body the protocol holds passed its memory room: ``held`` goes to the sink, which is made if need be.

    The first time for a body, that is a temporary file (a 500 if none can be
    made); from then on, and for a streamed-body route, the room is 0 and
    each part comes here as it is read.
    """
    protocol.body = b""
    sink = protocol._sink
    if sink is None:
        try:
            sink = SpooledBody(protocol, protocol.ctx.config.tmp_dir)
        except OSError as exc:
            _store_failed(protocol, exc)
            return
        protocol._sink = sink
        protocol._memory_room = 0
    sink.write(held)


def _store_failed(protocol: HTTPProtocol, exc: OSError) -> None:
    import tempfile

    head: Any = protocol.head
    logger.error("request body of %s %s could not be written to a temporary file (tmp dir %s): %s",
                 head.method, head.target, protocol.ctx.config.tmp_dir or tempfile.gettempdir(), exc)
    protocol._send_error(500, "the request body could not be stored")


class SpooledBody:
    """A request body in an unnamed temporary file (see the module docstring)."""

    __slots__ = ("protocol", "file", "failed")

    def __init__(self, protocol: HTTPProtocol, tmp_dir: str | None) -> None:
        # Imported by the first body spooled: tempfile brings in nine modules
        # a server that never spools has no use for.
        import tempfile

        self.protocol = protocol
        self.file = tempfile.TemporaryFile(dir=tmp_dir)  # noqa: SIM115 (closed by close(), on every path)
        self.failed = False

    def write(self, data: bytes | bytearray) -> None:
        if self.failed:
            return
        try:
            self.file.write(data)
        except OSError as exc:  # ENOSPC, EFBIG, EIO
            self.failed = True
            _store_failed(self.protocol, exc)

    def end(self) -> bool:
        """The whole body is in the file: False, and the protocol runs the request over it (True: it failed, 500).

        The request is the server's spare one (``_process`` renews it),
        made a ``SpooledRequest`` over the file: the ordinary path stays as
        it is.  It turns back into a plain ``Request`` when the file is
        closed (``close``), so the server may reuse it for the next one.
        """
        protocol = self.protocol
        try:
            self.file.flush()
            self.file.seek(0)
        except OSError as exc:
            _store_failed(protocol, exc)
            return True
        shared = protocol.ctx.h1
        request = shared.spare_request
        if request is None:
            transport: Any = protocol.transport
            # The connection's fields; _process renews the request's own.
            request = Request("GET", "/", "HTTP/1.1", (), b"", None, transport.sockname, "http", protocol.reactor,
                              protocol._responder, ("/", "/", ""), protocol.tls)
        SpooledRequest.spool(request, self.file)
        shared.spare_request = request
        return False

    def close(self, why: str) -> None:
        """The request ended (``why``): close (and so delete) the file."""
        try:
            self.file.close()
        except OSError:
            # A write that failed (a full disk) can leave bytes in the file's
            # buffer: close flushes them, fails again and raises, though the
            # descriptor is closed all the same.  The failure was logged when
            # the write failed, and the 500 for it is still to be sent.
            pass
        request = self.protocol.request  # still set: the protocol releases the body before it lets go
        if type(request) is SpooledRequest and request._stream is self.file:
            request.unspool()


def stream_body(protocol: HTTPProtocol, receiver: BodyReceiver) -> None:
    """The route answered the head with ``ReceiveBody(receiver)``: the body goes to ``receiver`` from now on."""
    request: Any = protocol.request
    request._responded = False  # ReceiveBody was not the response: that comes from the receiver
    sink = StreamedBody(protocol, request, receiver)
    protocol._sink = sink
    protocol._memory_room = 0  # every part goes to the receiver as it is read
    request._responder = sink.respond
    receiver._flow = sink
    protocol._to("read_body")
    sink.call("body_started")


class StreamedBody:
    """Drives a ``BodyReceiver``: parts, pauses, the end, an early answer; see ``evloop.streamed_body``."""

    __slots__ = ("protocol", "request", "receiver", "paused", "pending", "delivering", "ended", "over")

    def __init__(self, protocol: HTTPProtocol, request: Request, receiver: BodyReceiver) -> None:
        self.protocol = protocol
        self.request = request
        self.receiver = receiver
        self.paused = False
        self.pending: list[bytes] = []  # parts read before a pause took effect, delivered by resume()
        self.delivering = False  # inside a call to the receiver from the protocol's loop
        self.ended = False  # the body's end was read (delivered once pending is)
        self.over = False  # body_received or body_failed has been called

    def call(self, method: str, *args: Any) -> bool:
        """Call the receiver's ``method``; False (and a 500, or an abort) if it raised."""
        self.delivering = True
        try:
            getattr(self.receiver, method)(*args)
            return True
        except BaseException as exc:
            if is_stop_request(exc):
                raise
            request = self.request
            logger.exception("%s() of the body receiver for %s %s failed", method, request.method, request.target)
            self._fail(f"{method}() raised")
            if not request._responded:
                self.protocol._send_error(500, "the handler failed")
            return False
        finally:
            self.delivering = False

    def write(self, data: bytes | bytearray) -> None:
        if type(data) is not bytes:
            data = bytes(data)  # the receiver's contract: bytes (the protocol holds none before the route)
        if self.over:
            return  # answered early or failed: the rest is not for anyone
        if self.paused or self.pending:
            self.pending.append(data)
            self.protocol._pause_reading()  # again: resume_writing may have resumed it
            return
        self.call("data_received", data)

    def end(self) -> bool:
        """The last part was read: the receiver's answer, once what waits is delivered.  True: the protocol
        does not run the request (the route ran at its head)."""
        self.ended = True
        if not (self.paused or self.pending or self.over):
            self._deliver_end()
        return True

    def _deliver_end(self) -> None:
        protocol = self.protocol
        protocol._to("request")  # BODY -> IN_APP, as for any complete request
        self.over = True
        self.delivering = True
        try:
            response = self.receiver.body_received()
        except BaseException as exc:
            if is_stop_request(exc):
                raise
            request = self.request
            logger.exception("body_received() of the body receiver for %s %s failed", request.method, request.target)
            response = None if request._responded else internal_error()
        finally:
            self.delivering = False
        if response is not None:
            self.respond(response)
        elif not self.request._responded:
            protocol._to("deferred")

    def pause(self) -> None:
        if not self.paused and not self.over:
            self.paused = True
            self.protocol._pause_reading()

    def resume(self) -> None:
        if not self.paused:
            return
        self.paused = False
        if self.delivering:
            return  # the protocol's loop goes on delivering
        while self.pending and not self.paused and not self.over:
            if not self.call("data_received", self.pending.pop(0)):
                self.pending.clear()
        protocol = self.protocol
        if self.ended and not self.paused and not self.over:
            self._deliver_end()
        elif not self.paused and not self.over:
            protocol._resume_reading()
        if protocol.phase.reads and protocol.transport is not None:
            protocol._process()  # what the parser holds (the next request, after an answer); writes
        else:
            protocol._finish()

    def respond(self, response: Response) -> None:
        """The request's responder: an answer after the end goes out as any; before it, the body is left unread."""
        protocol = self.protocol
        if self.over and self.ended:
            protocol._respond_later(response)
            return
        if protocol.transport is None or self.over:
            response.close()
            return
        # Before the end: the sans-I/O connection closes after a response
        # that starts while the body is unread (RFC 9112 9.6: the rest cannot
        # be told from a next request).
        self._fail("the handler answered before the end of the body")
        protocol._to("request")
        protocol._respond_later(response)
        if not self.delivering:
            protocol._finish()

    def _fail(self, reason: str) -> None:
        self.pending.clear()
        if not self.over:
            self.over = True
            try:
                self.receiver.body_failed(reason)
            except Exception:
                logger.exception("body_failed() of the body receiver for %s %s failed", self.request.method,
                                 self.request.target)

    def close(self, why: str) -> None:
        """The request ended (``why``): a receiver still waiting for its body is told it will not come."""
        if not self.over:
            self._fail(why)
            if not self.request._responded:
                self.request.abandon()  # a late respond() is dropped quietly
        self.receiver._flow = None
