"""TLS transports for embedders: listen(ssl=), connect(ssl=), start_tls(), and the traps of TLS servers.

Servers run on a reactor in a thread of their own (``ReactorThread``) so that
blocking ``ssl`` clients can drive them from the test; everything the
protocols see goes through thread-safe queues.
"""

from __future__ import annotations

import array
import gc
import queue
import socket
import ssl
import threading
import tracemalloc
from collections.abc import Callable
from typing import Any

import pytest
from support.tls_wire import ALERT, PROTOCOL_VERSION_ALERT, read_record, tls11_client_hello

from evloop import ManualClock, Protocol, Reactor, connect, listen
from evloop.net.tls import TLSTransport

TIMEOUT_S = 10.0


class ReactorThread:
    """A reactor running in a thread; ``call(fn)`` runs ``fn`` there and returns its result."""

    def __init__(self) -> None:
        self.reactor = Reactor()
        self.thread = threading.Thread(target=self.reactor.run, daemon=True)
        self.thread.start()

    def call(self, fn: Callable[[], Any]) -> Any:
        done: queue.Queue[tuple[bool, Any]] = queue.Queue()

        def run() -> None:
            try:
                done.put((True, fn()))
            except BaseException as exc:  # handed to the test thread
                done.put((False, exc))

        self.reactor.call_soon_threadsafe(run)
        ok, value = done.get(timeout=TIMEOUT_S)
        if not ok:
            raise value
        return value

    def stop(self) -> None:
        self.reactor.call_soon_threadsafe(self.reactor.stop)
        self.thread.join(TIMEOUT_S)
        self.reactor.close()


class Recorder(Protocol):
    """Puts every callback into ``events``; echoes what it receives when ``echo``."""

    def __init__(self, events: queue.Queue[tuple[str, Any]], echo: bool = True) -> None:
        self.events = events
        self.echo = echo
        self.transport: Any = None

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.events.put(("made", transport))

    def data_received(self, data: bytes) -> None:
        self.events.put(("data", data))
        if self.echo:
            self.transport.write(data)

    def eof_received(self) -> bool:
        self.events.put(("eof", None))
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.events.put(("lost", exc))


def next_event(events: queue.Queue[tuple[str, Any]], kind: str | None = None) -> tuple[str, Any]:
    while True:
        event = events.get(timeout=TIMEOUT_S)
        if kind is None or event[0] == kind:
            return event


@pytest.fixture
def loop_thread():
    thread = ReactorThread()
    yield thread
    thread.stop()


@pytest.fixture
def echo_server(loop_thread, certs):
    """A TLS echo listener; yields (port, events, context)."""
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    context = certs.server_context()
    listener = loop_thread.call(lambda: listen(loop_thread.reactor, lambda: Recorder(events), "127.0.0.1", 0,
                                               ssl=context, ssl_plaintext_reply=b"not TLS\n"))
    yield listener.port, events, context
    loop_thread.call(listener.close)


def tls_client(port: int, certs, **context_options: Any) -> ssl.SSLSocket:
    context = certs.client_context()
    for name, value in context_options.items():
        setattr(context, name, value)
    raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
    return context.wrap_socket(raw, server_hostname="localhost")


def recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = bytearray()
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            break
        data += chunk
    return bytes(data)


def test_echo_and_extra_info(echo_server, certs):
    port, events, _ = echo_server
    with tls_client(port, certs) as client:
        client.sendall(b"hello")
        assert recv_exactly(client, 5) == b"hello"
        _, transport = next_event(events, "made")
        assert isinstance(transport, TLSTransport)
        assert transport.get_extra_info("tls_version") == client.version()
        assert transport.get_extra_info("cipher")[0] == client.cipher()[0]
        assert isinstance(transport.get_extra_info("ssl_object"), ssl.SSLObject)
        assert transport.get_extra_info("peercert") is None  # no client certificate asked for
        assert transport.get_extra_info("peername")[0] == "127.0.0.1"
        client.unwrap()  # close_notify: the protocol hears eof_received, then a clean loss
    assert next_event(events, "eof") == ("eof", None)
    assert next_event(events, "lost") == ("lost", None)


def test_alpn_negotiated(echo_server, certs):
    port, events, _ = echo_server
    with tls_client(port, certs) as client:
        pass
    context = certs.client_context()
    context.set_alpn_protocols(["h2", "http/1.1"])
    with context.wrap_socket(socket.create_connection(("127.0.0.1", port)), server_hostname="localhost") as client:
        assert client.selected_alpn_protocol() == "http/1.1"
        client.sendall(b"x")
        recv_exactly(client, 1)
    transport = [e for e in drain(events) if e[0] == "made"][-1][1]
    assert transport.get_extra_info("alpn_protocol") == "http/1.1"


def drain(events: queue.Queue[tuple[str, Any]]) -> list[tuple[str, Any]]:
    out = []
    while True:
        try:
            out.append(events.get_nowait())
        except queue.Empty:
            return out


def test_request_in_one_record_is_delivered_at_once(echo_server, certs):
    # 12 KiB in one TLS record: OpenSSL decrypts it whole, and nothing else
    # wakes the selector, so the transport must take it all from one readable event.
    port, events, _ = echo_server
    with tls_client(port, certs) as client:
        client.sendall(b"r" * 12 * 1024)
        assert recv_exactly(client, 12 * 1024) == b"r" * 12 * 1024


def test_many_records_in_one_segment(echo_server, certs):
    # Several records reach the server in one read: every one is delivered.
    port, events, _ = echo_server
    with tls_client(port, certs) as client:
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 0)
        for i in range(50):
            client.send(b"%03d" % i)
        assert recv_exactly(client, 150) == b"".join(b"%03d" % i for i in range(50))


def test_eof_without_close_notify_is_reported(echo_server, certs):
    port, events, _ = echo_server
    client = tls_client(port, certs)
    client.sendall(b"x")
    recv_exactly(client, 1)
    client.close()  # SSLSocket.close() closes the socket without close_notify
    kind, exc = next_event(events, "lost")
    assert isinstance(exc, ssl.SSLEOFError)
    assert "close_notify" in str(exc)


def test_plaintext_gets_the_reply_in_the_clear(echo_server):
    port, events, _ = echo_server
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as raw:
        raw.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        assert raw.recv(100) == b"not TLS\n"
        assert raw.recv(100) == b""  # then closed
    assert drain(events) == []  # the protocol never heard of it


def test_old_protocol_hello_refused_with_an_alert(echo_server):
    # A hand-built TLS 1.1 ClientHello (an OpenSSL 3 client refuses to send one,
    # so asking it to would prove nothing about the server).
    port, events, _ = echo_server
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as raw:
        raw.sendall(tls11_client_hello())
        content_type, payload = read_record(raw)
        assert (content_type, payload) == (ALERT, bytes((2, PROTOCOL_VERSION_ALERT)))  # fatal protocol_version
        assert raw.recv(100) == b""
    assert drain(events) == []


def test_garbage_handshake_gets_an_alert_and_a_close(echo_server, caplog):
    port, events, _ = echo_server
    with socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S) as raw:
        raw.sendall(b"\x16\x03\x01\x00\x05garbagegarbage")
        reply = raw.recv(100)
        assert reply[:1] == b"\x15"  # an alert record
        assert raw.recv(100) == b""
    assert drain(events) == []


def test_session_resumption(echo_server, certs):
    port, _, _ = echo_server
    for version in (ssl.TLSVersion.TLSv1_2, ssl.TLSVersion.TLSv1_3):
        context = certs.client_context()
        context.maximum_version = version
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        with context.wrap_socket(raw, server_hostname="localhost") as first:
            first.sendall(b"x")
            recv_exactly(first, 1)  # in TLS 1.3 the ticket comes after the handshake
            session = first.session
            assert not first.session_reused
        raw = socket.create_connection(("127.0.0.1", port), timeout=TIMEOUT_S)
        with context.wrap_socket(raw, server_hostname="localhost", session=session) as second:
            second.sendall(b"y")
            recv_exactly(second, 1)
            assert second.session_reused, version


def test_write_eof_refused_below_tls13(loop_thread, certs):
    seen: queue.Queue[Any] = queue.Queue()

    class TriesHalfClose(Protocol):
        def connection_made(self, transport: Any) -> None:
            seen.put(transport.can_write_eof())
            try:
                transport.write_eof()
            except NotImplementedError as exc:
                seen.put(exc)

    context = certs.server_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    listener = loop_thread.call(lambda: listen(loop_thread.reactor, TriesHalfClose, "127.0.0.1", 0, ssl=context))
    with tls_client(listener.port, certs) as client:
        assert client.version() == "TLSv1.2"
        assert seen.get(timeout=TIMEOUT_S) is False
        assert isinstance(seen.get(timeout=TIMEOUT_S), NotImplementedError)
    loop_thread.call(listener.close)


class HalfCloser(Protocol):
    """Client: sends a request, half-closes (TLS 1.3 close_notify), reads the answer to the end."""

    def __init__(self, result: dict[str, Any]) -> None:
        self.result = result
        self.got = b""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.result["can_write_eof"] = transport.can_write_eof()
        transport.write(b"question")
        transport.write_eof()

    def data_received(self, data: bytes) -> None:
        self.got += data

    def eof_received(self) -> bool:
        self.result["answer"] = self.got
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.result["lost"] = exc


class AnswerAfterEOF(Protocol):
    """Server: collects the request until the peer's close_notify, then answers and closes."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.got = b""

    def data_received(self, data: bytes) -> None:
        self.got += data

    def eof_received(self) -> bool:
        self.transport.write(b"answer to " + self.got)
        self.transport.close()
        return True


def run_until(reactor: Reactor, cond: Callable[[], bool]) -> None:
    import time

    deadline = time.monotonic() + TIMEOUT_S
    while not cond():
        assert time.monotonic() < deadline, "condition not met in time"
        reactor.run_once(0.05)


def test_half_close_under_tls13_with_connect(certs):
    result: dict[str, Any] = {}
    with Reactor() as reactor:
        listener = listen(reactor, AnswerAfterEOF, "127.0.0.1", 0, ssl=certs.server_context())
        pending = connect(reactor, lambda: HalfCloser(result), "127.0.0.1", listener.port,
                          ssl=certs.client_context(), server_hostname="localhost")
        transport = reactor.run_until_complete(pending.future, timeout_s=TIMEOUT_S)
        assert isinstance(transport, TLSTransport)
        run_until(reactor, lambda: "lost" in result)
        listener.close()
    assert result == {"can_write_eof": True, "answer": b"answer to question", "lost": None}


def test_connect_to_an_untrusted_server_fails(certs):
    failures: list[BaseException] = []

    class Client(Protocol):
        def connection_made(self, transport: Any) -> None:
            raise AssertionError("no connection_made for a failed handshake")

        def connection_failed(self, exc: BaseException) -> None:
            failures.append(exc)

    with Reactor() as reactor:
        listener = listen(reactor, Protocol, "127.0.0.1", 0, ssl=certs.server_context())
        pending = connect(reactor, Client, "127.0.0.1", listener.port, ssl=ssl.create_default_context(),
                          server_hostname="localhost")
        with pytest.raises(ssl.SSLCertVerificationError):
            reactor.run_until_complete(pending.future, timeout_s=TIMEOUT_S)
        run_until(reactor, lambda: bool(failures))
        listener.close()
    assert isinstance(failures[0], ssl.SSLCertVerificationError)


def test_handshake_deadline(certs):
    # A client that connects and never sends a ClientHello is dropped at the deadline.
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        listener = listen(reactor, Protocol, "127.0.0.1", 0, ssl=certs.server_context(), ssl_handshake_timeout_s=30)
        raws = [socket.create_connection(("127.0.0.1", listener.port)) for _ in range(5)]
        for _ in range(5):
            reactor.run_once(0.05)
        clock.advance(29)
        reactor.run_once(0)
        for raw in raws:
            raw.setblocking(False)
            with pytest.raises(BlockingIOError):  # still open before the deadline
                raw.recv(1)
        clock.advance(2)
        for _ in range(5):
            reactor.run_once(0.05)
        for raw in raws:
            raw.settimeout(TIMEOUT_S)
            assert raw.recv(1) == b""
            raw.close()
        listener.close()


class StartTLSServer(Protocol):
    """Plain text until ``STARTTLS\\n``, answered ``GO\\n``; then an echo over TLS."""

    def __init__(self, context: ssl.SSLContext, log: list[Any]) -> None:
        self.context = context
        self.log = log
        self.tls: Any = None

    def connection_made(self, transport: Any) -> None:
        self.plain = transport

    def data_received(self, data: bytes) -> None:
        if self.tls is None and data == b"STARTTLS\n":
            self.plain.write(b"GO\n")
            future = self.plain.start_tls(self.context, server_side=True)
            future.add_done_callback(self._upgraded)
            self.tls = future
        elif self.tls is not None and self.tls.done():
            self.tls.result().write(data.upper())

    def _upgraded(self, future: Any) -> None:
        self.log.append(future.result().get_extra_info("tls_version"))


def test_start_tls_upgrades_a_plain_connection(loop_thread, certs):
    log: list[Any] = []
    context = certs.server_context()
    listener = loop_thread.call(lambda: listen(loop_thread.reactor, lambda: StartTLSServer(context, log),
                                               "127.0.0.1", 0))
    with socket.create_connection(("127.0.0.1", listener.port), timeout=TIMEOUT_S) as raw:
        raw.sendall(b"STARTTLS\n")
        assert recv_exactly(raw, 3) == b"GO\n"
        with certs.client_context().wrap_socket(raw, server_hostname="localhost") as tls:
            tls.sendall(b"secret")
            assert recv_exactly(tls, 6) == b"SECRET"
    assert log and log[0].startswith("TLSv1.")
    loop_thread.call(listener.close)


def test_start_tls_on_the_client_side(certs):
    got: list[bytes] = []

    class Upgrader(Protocol):
        def connection_made(self, transport: Any) -> None:
            transport.write(b"STARTTLS\n")
            self.plain = transport
            self.future = None

        def data_received(self, data: bytes) -> None:
            if self.future is None:
                assert data == b"GO\n"
                self.future = self.plain.start_tls(certs.client_context(), server_hostname="localhost")
                self.future.add_done_callback(lambda f: f.result().write(b"over tls"))
            else:
                got.append(data)

    log: list[Any] = []
    with Reactor() as reactor:
        listener = listen(reactor, lambda: StartTLSServer(certs.server_context(), log), "127.0.0.1", 0)
        connect(reactor, Upgrader, "127.0.0.1", listener.port)
        run_until(reactor, lambda: got == [b"OVER TLS"])
        listener.close()


def test_a_client_that_never_reads_costs_bounded_memory(loop_thread, certs):
    # 32 MiB written at once to a client that reads nothing: the plaintext
    # waits in the queue (the caller's bytes, not a copy) and only about a
    # water mark of it is encrypted.
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    body = b"z" * (32 * 1024 * 1024)

    class BigWriter(Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.write(body)
            events.put(("written", self.transport.get_write_buffer_size()))

    listener = loop_thread.call(lambda: listen(loop_thread.reactor, BigWriter, "127.0.0.1", 0,
                                               ssl=certs.server_context()))
    client = tls_client(listener.port, certs)
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
    gc.collect()
    loop_thread.call(tracemalloc.start)
    try:
        client.sendall(b"go")
        _, queued = next_event(events, "written")
        for _ in range(20):
            loop_thread.call(lambda: None)  # a few passes of the loop
        current, peak = loop_thread.call(tracemalloc.get_traced_memory)
    finally:
        loop_thread.call(tracemalloc.stop)
    assert queued > 20 * 1024 * 1024  # most of it still waits (the kernel took a few MiB)
    assert peak < 4 * 1024 * 1024, f"peak {peak} bytes while encrypting"
    client.close()
    loop_thread.call(listener.close)


def test_sendfile_under_tls(loop_thread, certs, tmp_path):
    import hashlib
    import os

    path = tmp_path / "blob"
    path.write_bytes(os.urandom(3 * 1024 * 1024 + 17))
    done: queue.Queue[Any] = queue.Queue()

    class FileSender(Protocol):
        def connection_made(self, transport: Any) -> None:
            self.file = open(path, "rb")
            transport.write(b"head:")
            transport.sendfile(self.file, 0, None, self._sent)
            transport.write(b":tail")
            self.transport = transport

        def _sent(self, exc: BaseException | None) -> None:
            self.file.close()
            done.put(exc)
            self.transport.close()

    listener = loop_thread.call(lambda: listen(loop_thread.reactor, FileSender, "127.0.0.1", 0,
                                               ssl=certs.server_context()))
    with tls_client(listener.port, certs) as client:
        data = bytearray()
        while chunk := client.recv(1 << 20):
            data += chunk
    assert done.get(timeout=TIMEOUT_S) is None
    blob = path.read_bytes()
    assert bytes(data[:5]) == b"head:" and bytes(data[-5:]) == b":tail"
    assert hashlib.sha256(data[5:-5]).digest() == hashlib.sha256(blob).digest()
    loop_thread.call(listener.close)


def _distinct(size: int, seed: int) -> bytes:
    """``size`` bytes that differ from chunk to chunk, so that a reordering shows."""
    return (seed.to_bytes(4, "big") + bytes(range(251))) * (size // 255) + bytes(size % 255)


# writelines over TLS: up to _ENCRYPT_CHUNK in all joined; a batch of the server's (few chunks,
# about 256 KiB) encrypted at once without the plaintext queue; any other batch through the
# queue.  Over TCP: a list of up to 64 chunks offered to writev first, the rest queued.  Both
# must give the bytes the other gives.
WRITELINES_BATCHES = {
    "small": [b"head\r\n", b"a" * 100, bytearray(b"b" * 200), memoryview(b"c" * 300)],
    "streamed batch": [b"HTTP/1.1 200 OK\r\n\r\n"] + [_distinct(65536, i) for i in range(4)],
    "mixed buffers": [bytearray(_distinct(70000, 1)), memoryview(array.array("i", range(25000))), b"tail"],
    "small ones around big ones": [b"h" * 100, _distinct(10000, 1), _distinct(9000, 2), _distinct(65536, 3),
                                   b"x" * 5000, _distinct(70000, 4), b"end"],  # small chunks wait in the BIO
    "large": [b"head\r\n"] + [b"x" * 65536] * 4 + [bytearray(b"y" * 70000), memoryview(b"z" * 20000), b"\r\nend"],
    "over the socket buffer": [_distinct(128 * 1024, i) for i in range(60)],  # 7.5 MiB: past a 4 MiB SO_SNDBUF
    "many small": [b"%d," % i for i in range(30000)],
}


@pytest.mark.parametrize("batch", list(WRITELINES_BATCHES))
def test_writelines_gives_the_same_bytes_over_tls_and_tcp(loop_thread, certs, batch):
    chunks = WRITELINES_BATCHES[batch]
    expected = b"".join(bytes(c) for c in chunks)
    queued: list[int] = []

    class Writer(Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport

        def data_received(self, data: bytes) -> None:
            self.transport.writelines(list(chunks))
            queued.append(self.transport.get_write_buffer_size())
            self.transport.close()

    for tls in (False, True):
        listener = loop_thread.call(lambda: listen(loop_thread.reactor, Writer, "127.0.0.1", 0,  # noqa: B023
                                                   ssl=certs.server_context() if tls else None))  # noqa: B023
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # a small window: sends fall short
        raw.settimeout(TIMEOUT_S)
        raw.connect(("127.0.0.1", listener.port))
        client = certs.client_context().wrap_socket(raw, server_hostname="localhost") if tls else raw
        client.sendall(b"go")
        received = recv_exactly(client, len(expected) + 1)  # + 1: the close must follow
        client.close()
        loop_thread.call(listener.close)
        assert received == expected, (batch, tls, len(received))
    if batch == "over the socket buffer":
        assert queued[0] > 0  # TCP: writev took part of it, the rest waited in the queue


def test_a_batch_the_socket_stops_taking_midway_arrives_whole(loop_thread, certs):
    # A server-like writelines batch on a socket with a small send buffer, to a client that reads
    # nothing yet: encryption stops once the ciphertext passes the high water mark, the rest of
    # the batch waits as plaintext, and everything arrives in order once the client reads.
    chunks = [b"HTTP/1.1 200 OK\r\n\r\n"] + [_distinct(65536, i) for i in range(4)] + [bytearray(b"tail")]
    expected = b"".join(bytes(c) for c in chunks)
    waiting: queue.Queue[int] = queue.Queue()

    class Writer(Protocol):
        def connection_made(self, transport: Any) -> None:
            self.transport = transport
            transport.get_extra_info("socket").setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)

        def data_received(self, data: bytes) -> None:
            self.transport.writelines(chunks)
            waiting.put(self.transport.get_write_buffer_size())
            self.transport.close()

    listener = loop_thread.call(lambda: listen(loop_thread.reactor, Writer, "127.0.0.1", 0,
                                               ssl=certs.server_context()))
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    raw.settimeout(TIMEOUT_S)
    raw.connect(("127.0.0.1", listener.port))
    with certs.client_context().wrap_socket(raw, server_hostname="localhost") as client:
        client.sendall(b"go")
        assert waiting.get(timeout=TIMEOUT_S) > 64 * 1024  # most of the batch waited
        assert recv_exactly(client, len(expected) + 1) == expected
    loop_thread.call(listener.close)


def test_plaintext_larger_than_the_read_buffer_arrives_whole(loop_thread, certs):
    """Records are decrypted into the reactor's read buffer; when it fills, what it holds is kept and it is reused."""
    loop_thread.call(lambda: setattr(loop_thread.reactor, "read_buffer", memoryview(bytearray(1000))))
    events: queue.Queue[tuple[str, Any]] = queue.Queue()
    listener = loop_thread.call(lambda: listen(loop_thread.reactor, lambda: Recorder(events, echo=False),
                                               "127.0.0.1", 0, ssl=certs.server_context()))
    payload = bytes(range(256)) * 400  # 100 KiB: each read of the socket (1,000 bytes) holds under a record
    with tls_client(listener.port, certs) as client:
        client.sendall(payload)
        got = b""
        while len(got) < len(payload):
            got += next_event(events, "data")[1]
    assert got == payload
    loop_thread.call(listener.close)
