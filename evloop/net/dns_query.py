"""One DNS question asked of the name servers, without blocking: UDP, TCP when truncated.

Theory of operation.  A ``DNSQuery`` makes up to ``attempts`` rounds over the
servers, in order (glibc's ``res_send``).  Each try is a fresh UDP socket,
connected to the server, so that

- the kernel picks a fresh ephemeral source port for it (randomised on Linux)
  and delivers only datagrams from that server's address and port;
- an ICMP port unreachable comes back as ``ECONNREFUSED`` on ``recv``, and
  the query moves on at once instead of waiting out the timeout;

and carries a fresh random 16-bit id.  A datagram that does not parse, is
larger than ``MAX_UDP_BYTES``, or is not the reply to this very query (id,
response bit, opcode, question echoed: ``is_reply_to``) is dropped and the
try goes on waiting: an off-path forger can then only lose the race, never
end the query.  A reply with the TC bit is asked again over TCP, of the same
server, with the same id and a timeout of its own (RFC 7766).  SERVFAIL, REFUSED, NOTIMP,
FORMERR, and a reply whose CNAME chain loops, move on to the next try; a
timeout does too.  When no try is left, the future fails with
``QueryFailed``.

Every try has one timer on the reactor's clock, so a test with a manual
clock drives the retries without waiting.
"""

from __future__ import annotations

import errno
import secrets
import socket
from collections.abc import Callable, Sequence
from typing import Any

from ..futures import Future
from ..reactor import Reactor
from ..timers import Timer
from .dns_message import (
    MAX_MESSAGE_BYTES,
    RCODE_FORMERR,
    RCODE_NOTIMP,
    RCODE_REFUSED,
    RCODE_SERVFAIL,
    Answer,
    DNSFormatError,
    Name,
    Outcome,
    build_query,
    is_reply_to,
    parse_message,
    read_answer,
)

__all__ = ["DNSQuery", "QueryFailed", "MAX_UDP_BYTES", "ServerAddress"]

MAX_UDP_BYTES = 4096       # no EDNS is sent, so a reply past 512 bytes is already odd; past this, refused
_DATAGRAMS_PER_WAKEUP = 16  # a flood of junk datagrams cannot hold the loop for longer than this

_RCODE_NAMES = {RCODE_FORMERR: "FORMERR", RCODE_SERVFAIL: "SERVFAIL", RCODE_NOTIMP: "NOTIMP", RCODE_REFUSED: "REFUSED"}

ServerAddress = tuple[int, Any]
"""A name server as ``(family, sockaddr)``, ready for ``socket.socket(family, ...)`` and ``connect``."""


class QueryFailed(Exception):
    """No server gave a usable answer to the question; the message says what happened last."""


class DNSQuery:
    """Ask ``name``/``qtype`` of ``servers`` (see the module docstring); ``future`` gets the ``Answer``.

    ``start()`` sends the first try.  Cancelling ``future`` stops every try
    and closes its sockets (from the loop, when the future's callbacks run).
    """

    def __init__(
        self, reactor: Reactor, name: Name, qtype: int, servers: Sequence[ServerAddress], *,
        timeout_s: float, attempts: int,
    ) -> None:
        self._reactor = reactor
        self._name = name
        self._qtype = qtype
        self._tries = [server for _ in range(attempts) for server in servers]
        self._timeout_s = timeout_s
        self.future: Future[Answer] = reactor.create_future()
        self._sock: socket.socket | None = None
        self._timer: Timer | None = None
        self._query_id = 0
        self._server: ServerAddress | None = None
        self._outgoing = b""        # TCP: what is left to send, length prefix included
        self._incoming = bytearray()  # TCP: what came back so far
        self._last_failure = "no name server to ask"
        self._done = False
        self.future.add_done_callback(self._future_done)

    def start(self) -> None:
        self._reactor._track(self)
        self._next_try()

    # ---------------------------------------------------------------- tries
    def _next_try(self, failure: str | None = None) -> None:
        if failure is not None:
            self._last_failure = failure
        self._close_socket()
        if self._done:
            return
        if not self._tries:
            self._finish(exc=QueryFailed(self._last_failure))
            return
        self._server = self._tries.pop(0)
        self._query_id = secrets.randbits(16)
        self._open(socket.SOCK_DGRAM, self._send_datagram, "")

    def _open(self, kind: int, first_step: Callable[[socket.socket], None], context: str) -> None:
        """A new non-blocking socket of ``kind`` to the try's server, its timer armed, then
        ``first_step(sock)``; a failure (no route, no socket left, ...) moves on to the next try."""
        assert self._server is not None
        family, address = self._server
        self._timer = self._reactor.call_later(self._timeout_s, self._timed_out)
        sock = None
        try:
            sock = socket.socket(family, kind)
            sock.setblocking(False)
            first_step(sock)
        except (OSError, ValueError) as exc:  # ValueError: past SelectSelector's descriptor limit
            if sock is not None:
                self._reactor.remove_reader(sock)
                self._reactor.remove_writer(sock)
                sock.close()
            self._next_try(f"{_format(self._server)}: {context}{exc}")
            return
        self._sock = sock

    def _send_datagram(self, sock: socket.socket) -> None:
        assert self._server is not None
        sock.connect(self._server[1])
        sock.send(build_query(self._query_id, self._name, self._qtype))
        self._reactor.add_reader(sock, self._on_datagram)

    def _timed_out(self) -> None:
        self._timer = None
        self._next_try(f"{_format(self._server)}: no answer within {self._timeout_s} s")

    def _on_datagram(self) -> None:
        sock = self._sock
        for _ in range(_DATAGRAMS_PER_WAKEUP):
            if sock is None or sock is not self._sock:
                return  # the try ended while reading
            try:
                data = sock.recv(MAX_UDP_BYTES + 1)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:  # ECONNREFUSED: the ICMP answer of a server that is not listening
                self._next_try(f"{_format(self._server)}: {exc}")
                return
            if len(data) <= MAX_UDP_BYTES:
                self._reply_received(data, over_tcp=False)

    def _reply_received(self, data: bytes, *, over_tcp: bool) -> None:
        where = _format(self._server)
        try:
            message = parse_message(data)
        except DNSFormatError as exc:
            if over_tcp:
                self._next_try(f"{where}: malformed reply over TCP: {exc}")
            return  # over UDP: dropped (see the module docstring)
        if not is_reply_to(message, self._query_id, self._name, self._qtype):
            if over_tcp:
                self._next_try(f"{where}: a reply over TCP to another question")
            return
        if message.header.truncated and not over_tcp:
            self._start_tcp()
            return
        try:
            answer = read_answer(message, self._name, self._qtype)
        except DNSFormatError as exc:
            self._next_try(f"{where}: {exc}")
            return
        if answer.outcome is Outcome.SERVER_FAILURE:
            rcode = message.header.rcode
            self._next_try(f"{where}: answered {_RCODE_NAMES.get(rcode, f'with error code {rcode}')}")
            return
        self._finish(answer=answer)

    # ------------------------------------------------------------------ TCP
    def _start_tcp(self) -> None:
        """The UDP reply was truncated: ask the same server over TCP (same id, a new timeout)."""
        self._close_socket()
        packet = build_query(self._query_id, self._name, self._qtype)
        self._outgoing = len(packet).to_bytes(2, "big") + packet
        self._incoming = bytearray()
        self._open(socket.SOCK_STREAM, self._connect_stream, "truncated reply, then TCP failed: ")

    def _connect_stream(self, sock: socket.socket) -> None:
        assert self._server is not None
        err = sock.connect_ex(self._server[1])
        if err not in (0, errno.EINPROGRESS):
            raise OSError(err, f"TCP connect: {errno.errorcode.get(err, err)}")
        self._reactor.add_writer(sock, self._on_tcp_writable)

    def _on_tcp_writable(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, errno.errorcode.get(err, str(err)))
            sent = sock.send(self._outgoing)
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._next_try(f"{_format(self._server)}: over TCP: {exc}")
            return
        self._outgoing = self._outgoing[sent:]
        if not self._outgoing:
            self._reactor.remove_writer(sock)
            self._reactor.add_reader(sock, self._on_tcp_readable)

    def _on_tcp_readable(self) -> None:
        sock = self._sock
        assert sock is not None
        try:
            data = sock.recv(MAX_MESSAGE_BYTES + 2 - len(self._incoming))
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            self._next_try(f"{_format(self._server)}: over TCP: {exc}")
            return
        if not data:
            self._next_try(f"{_format(self._server)}: TCP connection closed before the whole reply")
            return
        self._incoming += data
        if len(self._incoming) >= 2:
            length = int.from_bytes(self._incoming[:2], "big")
            if len(self._incoming) >= 2 + length:
                # Bytes past the one reply are ignored: the connection is closed anyway.
                self._reply_received(bytes(self._incoming[2:2 + length]), over_tcp=True)

    # --------------------------------------------------------------- endings
    def _finish(self, *, answer: Answer | None = None, exc: BaseException | None = None) -> None:
        self._end()
        if self.future.done():
            return
        if exc is not None:
            self.future.set_exception(exc)
        else:
            assert answer is not None
            self.future.set_result(answer)

    def _future_done(self, future: Future[Answer]) -> None:
        if future.cancelled():
            self._end()

    def _end(self) -> None:
        if self._done:
            return
        self._done = True
        self._tries.clear()
        self._close_socket()
        self._reactor._untrack(self)

    def _close_socket(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        sock, self._sock = self._sock, None
        if sock is not None:
            self._reactor.remove_reader(sock)  # unregister before closing
            self._reactor.remove_writer(sock)
            sock.close()

    def cancel(self) -> None:
        """Stop at once: close the socket, cancel the timer and ``future``."""
        self._end()
        self.future.cancel()

    def _close_with_reactor(self) -> None:
        self.cancel()

    def _discard_after_fork(self) -> None:
        self._done = True
        if self._sock is not None:
            self._sock.close()  # the parent's epoll set is not touched
            self._sock = None


def _format(server: ServerAddress | None) -> str:
    if server is None:
        return "?"
    address = server[1]
    host, port = address[0], address[1]
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"
