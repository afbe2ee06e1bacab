"""TLS transports: ``ssl.SSLObject`` over two ``MemoryBIO``, layered on a ``SocketTransport``.

Contexts, the per-listener acceptor, ``start_tls``'s ``upgrade`` and ``TLSInfo`` are in ``tls_context.py``.

Theory of operation.  A ``TLSTransport`` sits between a ``SocketTransport``
(ciphertext) and the application's protocol (plaintext), as CPython's
``asyncio/sslproto.py`` does.  To the socket transport beneath it is the
protocol; to the application it is a transport with the same calls as over
TCP.  Bytes read from the socket go into the incoming BIO; ``SSLObject``
turns them into handshake progress or plaintext; whatever OpenSSL wants to
send (handshake messages, alerts, close_notify, records) is taken from the
outgoing BIO and written to the socket transport, whose send queue, water
marks, ``close(timeout_s)`` and ``abort`` do the rest.

Why a MemoryBIO and not a non-blocking ``SSLSocket``: measured with
``load/bench_tls_mechanism.py`` (OpenSSL 3.0, Python 3.11, best of 5, server
CPU), the two cost the same within noise (MemoryBIO/SSLSocket 0.98x for
20,000 small exchanges, 0.98x for a 256 MiB download, 1.11x for a 128 MiB
upload), because OpenSSL does the work in both.  Without read-ahead (which
Python cannot turn on) an ``SSLSocket`` makes two ``recv`` calls per record
(header, then body) where the BIO takes whatever the kernel has in one; the
BIO keeps the socket a plain socket, so ``start_tls`` upgrades it in place,
the first bytes can be looked at before OpenSSL sees them (a plain HTTP
request to a TLS port), and alerts and close_notify are bytes in the same
send queue as everything else, sent without blocking.

The traps this module is written around (each has a test in tests/tls/):

- Plaintext OpenSSL has decrypted does not wake the selector: after every
  read ``SSLObject.read`` is called until the BIO holds no whole record.
- Never encrypt a whole large response up front: plaintext waits in its own
  queue and is encrypted ``_ENCRYPT_CHUNK`` at a time, only while the socket
  transport's buffer is below its high water mark, so a client that never
  reads costs about one water mark of ciphertext, not the body twice.
- Errors send their alert (whatever OpenSSL left in the outgoing BIO is
  flushed before closing); ``close()`` sends close_notify and closes at once,
  without waiting for the peer's; a peer's close_notify is
  ``eof_received()``, a TCP EOF without it is ``connection_lost`` with an
  ``ssl.SSLEOFError`` (a truncation attack looks exactly like that).
- The handshake has its own deadline; the context is the listener's, never
  one per connection (session resumption needs the same context).
"""

from __future__ import annotations

import enum
import logging
import ssl
from collections.abc import Iterable, Sequence
from typing import Any

from ..buffers import FileRegion, SendQueue, byte_view
from ..futures import Future
from ..reactor import Reactor
from .base import DEFAULT_HIGH_WATER, Protocol, Transport, check_close_timeout, read_file_block
from .tcp import SocketTransport

__all__ = ["TLSTransport", "TLSOrigin", "TLSPhase", "DEFAULT_HANDSHAKE_TIMEOUT_S"]

logger = logging.getLogger("evloop")

DEFAULT_HANDSHAKE_TIMEOUT_S = 60.0  # asyncio's ssl_handshake_timeout
_ENCRYPT_CHUNK = 64 * 1024          # plaintext per SSLObject.write (four full records)
_FILE_BLOCK = 256 * 1024            # sendfile under TLS: read-and-encrypt blocks
_DIRECT_BATCH = 256 * 1024          # writelines encrypts a batch up to this (plus a chunk) without queueing it ...
_DIRECT_MAX_CHUNKS = 16             # ... of at most this many chunks (each small one is a record of its own)
_HOLD_MAX = 16 * 1024               # _seal: small chunks up to this much wait in the BIO for the next one
_TLS_HANDSHAKE_RECORD = 0x16        # the first byte of every ClientHello (RFC 8446 section 5.1)
_ALERT_FLUSH_S = 5.0                # a failed handshake: how long its alert may take to leave


class TLSPhase(enum.Enum):
    HANDSHAKING = "handshaking"   # bytes go to do_handshake(); the protocol has not been told yet
    OPEN = "open"                 # records in both directions
    CLOSING = "closing"           # close() called: queued plaintext is sent, then close_notify
    REFUSING = "refusing"         # not TLS at all: a plaintext reply was sent, the rest is drained
    CLOSED = "closed"             # the socket transport is closing or gone


class TLSOrigin(enum.Enum):
    """How the connection came: what the protocol hears on success and on failure of the handshake."""

    ACCEPTED = "accepted"   # listen(ssl=): connection_made after the handshake; a failure is only logged
    CONNECTED = "connected"  # connect(ssl=): connection_made and the future; a failure is connection_failed
    UPGRADED = "upgraded"   # start_tls(): the future only; a failure is connection_lost


class TLSTransport(Transport, Protocol):
    """A TLS connection over a ``SocketTransport``; the protocol sees the same calls as over TCP.

    Built by ``listen(ssl=)``, ``connect(ssl=)`` and ``SocketTransport.start_tls()``,
    not directly.  ``get_extra_info`` adds ``ssl_object``, ``peercert``,
    ``peercert_binary``, ``cipher``, ``alpn_protocol``, ``tls_version``,
    ``server_hostname`` and ``sslcontext`` to the socket transport's names.
    ``write_eof()`` sends close_notify and keeps reading; TLS 1.2 and below
    cannot half-close (close_notify ends both directions there), so it
    raises ``NotImplementedError`` unless TLS 1.3 was negotiated.
    """

    __slots__ = (
        "_inner", "_context", "_obj", "_incoming", "_outgoing", "_plain", "_phase", "_origin", "_server_side",
        "_server_hostname", "_waiter", "_timer", "_handshake_timeout_s", "_plaintext_reply", "_cipher_paused",
        "_reading_paused", "_eof_pending", "_eof_written", "_close_notify_received", "_close_notify_sent",
        "_announced", "_lost_exc", "_first_bytes_seen", "_handshake_s",
    )

    def __init__(
        self,
        reactor: Reactor,
        protocol: Protocol,
        context: ssl.SSLContext,
        *,
        origin: TLSOrigin,
        server_side: bool,
        server_hostname: str | None = None,
        handshake_timeout_s: float = DEFAULT_HANDSHAKE_TIMEOUT_S,
        plaintext_reply: bytes | None = None,
        waiter: Future[Any] | None = None,
        high_water: int = DEFAULT_HIGH_WATER,
        low_water: int | None = None,
    ) -> None:
        self._reactor = reactor
        self._protocol = protocol
        self._context = context
        self._origin = origin
        self._server_side = server_side
        self._server_hostname = server_hostname
        self._handshake_timeout_s = handshake_timeout_s
        self._plaintext_reply = plaintext_reply
        self._waiter = waiter
        self._high_water = high_water
        self._low_water = high_water // 4 if low_water is None else low_water
        self._closing = False
        self._protocol_paused = False
        self._inner: SocketTransport | None = None
        self._obj: ssl.SSLObject | None = None
        self._incoming = ssl.MemoryBIO()
        self._outgoing = ssl.MemoryBIO()
        self._plain = SendQueue()      # plaintext waiting to be encrypted
        self._phase = TLSPhase.HANDSHAKING
        self._timer: Any = None        # the handshake's deadline
        self._close_timer: Any = None  # close(timeout_s)
        self._cipher_paused = False    # the socket transport's buffer is over its high water mark
        self._reading_paused = False   # by the protocol
        self._eof_pending = False      # write_eof() waits for the plaintext queue
        self._eof_written = False
        self._close_notify_received = False
        self._close_notify_sent = False
        self._announced = origin is TLSOrigin.UPGRADED  # the protocol knows of the connection
        self._lost_exc: BaseException | None = None
        self._first_bytes_seen = False
        self._handshake_s = 0.0  # the reactor's time at the start, then how long the handshake took
        self.peername: Any = None
        self.sockname: Any = None
        if waiter is not None:
            self.set_waiter(waiter)

    # ======================================================== the socket side
    # To the SocketTransport beneath, this object is the protocol.

    def connection_made(self, transport: Transport) -> None:
        assert isinstance(transport, SocketTransport)
        self._inner = transport
        self.peername, self.sockname = transport.peername, transport.sockname
        transport.set_write_buffer_limits(self._high_water, self._low_water)
        self._obj = self._context.wrap_bio(self._incoming, self._outgoing, server_side=self._server_side,
                                           server_hostname=self._server_hostname)
        self._timer = self._reactor.call_later(self._handshake_timeout_s, self._handshake_timed_out)
        self._handshake_s = self._reactor.time()
        if not self._server_side:
            self._handshake_step()  # the ClientHello

    def data_received(self, data: bytes) -> None:
        phase = self._phase
        if phase is TLSPhase.OPEN:
            self._incoming.write(data)
            self._read_records()
        elif phase is TLSPhase.HANDSHAKING:
            if not self._first_bytes_seen:
                self._first_bytes_seen = True
                if self._plaintext_reply is not None and data[0] != _TLS_HANDSHAKE_RECORD:
                    self._refuse_plaintext(data)
                    return
            self._incoming.write(data)
            self._handshake_step()
        # CLOSING, REFUSING, CLOSED: nothing more is read (a lingering drain)

    def eof_received(self) -> bool | None:
        phase = self._phase
        if phase is TLSPhase.HANDSHAKING:
            self._handshake_failed(ConnectionResetError("the peer closed the connection during the TLS handshake"))
            return False
        if phase is TLSPhase.OPEN and not self._close_notify_received:
            # A TCP EOF with no close_notify: the stream may have been cut short.
            self._lost_exc = ssl.SSLEOFError(ssl.SSL_ERROR_EOF, "EOF without close_notify: the stream was cut short")
            return False
        # After the peer's close_notify its FIN is expected; while the protocol
        # keeps its side open (a TLS 1.3 half-close) the socket stays open too.
        return phase is TLSPhase.OPEN

    def connection_lost(self, exc: BaseException | None) -> None:
        self._cancel_timer()
        if self._close_timer is not None:
            self._close_timer.cancel()
            self._close_timer = None
        if self._phase is TLSPhase.HANDSHAKING:
            self._handshake_failed(exc or ConnectionResetError("connection lost during the TLS handshake"))
        self._phase = TLSPhase.CLOSED
        lost = self._lost_exc or exc
        self._lost_exc = None  # its traceback's frames hold this transport: kept, a cycle (as in SocketTransport)
        self._plain.clear(lost if lost is not None else ConnectionAbortedError("transport aborted"))
        if self._announced:
            self._announced = False
            try:
                self._protocol.connection_lost(lost)
            finally:
                self._protocol = None  # type: ignore[assignment]  # break the cycle

    def connection_failed(self, exc: BaseException) -> None:
        """``connect(ssl=)`` could not open the TCP connection: the protocol hears it as it would over TCP."""
        self._protocol.connection_failed(exc)

    def pause_writing(self) -> None:
        self._cipher_paused = True

    def resume_writing(self) -> None:
        self._cipher_paused = False
        self._encrypt_queued()

    # ============================================================ handshake
    def _handshake_step(self) -> None:
        obj = self._obj
        assert obj is not None
        try:
            obj.do_handshake()
        except ssl.SSLWantReadError:
            self._flush_outgoing()
            return
        except (ssl.SSLError, ssl.CertificateError) as exc:
            self._flush_outgoing()  # the alert that says why
            self._handshake_failed(exc)
            return
        self._flush_outgoing()
        self._handshake_done()

    def _handshake_done(self) -> None:
        self._cancel_timer()
        self._phase = TLSPhase.OPEN
        self._handshake_s = self._reactor.time() - self._handshake_s
        waiter = self._waiter
        self._waiter = None
        if waiter is not None and waiter.cancelled():
            self._abandon()  # connect() was cancelled meanwhile: no callback follows
            return
        if not self._announced:
            self._announced = True
            try:
                self._protocol.connection_made(self)
            except Exception as exc:
                self._protocol_failed(exc, "connection_made")
                if waiter is not None:
                    waiter.set_exception(exc)
                return
        if waiter is not None:
            waiter.set_result(self)
        if self._phase is TLSPhase.OPEN and (self._incoming.pending or self._obj.pending()):  # type: ignore[union-attr]
            self._read_records()  # application data that came with the handshake's last flight
        self._encrypt_queued()

    def _handshake_failed(self, exc: BaseException) -> None:
        if self._phase is not TLSPhase.HANDSHAKING:
            return
        self._cancel_timer()
        self._phase = TLSPhase.CLOSED
        inner = self._inner
        waiter = self._waiter
        self._waiter = None
        origin = self._origin
        if origin is TLSOrigin.ACCEPTED:
            # Scanners, plain HTTP clients, clients that gave up: an ordinary
            # event on a server facing the internet, not an error to trace.
            level = logging.INFO if isinstance(exc, ssl.SSLError | ssl.CertificateError) else logging.DEBUG
            logger.log(level, "TLS handshake with %s failed: %s", _peer(self.peername), exc)
        elif origin is TLSOrigin.UPGRADED:
            self._lost_exc = exc  # connection_lost(exc) follows when the socket closes
        if waiter is not None and not waiter.cancelled():
            waiter.set_exception(exc)
        if origin is TLSOrigin.CONNECTED and not (waiter is not None and waiter.cancelled()):
            try:
                self._protocol.connection_failed(exc)
            except Exception as error:
                self._report(error, "protocol.connection_failed() failed")
        if inner is not None and not inner.is_closing():
            if isinstance(exc, TimeoutError | ConnectionError):
                inner.abort()
            else:
                inner.close(timeout_s=_ALERT_FLUSH_S)

    def _handshake_timed_out(self) -> None:
        self._timer = None
        if self._phase is TLSPhase.REFUSING:
            if self._inner is not None:
                self._inner.abort()
            return
        self._handshake_failed(TimeoutError(f"TLS handshake not done within {self._handshake_timeout_s} s"))

    def _refuse_plaintext(self, data: bytes) -> None:
        """Not a TLS record: answer ``plaintext_reply`` in the clear, drain, close (bounded by the deadline)."""
        self._phase = TLSPhase.REFUSING
        inner = self._inner
        assert inner is not None and self._plaintext_reply is not None
        logger.info("plaintext on a TLS port from %s: %r", _peer(self.peername), bytes(data[:40]))
        inner.write(self._plaintext_reply)
        inner.write_eof()  # the client reads the reply and closes; its EOF ends the drain

    def set_waiter(self, waiter: Future[Any]) -> None:
        """The future that gets this transport after the handshake, or the exception that ended it."""
        self._waiter = waiter
        waiter.add_done_callback(self._waiter_done)

    def _waiter_done(self, waiter: Future[Any]) -> None:
        if waiter.cancelled() and self._phase is TLSPhase.HANDSHAKING:
            # connect() or start_tls() given up: no callback follows (asyncio closes the transport too).
            self._waiter = None
            self._cancel_timer()
            self._phase = TLSPhase.CLOSED
            self._abandon()

    def _abandon(self) -> None:
        self._announced = False
        if self._inner is not None:
            self._inner.abort()

    def _cancel_timer(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    # ============================================================== reading
    def _read_records(self) -> None:
        """Decrypt every whole record the incoming BIO holds and deliver it in one ``data_received``."""
        obj = self._obj
        assert obj is not None
        incoming = self._incoming
        # Plaintext is decrypted into the reactor's read buffer and only what was read is
        # copied out, as SocketTransport reads.  SSLObject.read(n) without a buffer
        # allocates n bytes and shrinks them; for n = 256 KiB that is an mmap and a munmap
        # until glibc raises its mmap threshold: a small request's read cost 17 us that
        # way in a fresh process, 1.4 us after, and 1.3 us into the buffer (tls-hello in
        # the benchmark, whose servers had adapted: 1.00x; load/BENCHMARKS.md).
        buffer = self._reactor.read_buffer
        capacity = len(buffer)
        chunks: list[bytes] = []
        filled = 0
        closed = False
        try:
            while True:
                if filled == capacity:
                    chunks.append(buffer.tobytes())
                    filled = 0
                n: int = obj.read(capacity - filled, buffer[filled:])  # type: ignore[assignment]  # a count
                if not n:
                    closed = True  # close_notify
                    break
                filled += n
                if not incoming.pending and not obj.pending():
                    break
        except ssl.SSLWantReadError:
            pass  # a partial record: the rest comes with the next read
        except ssl.SSLZeroReturnError:
            closed = True
        except ssl.SSLError as exc:
            self._flush_outgoing()
            self._fail(exc)
            return
        if filled:
            chunks.append(buffer[:filled].tobytes())
        if self._outgoing.pending:
            self._flush_outgoing()  # post-handshake messages: session tickets, key updates
        if chunks:
            try:
                self._protocol.data_received(chunks[0] if len(chunks) == 1 else b"".join(chunks))
            except Exception as exc:
                self._protocol_failed(exc, "data_received")
                return
        if closed and self._phase is TLSPhase.OPEN and not self._close_notify_received:
            self._close_notify_received = True
            self._deliver_eof()

    def pause_reading(self) -> None:
        """Stop calling ``data_received`` until ``resume_reading()``."""
        if not self._reading_paused:
            self._reading_paused = True
            if self._inner is not None:
                self._inner.pause_reading()

    def resume_reading(self) -> None:
        if self._reading_paused:
            self._reading_paused = False
            if self._inner is not None and not self._closing and not self._close_notify_received:
                self._inner.resume_reading()

    def is_reading(self) -> bool:
        return not self._reading_paused and not self._closing and self._inner is not None and self._inner.is_reading()

    # ============================================================== writing
    def write(self, data: bytes | bytearray | memoryview) -> None:
        """Send ``data``: encrypted now while the socket keeps up, else queued as plaintext."""
        if not self._accepts_writes():
            return
        data = data if type(data) is bytes else byte_view(data)
        if not data:
            return
        if self._plain or self._cipher_paused or self._phase is not TLSPhase.OPEN or len(data) > _ENCRYPT_CHUNK:
            self._plain.append(data)
            self._encrypt_queued()
        else:
            self._obj.write(data)  # type: ignore[union-attr]
            self._flush_outgoing()
        self._maybe_pause_protocol()

    def writelines(self, chunks: Iterable[bytes | bytearray | memoryview]) -> None:
        """Write several chunks in order.

        Up to ``_ENCRYPT_CHUNK`` in all they are joined, so small ones share
        records.  A larger batch (a streamed body: the server writes 256 KiB
        of 64 KiB chunks at a time) is encrypted chunk by chunk, without the
        join's copy (``_seal``).  When nothing waits, a batch of at most
        ``_DIRECT_MAX_CHUNKS`` chunks and about ``_DIRECT_BATCH`` bytes is
        encrypted as the socket takes it without passing through the
        plaintext queue (what the socket does not take waits there).  Any
        other batch goes through the queue, where small chunks coalesce.
        """
        chunks = chunks if isinstance(chunks, list) else list(chunks)
        total = sum(map(len, chunks))
        if total <= _ENCRYPT_CHUNK:
            self.write(b"".join(chunks))
            return
        if not self._accepts_writes():
            return
        if (self._plain or self._cipher_paused or self._phase is not TLSPhase.OPEN
                or len(chunks) > _DIRECT_MAX_CHUNKS or total > _DIRECT_BATCH + _ENCRYPT_CHUNK):
            plain = self._plain
            for chunk in chunks:
                plain.append(chunk if type(chunk) is bytes else byte_view(chunk))
            self._encrypt_queued()
        else:
            done = self._seal(chunks)
            plain = self._plain
            for chunk in chunks[done:]:  # the socket stopped taking them: they wait as plaintext
                plain.append(chunk if type(chunk) is bytes else byte_view(chunk))
        self._maybe_pause_protocol()

    def _accepts_writes(self) -> bool:
        """False once closing (writes are dropped, as over TCP); raises after ``write_eof()``."""
        if self._closing:
            return False
        if self._write_ended():
            raise RuntimeError("cannot write after write_eof()")
        return True

    def _write_ended(self) -> bool:
        return self._eof_pending or self._eof_written

    def _queue_file(self, region: FileRegion) -> None:
        self._plain.append_file(region)
        self._encrypt_queued()

    def _encrypt_queued(self) -> None:
        """Encrypt queued plaintext while the socket transport is below its high water mark."""
        if self._phase is not TLSPhase.OPEN and self._phase is not TLSPhase.CLOSING:
            return
        plain = self._plain
        inner = self._inner
        if inner is None:
            return
        try:
            while plain and not self._cipher_paused and not inner.is_closing():
                data = plain.take(_ENCRYPT_CHUNK)
                if data is None:  # a file region is next
                    region = plain.head_file()
                    assert region is not None
                    data = read_file_block(region, _FILE_BLOCK)
                    plain.file_progress(region, len(data))
                self._seal((data,))
        except (OSError, EOFError) as exc:  # a file that could not be read, or ended early
            self._fail(exc)
            return
        if not plain:
            if self._phase is TLSPhase.CLOSING:
                self._finish_close()
                return
            if self._eof_pending:
                self._eof_pending = False
                self._send_close_notify()
        self._maybe_resume_protocol()

    def _seal(self, chunks: Sequence[bytes | bytearray | memoryview]) -> int:
        """Encrypt ``chunks`` ``_ENCRYPT_CHUNK`` at a time, each piece's ciphertext written as it is made.

        Stops before a chunk once the socket transport is over its high water
        mark; returns how many chunks it encrypted.  A piece at a time: the
        outgoing BIO keeps its largest size for the connection's life (68 KiB
        so; 260 KiB read once per 256 KiB), and pieces gathered for one
        ``sendmsg`` made glibc trim its heap and fault it in again each batch
        (64 minor page faults a MiB).  A small chunk (a response head) waits
        in the BIO and leaves with the next piece: one send fewer.

        Each piece is a plain ``write``.  A 64 KiB piece is 65,624 bytes,
        over loopback's MSS, so it leaves as a full segment and a 141-byte
        one; sending all but a batch's last piece with ``MSG_MORE`` held
        those tails back (30.9 segments a MiB -> 22.6) but cost time:
        tls-bytes1m 0.89x the MiB per CPU-second of plain writes (9 rounds,
        0.79-0.92, ``load/bench/run.py --evloop-rev``), the kernel's
        ``tcp_sendmsg`` and its timers dearer than the segments saved.
        """
        obj, inner, outgoing = self._obj, self._inner, self._outgoing
        assert obj is not None and inner is not None
        final = len(chunks) - 1
        held = 0  # plaintext whose records wait in the BIO for the next piece's
        for done, chunk in enumerate(chunks):
            if self._cipher_paused:
                return done
            size = len(chunk)
            if size <= _ENCRYPT_CHUNK:
                obj.write(chunk)
                if done < final and held + size <= _HOLD_MAX:
                    held += size
                else:
                    held = 0
                    inner.write(outgoing.read())
                continue
            held = 0
            view = memoryview(byte_view(chunk))  # slices count bytes, whatever the buffer's format
            end = len(view)
            for start in range(0, end, _ENCRYPT_CHUNK):
                obj.write(view[start:start + _ENCRYPT_CHUNK])
                inner.write(outgoing.read())
        return len(chunks)

    def _flush_outgoing(self) -> None:
        data = self._outgoing.read()
        if data and self._inner is not None:
            self._inner.write(data)

    def get_write_buffer_size(self) -> int:
        """Plaintext queued plus ciphertext not yet sent."""
        inner = self._inner
        return self._plain.size + (inner.get_write_buffer_size() if inner is not None else 0)

    def _protocol_reachable(self) -> bool:
        return self._announced

    def can_write_eof(self) -> bool:
        """True under TLS 1.3, where close_notify closes one direction only (RFC 8446 section 6.1)."""
        obj = self._obj
        return self._phase is TLSPhase.OPEN and obj is not None and obj.version() == "TLSv1.3"

    def write_eof(self) -> None:
        """Send close_notify once the queue has drained; reading goes on (TLS 1.3 only)."""
        if self._closing or self._eof_pending or self._eof_written:
            return
        if not self.can_write_eof():
            raise NotImplementedError("write_eof() needs TLS 1.3: in TLS 1.2 and below close_notify closes both ways")
        if self._plain:
            self._eof_pending = True
        else:
            self._send_close_notify()

    def _send_close_notify(self) -> None:
        self._eof_written = True
        if self._close_notify_sent or self._obj is None:
            return
        self._close_notify_sent = True
        try:
            self._obj.unwrap()  # sends close_notify; waiting for the peer's raises SSLWantReadError
        except ssl.SSLError:
            pass
        self._flush_outgoing()

    # ============================================================== closing
    def close(self, timeout_s: float | None = None) -> None:
        """Stop reading, send queued plaintext and close_notify, then close; ``connection_lost(None)`` follows.

        The peer's close_notify is not waited for.  ``timeout_s`` as for TCP:
        when what is queued has not left that long after the call, the
        connection is aborted and ``connection_lost`` gets a ``TimeoutError``.
        """
        check_close_timeout(timeout_s)
        inner = self._inner
        if self._closing:
            if timeout_s is not None and inner is not None:
                if self._phase is TLSPhase.CLOSING:
                    self._arm_close_timer(timeout_s)
                else:
                    inner.close(timeout_s)
            return
        self._closing = True
        if inner is None:
            return
        inner.pause_reading()
        if self._phase is TLSPhase.HANDSHAKING:
            self._handshake_failed(ConnectionAbortedError("closed during the TLS handshake"))
            return
        if self._phase is not TLSPhase.OPEN:
            inner.close(timeout_s)
            return
        self._phase = TLSPhase.CLOSING
        if timeout_s is not None:
            self._arm_close_timer(timeout_s)
        self._encrypt_queued()

    def _abort_with(self, exc: BaseException | None) -> None:
        if exc is not None:
            self._lost_exc = exc
        self.abort()

    def _finish_close(self) -> None:
        """Every plaintext byte is encrypted: close_notify follows it, and the socket closes once it is sent."""
        self._phase = TLSPhase.CLOSED
        self._send_close_notify()
        inner = self._inner
        if inner is not None:
            inner.close()  # the close timer, if armed, still bounds the flush

    def abort(self) -> None:
        """Close now, dropping whatever is queued; ``connection_lost(None)`` follows."""
        self._closing = True
        if self._inner is not None:
            self._inner.abort()

    def _fail(self, exc: BaseException) -> None:
        logger.debug("TLS error on %s: %s", _peer(self.peername), exc)
        self._lost_exc = exc
        self._closing = True
        self._phase = TLSPhase.CLOSED
        if self._inner is not None:
            self._inner.close(timeout_s=_ALERT_FLUSH_S)  # the alert, if any, is queued already

    # ========================================================= information
    @property
    def socket(self) -> Any:
        return self._inner.socket if self._inner is not None else None

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        """asyncio's names: ``ssl_object``, ``peercert``, ``cipher``, ``alpn_protocol``, ``sslcontext``, ...

        ``peercert`` is ``SSLObject.getpeercert()`` (a dict for a verified
        certificate, {} for one that was not verified, None for none);
        ``peercert_binary`` the DER bytes; ``tls_version`` e.g. ``"TLSv1.3"``;
        ``handshake_s`` the seconds from the connection to the end of the handshake
        (the server counts its header timeout from the accept with it).
        Before the handshake ends only ``ssl_object`` and the socket's names are known.
        """
        obj = self._obj
        if name == "ssl_object":
            return obj
        if name == "sslcontext":
            return self._context
        if name == "server_hostname":
            return self._server_hostname
        if obj is not None and self._phase is not TLSPhase.HANDSHAKING:
            if name == "peercert":
                return obj.getpeercert()
            if name == "peercert_binary":
                return obj.getpeercert(binary_form=True)
            if name == "cipher":
                return obj.cipher()
            if name == "alpn_protocol":
                return obj.selected_alpn_protocol()
            if name == "tls_version":
                return obj.version()
            if name == "compression":
                return obj.compression()
            if name == "handshake_s":
                return self._handshake_s
        if self._inner is not None:
            return self._inner.get_extra_info(name, default)
        return default

    @property
    def phase(self) -> TLSPhase:
        return self._phase


def _peer(peername: Any) -> str:
    if isinstance(peername, tuple) and len(peername) >= 2:
        return f"{peername[0]}:{peername[1]}"
    return str(peername or "-")

