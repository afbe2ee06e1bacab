"""Socket transports over socketpairs and real TCP/Unix sockets, for every selector class."""

from __future__ import annotations

import errno
import logging
import os
import socket
import struct
import subprocess
import sys
import textwrap

import pytest

from evloop import Protocol, Reactor, SocketTransport, connect, listen

GRAMMAR_VIOLATIONS: list[str] = []


@pytest.fixture(autouse=True)
def check_call_grammar():
    """Protocol callbacks run inside the reactor, which logs exceptions: collect violations instead."""
    GRAMMAR_VIOLATIONS.clear()
    yield
    assert not GRAMMAR_VIOLATIONS


class Recorder(Protocol):
    """Records the call grammar and everything received."""

    def __init__(self, keep_open: bool | None = None) -> None:
        self.keep_open = keep_open
        self.events: list[str] = []
        self.data = bytearray()
        self.transport: SocketTransport | None = None
        self.exc: BaseException | None = None
        self.failed: BaseException | None = None

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("CM")

    def data_received(self, data):
        if not (self.events[:1] == ["CM"] and "ER" not in self.events and "CL" not in self.events):
            GRAMMAR_VIOLATIONS.append(f"data_received after {self.events}")
        self.data += data
        if self.events[-1] != "DR":
            self.events.append("DR")

    def eof_received(self):
        if "ER" in self.events or "CL" in self.events:
            GRAMMAR_VIOLATIONS.append(f"eof_received after {self.events}")
        self.events.append("ER")
        return self.keep_open

    def connection_lost(self, exc):
        if "CL" in self.events or "CF" in self.events:
            GRAMMAR_VIOLATIONS.append(f"connection_lost after {self.events}")
        self.events.append("CL")
        self.exc = exc

    def pause_writing(self):
        self.events.append("PW")

    def resume_writing(self):
        self.events.append("RW")

    def connection_failed(self, exc):
        self.events.append("CF")
        self.failed = exc

    @property
    def lost(self) -> bool:
        return "CL" in self.events


class Peer:
    """The plain-socket side of a pair, read by the same reactor when asked to."""

    def __init__(self, reactor: Reactor, sock: socket.socket) -> None:
        self.reactor = reactor
        self.sock = sock
        sock.setblocking(False)
        self.data = bytearray()
        self.eof = False
        self.error: OSError | None = None
        self.reading = False

    def start_reading(self) -> None:
        if not self.reading:
            self.reading = True
            self.reactor.add_reader(self.sock, self._on_readable)

    def stop_reading(self) -> None:
        if self.reading:
            self.reading = False
            self.reactor.remove_reader(self.sock)

    def _on_readable(self) -> None:
        try:
            chunk = self.sock.recv(1 << 20)
        except BlockingIOError:
            return
        except OSError as exc:
            self.error = exc
            self.stop_reading()
            return
        if chunk:
            self.data += chunk
        else:
            self.eof = True
            self.stop_reading()

    def send_all(self, data: bytes) -> None:
        self.sock.setblocking(True)
        try:
            self.sock.sendall(data)
        finally:
            self.sock.setblocking(False)

    def close(self) -> None:
        self.stop_reading()
        self.sock.close()


def small_buffers(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)


@pytest.fixture
def pair(reactor):
    """(transport, protocol, peer) over a Unix socketpair."""
    made = []

    def make(protocol: Recorder | None = None, **kwargs):
        a, b = socket.socketpair()
        small_buffers(a)
        small_buffers(b)
        protocol = protocol or Recorder()
        transport = SocketTransport(reactor, a, protocol, **kwargs)
        transport.start()
        peer = Peer(reactor, b)
        made.append((transport, peer))
        return transport, protocol, peer

    yield make
    for transport, peer in made:
        transport.abort()
        peer.close()
    reactor.run_once(0)


@pytest.fixture
def tcp_pair(reactor, run_until):
    """(transport, protocol, peer) over a real TCP connection on 127.0.0.1."""
    made = []

    def make(protocol: Recorder | None = None, **kwargs):
        server_protocols: list[Recorder] = []
        factory_proto = protocol or Recorder()

        def factory():
            server_protocols.append(factory_proto)
            return factory_proto

        listener = listen(reactor, factory, "127.0.0.1", 0, transport_kwargs=kwargs or None)
        client = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
        run_until(reactor, lambda: server_protocols and server_protocols[0].transport is not None)
        listener.close()
        transport = server_protocols[0].transport
        peer = Peer(reactor, client)
        made.append((transport, peer))
        return transport, factory_proto, peer

    yield make
    for transport, peer in made:
        transport.abort()
        peer.close()
    reactor.run_once(0)


# ------------------------------------------------------------------ writes
def test_write_sends_immediately(pair):
    transport, protocol, peer = pair()
    transport.write(b"hello")
    assert transport.get_write_buffer_size() == 0
    # No loop pass ran: the bytes are already in the peer's socket.
    assert peer.sock.recv(100) == b"hello"
    transport.writelines([b"a", b"bc", memoryview(b"def"), bytearray(b"g")])
    assert peer.sock.recv(100) == b"abcdefg"
    assert protocol.events == ["CM"]


def test_partial_writes_drain_every_byte(pair, run_until, reactor):
    transport, protocol, peer = pair()
    payload = os.urandom(4 * 1024 * 1024)
    view = memoryview(payload)
    for i in range(0, len(payload), 50_000):
        transport.write(view[i:i + 50_000])
    # The peer is not reading: most of it is queued.
    queued = transport.get_write_buffer_size()
    assert 0 < queued < len(payload)
    assert protocol.events[:2] == ["CM", "PW"]
    peer.start_reading()
    run_until(reactor, lambda: len(peer.data) == len(payload), 10)
    assert bytes(peer.data) == payload
    run_until(reactor, lambda: transport.get_write_buffer_size() == 0)
    assert protocol.events == ["CM", "PW", "RW"]


def test_writelines_partial_sends_keep_every_byte_in_order(pair, run_until, reactor):
    # Far more than the socket takes at once, in chunks of every kind and size,
    # and more chunks than one writev gathers: partial gathers must resume
    # exactly where the kernel stopped.
    transport, protocol, peer = pair()
    sizes = [65536, 1, 300_000, 7, 0, 40_000] * 40 + [3] * 1500
    chunks = []
    for i, n in enumerate(sizes):
        data = os.urandom(n)
        chunks.append(data if i % 3 == 0 else bytearray(data) if i % 3 == 1 else memoryview(data))
    expected = b"".join(bytes(c) for c in chunks)
    mutable = [c for c in chunks if isinstance(c, bytearray)]
    transport.writelines(chunks)
    assert 0 < transport.get_write_buffer_size() < len(expected)  # the peer is not reading yet
    for buf in mutable:
        buf[:] = b"\0" * len(buf)  # the caller reuses its buffers: what was queued is a copy
    transport.writelines([b"E", b"ND"])  # after queued bytes: queued behind them
    peer.start_reading()
    run_until(reactor, lambda: len(peer.data) == len(expected) + 3, 10)
    assert bytes(peer.data) == expected + b"END"


def test_writelines_of_many_small_chunks_sends_them_all_at_once(pair):
    transport, protocol, peer = pair()
    chunks = [b"%d," % i for i in range(1200)]  # more buffers than one writev gathers
    transport.writelines(chunks)
    assert transport.get_write_buffer_size() == 0
    expected = b"".join(chunks)
    received = b""
    while len(received) < len(expected):
        received += peer.sock.recv(65536)
    assert received == expected


def test_partial_write_of_mutable_buffer_is_copied(pair, run_until, reactor):
    transport, protocol, peer = pair()
    buf = bytearray(os.urandom(1024 * 1024))
    expected = bytes(buf)
    transport.write(buf)
    assert transport.get_write_buffer_size() > 0
    buf[:] = b"\0" * len(buf)  # the caller reuses its buffer
    transport.write(b"END")
    peer.start_reading()
    run_until(reactor, lambda: len(peer.data) == len(expected) + 3)
    assert bytes(peer.data) == expected + b"END"


def test_small_writes_after_partial_write_keep_order(pair, run_until, reactor):
    transport, protocol, peer = pair()
    chunks = [os.urandom(n) for n in [300_000] + [7, 1000, 20_000, 3] * 200]
    for c in chunks:
        transport.write(c)
    expected = b"".join(chunks)
    assert transport.get_write_buffer_size() > 0
    peer.start_reading()
    run_until(reactor, lambda: len(peer.data) == len(expected))
    assert bytes(peer.data) == expected


def test_water_marks(pair, run_until, reactor):
    transport, protocol, peer = pair()
    transport.set_write_buffer_limits(high=200_000, low=50_000)
    sent = bytearray()
    # Fill until the transport asks us to pause.
    while "PW" not in protocol.events:
        chunk = os.urandom(10_000)
        transport.write(chunk)
        sent += chunk
        assert len(sent) < 10_000_000
    assert transport.get_write_buffer_size() > 200_000
    assert protocol.events == ["CM", "PW"]
    # Writing more while paused does not call pause_writing again.
    transport.write(b"x" * 1000)
    sent += b"x" * 1000
    assert protocol.events == ["CM", "PW"]
    # Drain a little: above the low mark there is no resume yet.
    peer.start_reading()
    run_until(reactor, lambda: "RW" in protocol.events)
    assert transport.get_write_buffer_size() <= 50_000
    run_until(reactor, lambda: len(peer.data) == len(sent))
    assert bytes(peer.data) == bytes(sent)
    assert protocol.events == ["CM", "PW", "RW"]


def test_set_write_buffer_limits_validates(pair):
    transport, _, _ = pair()
    with pytest.raises(ValueError):
        transport.set_write_buffer_limits(high=10, low=20)


def test_high_water_kwarg(pair, run_until, reactor):
    transport, protocol, peer = pair(high_water=1000, low_water=0)
    transport.write(os.urandom(500_000))
    assert "PW" in protocol.events
    peer.start_reading()
    run_until(reactor, lambda: "RW" in protocol.events)
    assert transport.get_write_buffer_size() == 0


def test_listener_arguments_reach_accepted_transports(tcp_pair):
    # The listener passes its transport arguments by position (a keyword call
    # built a dict per connection): each must still land where it belongs.
    transport, protocol, peer = tcp_pair(high_water=1000, low_water=0)
    assert transport.get_write_buffer_limits() == (0, 1000)
    assert transport.get_extra_info("peername") == peer.sock.getsockname()
    assert transport.get_extra_info("sockname") == peer.sock.getpeername()
    assert transport.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
    assert transport.socket.getblocking() is False


def test_listener_refuses_unknown_transport_arguments(reactor):
    with pytest.raises(TypeError, match="unknown transport arguments"):
        listen(reactor, Recorder, "127.0.0.1", 0, transport_kwargs={"high_watermark": 10})


# ----------------------------------------------------------------- reading
def test_data_received(pair, run_until, reactor):
    transport, protocol, peer = pair()
    payload = os.urandom(3 * 1024 * 1024)
    # The peer writes through the reactor too, so nothing blocks.
    pos = [0]

    def push():
        try:
            pos[0] += peer.sock.send(payload[pos[0]:pos[0] + 256 * 1024])
        except BlockingIOError:
            pass
        if pos[0] == len(payload):
            reactor.remove_writer(peer.sock)

    reactor.add_writer(peer.sock, push)
    run_until(reactor, lambda: len(protocol.data) == len(payload))
    assert bytes(protocol.data) == payload


def test_small_reads_allocate_only_what_was_read(pair, run_until, reactor):
    # Regression: recv(256 KiB) allocated (and shrank) 256 KiB per read, which
    # glibc can serve with an mmap and a munmap each time: a small request
    # then cost three times as much (load/BENCHMARKS.md, 2026-11-26).  A read
    # allocates at most its 64 KiB, under glibc's 128 KiB mmap threshold, and
    # what the protocol keeps is only what was read.
    import sys
    import tracemalloc

    transport, protocol, peer = pair()
    received = []
    protocol.data_received = received.append  # keeps each read's bytes object
    tracemalloc.start()
    try:
        for i in range(20):
            peer.sock.send(b"request %d" % i)
            tracemalloc.reset_peak()
            before = tracemalloc.get_traced_memory()[0]
            run_until(reactor, lambda i=i: len(received) == i + 1)
            assert tracemalloc.get_traced_memory()[1] - before < 96 * 1024
            assert tracemalloc.get_traced_memory()[0] - before < 4 * 1024
    finally:
        tracemalloc.stop()
    assert received == [b"request %d" % i for i in range(20)]
    assert all(type(data) is bytes and sys.getsizeof(data) < 100 for data in received)


def test_pause_and_resume_reading(pair, run_until, reactor):
    transport, protocol, peer = pair()
    assert transport.is_reading()
    transport.pause_reading()
    transport.pause_reading()  # idempotent
    assert not transport.is_reading()
    peer.sock.send(b"held back")
    for _ in range(5):
        reactor.run_once(0.01)
    assert protocol.data == b""
    transport.resume_reading()
    transport.resume_reading()
    assert transport.is_reading()
    run_until(reactor, lambda: protocol.data == b"held back")


def test_pause_reading_inside_data_received(pair, run_until, reactor):
    class Pauser(Recorder):
        def data_received(self, data):
            super().data_received(data)
            self.transport.pause_reading()

    transport, protocol, peer = pair(Pauser())
    peer.sock.send(b"one")
    run_until(reactor, lambda: protocol.data)
    peer.sock.send(b"two")
    for _ in range(3):
        reactor.run_once(0.01)
    assert protocol.data == b"one"
    transport.resume_reading()
    run_until(reactor, lambda: protocol.data == b"onetwo")


def test_backpressure_echo_with_pause_reading(pair, run_until, reactor):
    """A proxy-like protocol: pause reading while the write side is paused."""

    class Echo(Recorder):
        def data_received(self, data):
            super().data_received(data)
            self.transport.write(data)

        def pause_writing(self):
            super().pause_writing()
            self.transport.pause_reading()

        def resume_writing(self):
            super().resume_writing()
            self.transport.resume_reading()

    transport, protocol, peer = pair(Echo())
    payload = os.urandom(2 * 1024 * 1024)
    pos = [0]

    def push():
        try:
            pos[0] += peer.sock.send(payload[pos[0]:pos[0] + 64 * 1024])
        except BlockingIOError:
            pass
        if pos[0] == len(payload):
            reactor.remove_writer(peer.sock)

    reactor.add_writer(peer.sock, push)
    # Let the peer send without reading for a while: the echo must pause.
    run_until(reactor, lambda: "PW" in protocol.events)
    assert not transport.is_reading()
    peer.start_reading()
    run_until(reactor, lambda: len(peer.data) == len(payload), 10)
    assert bytes(peer.data) == payload


# ---------------------------------------------------------------- half-close
def test_eof_closes_by_default(pair, run_until, reactor):
    transport, protocol, peer = pair()
    peer.sock.send(b"last words")
    peer.sock.shutdown(socket.SHUT_WR)
    peer.start_reading()
    run_until(reactor, lambda: protocol.lost and peer.eof)
    assert protocol.events == ["CM", "DR", "ER", "CL"]
    assert protocol.exc is None
    assert protocol.data == b"last words"


def test_eof_received_true_keeps_write_side_open(pair, run_until, reactor):
    transport, protocol, peer = pair(Recorder(keep_open=True))
    peer.sock.shutdown(socket.SHUT_WR)
    run_until(reactor, lambda: "ER" in protocol.events)
    for _ in range(3):
        reactor.run_once(0.01)
    assert not protocol.lost and not transport.is_closing()
    reply = os.urandom(500_000)
    transport.write(reply)
    transport.close()
    assert transport.is_closing()
    peer.start_reading()
    run_until(reactor, lambda: peer.eof and protocol.lost)
    assert bytes(peer.data) == reply
    assert [e for e in protocol.events if e not in ("PW", "RW")] == ["CM", "ER", "CL"]


def test_eof_received_only_once_after_resume_reading(pair, run_until, reactor):
    transport, protocol, peer = pair(Recorder(keep_open=True))
    peer.sock.shutdown(socket.SHUT_WR)
    run_until(reactor, lambda: "ER" in protocol.events)
    transport.pause_reading()
    transport.resume_reading()
    for _ in range(3):
        reactor.run_once(0.01)
    assert protocol.events.count("ER") == 1
    transport.close()
    run_until(reactor, lambda: protocol.lost)


def test_write_eof_half_closes(pair, run_until, reactor):
    transport, protocol, peer = pair()
    assert transport.can_write_eof()
    data = os.urandom(600_000)
    transport.write(data)
    assert transport.get_write_buffer_size() > 0
    transport.write_eof()  # pending until the queue drains
    with pytest.raises(RuntimeError):
        transport.write(b"more")
    peer.start_reading()
    run_until(reactor, lambda: peer.eof)
    assert bytes(peer.data) == data
    # Our read side still works.
    peer.sock.send(b"still talking")
    run_until(reactor, lambda: protocol.data == b"still talking")
    assert not protocol.lost
    peer.sock.shutdown(socket.SHUT_WR)
    run_until(reactor, lambda: protocol.lost)
    assert [e for e in protocol.events if e not in ("PW", "RW")] == ["CM", "DR", "ER", "CL"]


def test_write_eof_with_empty_queue(pair, run_until, reactor):
    transport, protocol, peer = pair()
    transport.write(b"abc")
    transport.write_eof()
    transport.write_eof()
    peer.start_reading()
    run_until(reactor, lambda: peer.eof)
    assert peer.data == b"abc"


# ------------------------------------------------------------ close / abort
def test_close_flushes_then_closes(pair, run_until, reactor):
    transport, protocol, peer = pair()
    data = os.urandom(2 * 1024 * 1024)
    transport.write(data)
    transport.close()
    transport.close()
    assert transport.is_closing()
    transport.write(b"ignored")  # writes to a closing transport are dropped
    for _ in range(3):
        reactor.run_once(0.01)
    assert not protocol.lost  # still flushing
    peer.start_reading()
    run_until(reactor, lambda: peer.eof and protocol.lost)
    assert bytes(peer.data) == data
    assert protocol.exc is None
    assert protocol.events[-1] == "CL"
    assert transport.socket.fileno() == -1  # closed after connection_lost


def test_close_with_empty_queue(pair, run_until, reactor):
    transport, protocol, peer = pair()
    transport.close()
    assert not protocol.lost  # connection_lost comes from the loop, not from inside close()
    peer.start_reading()
    run_until(reactor, lambda: peer.eof and protocol.lost)
    assert protocol.events == ["CM", "CL"]


def test_abort_drops_the_queue(pair, run_until, reactor):
    transport, protocol, peer = pair()
    data = os.urandom(4 * 1024 * 1024)
    transport.write(data)
    queued = transport.get_write_buffer_size()
    assert queued > 0
    transport.abort()
    assert transport.get_write_buffer_size() == 0
    assert transport.is_closing()
    run_until(reactor, lambda: protocol.lost)
    assert protocol.exc is None
    peer.start_reading()
    run_until(reactor, lambda: peer.eof or peer.error)
    assert len(peer.data) == len(data) - queued
    assert bytes(peer.data) == data[: len(peer.data)]
    transport.abort()  # idempotent
    transport.close()
    reactor.run_once(0)
    assert protocol.events.count("CL") == 1


def test_abort_tells_pending_sendfile(pair, run_until, reactor, tmp_path):
    transport, protocol, peer = pair()
    path = tmp_path / "f"
    path.write_bytes(os.urandom(4 * 1024 * 1024))
    done = []
    with open(path, "rb") as f:
        transport.sendfile(f, on_done=done.append)
        assert transport.get_write_buffer_size() > 0
        transport.abort()
        assert done == []  # from the loop, not inside abort()
        reactor.run_once(0)
    assert len(done) == 1 and done[0] is not None  # not reported as sent


def test_connection_made_exception_aborts(reactor, run_until):
    class Bad(Recorder):
        def connection_made(self, transport):
            super().connection_made(transport)
            raise RuntimeError("no")

    a, b = socket.socketpair()
    with b:
        protocol = Bad()
        transport = SocketTransport(reactor, a, protocol)
        with pytest.raises(RuntimeError):
            transport.start()
        run_until(reactor, lambda: protocol.lost)
        b.settimeout(2)
        assert b.recv(10) == b""


# -------------------------------------------------------------- peer reset
def _reset(sock: socket.socket) -> None:
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def test_reset_by_peer_is_ordinary_close(tcp_pair, run_until, reactor, caplog):
    transport, protocol, peer = tcp_pair()
    peer.stop_reading()
    with caplog.at_level(logging.DEBUG, logger="evloop"):
        _reset(peer.sock)
        run_until(reactor, lambda: protocol.lost)
    assert isinstance(protocol.exc, ConnectionResetError)
    assert protocol.events[-1] == "CL"
    assert not [r for r in caplog.records if r.levelno >= logging.DEBUG]


def test_reset_by_peer_while_writing(tcp_pair, run_until, reactor, caplog):
    transport, protocol, peer = tcp_pair()
    small_buffers(peer.sock)
    with caplog.at_level(logging.DEBUG, logger="evloop"):
        transport.write(os.urandom(8 * 1024 * 1024))
        assert transport.get_write_buffer_size() > 0
        _reset(peer.sock)
        run_until(reactor, lambda: protocol.lost)
    assert isinstance(protocol.exc, (ConnectionResetError, BrokenPipeError))
    assert transport.get_write_buffer_size() == 0
    assert not caplog.records


class _Forgetful(Protocol):
    """Drops its transport when the connection ends, as a server's protocol does, and keeps no error."""

    def __init__(self) -> None:
        self.transport: SocketTransport | None = None
        self.lost = False

    def connection_made(self, transport):
        self.transport = transport

    def connection_lost(self, exc):
        self.transport = None
        self.lost = True


def test_a_reset_connection_leaves_no_cycle_for_the_garbage_collector(reactor, run_until):
    # The error a reset raised carries a traceback whose frames hold the transport (their ``self``): a
    # transport that kept it after connection_lost was a cycle with everything it referred to, freed only
    # by a full collection (the heap of tests/reliability/test_resets_and_garbage.py grew ~12 KiB a reset
    # connection until one ran).  Freed by reference counting alone, nothing of it is left for gc.
    import gc

    protocol = _Forgetful()
    listener = listen(reactor, lambda: protocol, "127.0.0.1", 0)
    client = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
    small_buffers(client)
    run_until(reactor, lambda: protocol.transport is not None)
    listener.close()
    gc.collect()
    gc.disable()
    try:
        transport = protocol.transport
        assert transport is not None
        transport.write(os.urandom(4 * 1024 * 1024))  # still queued when the reset comes
        del transport
        _reset(client)
        run_until(reactor, lambda: protocol.lost)
        gc.set_debug(gc.DEBUG_SAVEALL)
        gc.collect()
        left = [type(o).__name__ for o in gc.garbage if isinstance(o, (SocketTransport, BaseException))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert left == []


# ---------------------------------------------------------------- sendfile
@pytest.fixture(scope="module")
def big_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("sendfile") / "random.bin"
    data = os.urandom(8 * 1024 * 1024 + 12345)
    path.write_bytes(data)
    return path, data


def test_sendfile_whole_file(tcp_pair, run_until, reactor, big_file):
    path, data = big_file
    transport, protocol, peer = tcp_pair()
    done = []
    with open(path, "rb") as f:
        transport.write(b"HEAD")
        transport.sendfile(f, on_done=done.append)
        transport.write(b"TAIL")
        assert transport.get_write_buffer_size() > 0
        peer.start_reading()
        run_until(reactor, lambda: len(peer.data) == len(data) + 8, 10)
    assert done == [None]
    assert peer.data[:4] == b"HEAD" and peer.data[-4:] == b"TAIL"
    assert bytes(peer.data[4:-4]) == data
    run_until(reactor, lambda: transport.get_write_buffer_size() == 0)


def test_sendfile_offset_count_and_fd(pair, run_until, reactor, big_file):
    path, data = big_file
    transport, protocol, peer = pair()
    fd = os.open(path, os.O_RDONLY)
    try:
        done = []
        transport.sendfile(fd, 1_000_001, 3_000_000, on_done=done.append)
        transport.sendfile(fd, len(data) - 100, None, on_done=done.append)  # to the end
        transport.sendfile(fd, 5, 0, on_done=done.append)  # nothing to send
        transport.close()
        peer.start_reading()
        run_until(reactor, lambda: peer.eof, 10)
        assert bytes(peer.data) == data[1_000_001:4_000_001] + data[-100:]
        assert done == [None, None, None]
        assert protocol.lost and protocol.exc is None
        assert os.lseek(fd, 0, os.SEEK_CUR) == 0  # the file position is untouched
    finally:
        os.close(fd)


def test_sendfile_file_shorter_than_count_fails(pair, run_until, reactor, tmp_path):
    transport, protocol, peer = pair()
    path = tmp_path / "short"
    path.write_bytes(b"x" * 1000)
    done = []
    with open(path, "rb") as f:
        transport.sendfile(f, 0, 5000, on_done=done.append)
        run_until(reactor, lambda: protocol.lost)
    assert protocol.exc is not None
    assert len(done) == 1


def test_sendfile_fallback_when_sendfile_unsupported(pair, run_until, reactor, big_file, monkeypatch):
    path, data = big_file
    import evloop.net.tcp as transport_module

    calls = []

    def no_sendfile(*args):
        calls.append(args)
        raise OSError(errno.EINVAL, "sendfile not supported here")

    monkeypatch.setattr(transport_module.os, "sendfile", no_sendfile)
    transport, protocol, peer = pair()
    done = []
    with open(path, "rb") as f:
        transport.sendfile(f, 7, len(data) - 7, on_done=done.append)
        transport.write(b"!")
        peer.start_reading()
        run_until(reactor, lambda: len(peer.data) == len(data) - 7 + 1, 10)
    assert calls
    assert bytes(peer.data) == data[7:] + b"!"
    assert done == [None]


def test_sendfile_from_a_pipe_falls_back(pair, run_until, reactor):
    transport, protocol, peer = pair()
    r, w = os.pipe()
    try:
        data = os.urandom(60_000)  # fits in the pipe buffer: no blocking writer needed
        os.write(w, data)
        os.close(w)
        w = -1
        done = []
        transport.sendfile(r, 0, len(data), on_done=done.append)
        transport.write(b"after")
        peer.start_reading()
        run_until(reactor, lambda: len(peer.data) == len(data) + 5 or protocol.lost)
        assert bytes(peer.data) == data + b"after"
        assert done == [None]
        assert not protocol.lost
    finally:
        os.close(r)
        if w != -1:
            os.close(w)


def test_sendfile_on_closing_transport(pair, reactor, tmp_path):
    transport, protocol, peer = pair()
    transport.close()
    done = []
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    with open(path, "rb") as f:
        transport.sendfile(f, on_done=done.append)
        assert done == []  # never from inside the call
        reactor.run_once(0)
    assert len(done) == 1 and done[0] is not None


# ------------------------------------------------------------- addresses
def test_peername_and_sockname(tcp_pair):
    transport, protocol, peer = tcp_pair()
    assert transport.peername == peer.sock.getsockname()
    assert transport.sockname == peer.sock.getpeername()


# -------------------------------------------------------- listen / connect
class EchoServer(Recorder):
    def data_received(self, data):
        super().data_received(data)
        self.transport.write(data)


class Client(Recorder):
    def __init__(self, payload: bytes) -> None:
        super().__init__()
        self.payload = payload

    def connection_made(self, transport):
        super().connection_made(transport)
        transport.write(self.payload)
        transport.write_eof()


def _roundtrip(reactor, run_until, connect_kwargs, payload=b"ping" * 1000):
    client = Client(payload)
    pending = connect(reactor, lambda: client, **connect_kwargs)
    run_until(reactor, lambda: client.lost or client.failed, 5)
    assert client.failed is None, client.failed
    assert client.exc is None
    assert bytes(client.data) == payload
    return pending


def test_listen_port_0_and_connect(reactor, run_until):
    servers: list[EchoServer] = []
    listener = listen(reactor, lambda: servers.append(EchoServer()) or servers[-1], "127.0.0.1", 0)
    try:
        assert listener.port and listener.port > 0
        assert listener.addresses == [("127.0.0.1", listener.port)]
        pending = _roundtrip(reactor, run_until, {"host": "127.0.0.1", "port": listener.port})
        assert pending.transport is not None
        run_until(reactor, lambda: servers and servers[0].lost)
        assert servers[0].events == ["CM", "DR", "ER", "CL"]
    finally:
        listener.close()


@pytest.mark.parametrize("where", ["tcp", "unix"])
def test_accepted_sockets_are_what_socket_accept_gives(reactor, run_until, tmp_path, where):
    # The listener accepts with its sockets' kinds read once (not socket.accept(), which
    # makes enums of them per connection): the same family, type and options.
    seen = []

    class Inspecting(EchoServer):
        def connection_made(self, transport):
            super().connection_made(transport)
            sock = transport.socket
            nodelay = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY) if where == "tcp" else None
            seen.append((sock.family, sock.type, sock.proto, sock.getblocking(), nodelay))

    kwargs = {"path": str(tmp_path / "s.sock")} if where == "unix" else {"host": "127.0.0.1", "port": 0}
    listener = listen(reactor, Inspecting, **kwargs)
    try:
        plain = socket.socket(listener.sockets[0].family, socket.SOCK_STREAM, listener.sockets[0].proto)
        plain.bind(str(tmp_path / "plain.sock") if where == "unix" else ("127.0.0.1", 0))
        plain.listen()
        with plain, socket.socket(plain.family) as client:
            client.connect(plain.getsockname())
            expected, _ = plain.accept()
        with expected:
            _roundtrip(reactor, run_until, {"path": kwargs["path"]} if where == "unix"
                       else {"host": "127.0.0.1", "port": listener.port})
            nodelay = 1 if where == "tcp" else None  # responses are written whole: Nagle off over TCP
            assert seen == [(expected.family, expected.type, expected.proto, False, nodelay)]
    finally:
        listener.close()


def test_listen_ipv6(reactor, run_until):
    if not socket.has_ipv6:
        pytest.skip("no IPv6")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError:
        pytest.skip("IPv6 loopback unavailable")
    listener = listen(reactor, EchoServer, "::1", 0)
    try:
        assert listener.addresses[0][0] == "::1"
        _roundtrip(reactor, run_until, {"host": "::1", "port": listener.port})
    finally:
        listener.close()


def test_listen_unix_path(reactor, run_until, tmp_path):
    path = str(tmp_path / "echo.sock")
    listener = listen(reactor, EchoServer, path=path)
    try:
        assert listener.port is None
        assert listener.addresses == [path]
        _roundtrip(reactor, run_until, {"path": path})
    finally:
        listener.close()
    assert not os.path.exists(path)
    # A stale socket file is replaced.
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(path)
    stale.close()
    listener = listen(reactor, EchoServer, path=path)
    try:
        _roundtrip(reactor, run_until, {"path": path})
    finally:
        listener.close()


def test_listen_on_bound_socket(reactor, run_until):
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    listener = listen(reactor, EchoServer, sock=sock)
    try:
        assert listener.port == port
        _roundtrip(reactor, run_until, {"host": "127.0.0.1", "port": port})
    finally:
        listener.close()
    assert sock.fileno() == -1


def test_listener_pause_and_resume_accepting(reactor, run_until):
    servers: list[EchoServer] = []
    listener = listen(reactor, lambda: servers.append(EchoServer()) or servers[-1], "127.0.0.1", 0)
    try:
        listener.pause_accepting()
        client = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
        with client:
            for _ in range(5):
                reactor.run_once(0.01)
            assert servers == []
            listener.resume_accepting()
            run_until(reactor, lambda: servers)
            servers[0].transport.abort()
            run_until(reactor, lambda: servers[0].lost)
    finally:
        listener.close()


def test_listener_accepts_at_most_accept_batch_per_readiness_event(reactor):
    servers: list[EchoServer] = []
    listener = listen(reactor, lambda: servers.append(EchoServer()) or servers[-1], "127.0.0.1", 0, accept_batch=2)
    # connect() returns once the kernel completed the handshake: all five are queued.
    clients = [socket.create_connection(("127.0.0.1", listener.port), timeout=5) for _ in range(5)]
    try:
        counts = []
        for _ in range(3):
            reactor.run_once(5)  # the listener is readable: this pass accepts
            counts.append(len(servers))
        assert counts == [2, 4, 5]
    finally:
        for client in clients:
            client.close()
        for server in servers:
            server.transport.abort()
        reactor.run_once(0)
        listener.close()


def test_listener_refuses_an_accept_batch_below_one(reactor):
    with pytest.raises(ValueError, match="accept_batch"):
        listen(reactor, EchoServer, "127.0.0.1", 0, accept_batch=0)


def test_connect_failure_calls_connection_failed(reactor, run_until):
    # A port that was bound and never listened on: nobody accepts there.
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]
    try:
        client = Recorder()
        connect(reactor, lambda: client, "127.0.0.1", port)
        assert client.events == []  # reported from the loop, not from inside connect()
        run_until(reactor, lambda: client.failed)
        assert client.events == ["CF"]
        assert isinstance(client.failed, OSError)
        assert client.failed.errno == errno.ECONNREFUSED
    finally:
        holder.close()


def test_connect_failure_default_logs_warning(reactor, run_until, caplog):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    try:
        with caplog.at_level(logging.WARNING, logger="evloop"):
            pending = connect(reactor, Protocol, "127.0.0.1", holder.getsockname()[1])
            run_until(reactor, lambda: "connection failed" in caplog.text)
        assert pending.transport is None
    finally:
        holder.close()


def test_connect_cancel(reactor, run_until):
    listener = listen(reactor, EchoServer, "127.0.0.1", 0)
    try:
        client = Recorder()
        pending = connect(reactor, lambda: client, "127.0.0.1", listener.port)
        pending.cancel()
        for _ in range(5):
            reactor.run_once(0.01)
        assert client.events == []
    finally:
        listener.close()


def test_listener_close_leaves_connections_open(reactor, run_until):
    servers: list[EchoServer] = []
    listener = listen(reactor, lambda: servers.append(EchoServer()) or servers[-1], "127.0.0.1", 0)
    client = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
    with client:
        run_until(reactor, lambda: servers)
        listener.close()
        listener.close()
        client.sendall(b"still here")
        run_until(reactor, lambda: servers[0].data == b"still here")
        assert client.recv(100) == b"still here"
        servers[0].transport.close()
        run_until(reactor, lambda: servers[0].lost)


# ------------------------------------------------------------------ EMFILE
EMFILE_CHILD = textwrap.dedent(
    """
    import os, resource, socket, sys, time
    from evloop import Protocol, Reactor, listen

    class Echo(Protocol):
        def connection_made(self, transport):
            self.transport = transport
        def data_received(self, data):
            self.transport.write(data)

    reactor = Reactor()
    listener = listen(reactor, Echo, "127.0.0.1", 0, backlog=64)
    # Use up every descriptor below a low limit.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (64, hard))
    hogs = []
    while True:
        try:
            hogs.append(os.open(os.devnull, os.O_RDONLY))
        except OSError:
            break
    print(listener.port, flush=True)
    # Clients are queued in the backlog now; accept() fails with EMFILE.
    sys.stdin.readline()
    cpu0 = time.process_time()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        reactor.run_once(0.05)
    cpu = time.process_time() - cpu0
    for fd in hogs:
        os.close(fd)
    print(f"cpu {cpu:.3f}", flush=True)
    # Serve until the test closes our stdin.
    def on_stdin():
        if not os.read(0, 100):
            reactor.stop()
    reactor.add_reader(0, on_stdin)
    reactor.call_later(8, reactor.stop)
    reactor.run()
    """
)


def test_emfile_on_accept_backs_off_and_recovers(tmp_path):
    script = tmp_path / "emfile_child.py"
    script.write_text(EMFILE_CHILD)
    proc = subprocess.Popen(
        [sys.executable, str(script)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    clients = []
    try:
        port = int(proc.stdout.readline())
        for _ in range(5):
            c = socket.create_connection(("127.0.0.1", port), timeout=5)
            c.sendall(b"hello")
            clients.append(c)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        line = proc.stdout.readline()
        assert line.startswith("cpu "), (line, proc.stderr.read() if proc.poll() is not None else "")
        cpu = float(line.split()[1])
        # One second of waiting with clients in the backlog: a spinning accept
        # loop would burn most of it.
        assert cpu < 0.3, cpu
        for c in clients:
            c.settimeout(5)
            assert c.recv(100) == b"hello"
    finally:
        for c in clients:
            c.close()
        proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    stderr = proc.stderr.read()
    proc.stderr.close()
    proc.stdout.close()
    assert stderr.count("accept() failed") == 1, stderr
    assert "Too many open files" in stderr


def test_listen_all_interfaces_port_0(reactor, run_until):
    listener = listen(reactor, EchoServer, None, 0)
    try:
        ports = {addr[1] for addr in listener.addresses}
        assert ports == {listener.port}
        _roundtrip(reactor, run_until, {"host": "127.0.0.1", "port": listener.port})
        if any(len(addr) == 4 for addr in listener.addresses):
            _roundtrip(reactor, run_until, {"host": "::1", "port": listener.port})
    finally:
        listener.close()


def test_listen_reuse_port(reactor, run_until):
    first = listen(reactor, EchoServer, "127.0.0.1", 0, reuse_port=True)
    second = listen(reactor, EchoServer, "127.0.0.1", first.port, reuse_port=True)
    try:
        assert second.port == first.port
        _roundtrip(reactor, run_until, {"host": "127.0.0.1", "port": first.port})
    finally:
        first.close()
        second.close()


def test_listen_on_used_port_raises_and_leaks_nothing(reactor):
    first = listen(reactor, EchoServer, "127.0.0.1", 0)
    try:
        with pytest.raises(OSError) as info:
            listen(reactor, EchoServer, "127.0.0.1", first.port)
        assert info.value.errno == errno.EADDRINUSE
    finally:
        first.close()


def test_data_received_exception_is_logged_and_connection_survives(pair, run_until, reactor, caplog):
    class Flaky(Recorder):
        def data_received(self, data):
            super().data_received(data)
            if data == b"bad":
                raise ValueError("bad data")

    transport, protocol, peer = pair(Flaky())
    with caplog.at_level(logging.ERROR, logger="evloop"):
        peer.sock.send(b"bad")
        run_until(reactor, lambda: protocol.data == b"bad")
    assert "ValueError" in caplog.text


def _recording_selector(selector_cls):
    class Recording(selector_cls):
        """Records the reactor's calls (not the ones a selector makes to itself)."""

        def __init__(self):
            super().__init__()
            self.calls: list[tuple[str, int, int]] = []
            self._inner = False

        def _record(self, name, fileobj, events, method, *args):
            if not self._inner:
                self.calls.append((name, _fd(fileobj), events))
            outer, self._inner = self._inner, True
            try:
                return method(fileobj, *args)
            finally:
                self._inner = outer

        def register(self, fileobj, events, data=None):
            return self._record("register", fileobj, events, super().register, events, data)

        def modify(self, fileobj, events, data=None):
            return self._record("modify", fileobj, events, super().modify, events, data)

        def unregister(self, fileobj):
            return self._record("unregister", fileobj, 0, super().unregister)

    return Recording()


def _fd(fileobj) -> int:
    return fileobj if isinstance(fileobj, int) else fileobj.fileno()


def test_write_interest_only_while_queued_and_unregister_before_close(selector_cls, run_until):
    import selectors

    selector = _recording_selector(selector_cls)
    with Reactor(selector) as reactor:
        a, b = socket.socketpair()
        small_buffers(a)
        protocol = Recorder()
        transport = SocketTransport(reactor, a, protocol)
        transport.start()
        fd = a.fileno()
        peer = Peer(reactor, b)
        for _ in range(10):
            transport.write(b"small")
        writes = [c for c in selector.calls if c[1] == fd and c[2] & selectors.EVENT_WRITE]
        assert writes == []  # everything went out at once: no selector change
        transport.write(os.urandom(2 * 1024 * 1024))
        writes = [c for c in selector.calls if c[1] == fd and c[2] & selectors.EVENT_WRITE]
        assert len(writes) == 1
        peer.start_reading()
        run_until(reactor, lambda: len(peer.data) == 50 + 2 * 1024 * 1024)
        run_until(reactor, lambda: transport.get_write_buffer_size() == 0)
        last = [c for c in selector.calls if c[1] == fd][-1]
        assert not last[2] & selectors.EVENT_WRITE  # write interest dropped once drained
        n_calls = len(selector.calls)
        transport.close()
        run_until(reactor, lambda: protocol.lost)
        fd_calls = [c for c in selector.calls[n_calls:] if c[1] == fd]
        # Unregistered while the descriptor was still open (fd recorded, not -1).
        assert fd_calls and fd_calls[-1][0] == "unregister"
        assert a.fileno() == -1
        peer.close()


def test_connect_resolution_failure_is_reported_through_protocol(reactor, run_until):
    client = Recorder()
    # An unknown service name fails in getaddrinfo without any DNS traffic.
    pending = connect(reactor, lambda: client, "127.0.0.1", "no-such-service-evloop")
    assert client.events == []
    run_until(reactor, lambda: client.failed)
    assert isinstance(client.failed, OSError)
    assert client.events == ["CF"]
    pending.cancel()  # harmless after failure


@pytest.mark.parametrize("bind_host", ["127.0.0.1", "0.0.0.0"])
def test_accepted_transports_know_their_local_address(reactor, run_until, bind_host):
    """A listener on one address hands its own address to the transports it accepts (no
    getsockname() each); on a wildcard each transport has the address it was reached at."""
    made: list[SocketTransport] = []

    class Keep(Protocol):
        def connection_made(self, transport):
            made.append(transport)

    listener = listen(reactor, Keep, bind_host, 0)
    port = listener.sockets[0].getsockname()[1]
    hosts = ("127.0.0.1", "127.0.0.2") if bind_host == "0.0.0.0" else ("127.0.0.1", "127.0.0.1")
    clients = [socket.create_connection((host, port)) for host in hosts]
    try:
        run_until(reactor, lambda: len(made) == 2)
        assert sorted(t.sockname for t in made) == sorted(c.getpeername() for c in clients)
        assert sorted(t.peername for t in made) == sorted(c.getsockname() for c in clients)
    finally:
        for client in clients:
            client.close()
        for transport in made:
            transport.abort()
        listener.close()


def test_a_transport_starts_only_on_an_open_reactor_and_ends_with_it(selector_cls):
    """start() tracks the transport for the reactor's close() (connection_lost before close() returns), and
    refuses a closing or closed reactor before connection_made: a connection_lost that starts a replacement
    during close() gets RuntimeError, as does a start after it."""
    reactor = Reactor(selector_cls())
    a, b = socket.socketpair()
    c, d = socket.socketpair()
    e, f = socket.socketpair()
    refused: list[BaseException] = []
    replacement = Recorder()

    class Replacing(Recorder):
        def connection_lost(self, exc):
            super().connection_lost(exc)
            try:
                SocketTransport(reactor, c, replacement).start()
            except RuntimeError as error:
                refused.append(error)

    protocol = Replacing()
    SocketTransport(reactor, a, protocol).start()
    reactor.run_once(0)
    reactor.close()
    assert protocol.events == ["CM", "CL"] and a.fileno() == -1
    assert len(refused) == 1 and replacement.events == []
    late = Recorder()
    with pytest.raises(RuntimeError):
        SocketTransport(reactor, e, late).start()
    assert late.events == []
    for sock in (b, c, d, e, f):
        sock.close()
