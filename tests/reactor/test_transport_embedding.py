"""Transports for embedders: the write funnel, sendfile, closing, extra info, Unix
abstract names, and connect() with Happy Eyeballs, timeouts and futures."""

from __future__ import annotations

import array
import errno
import gc
import os
import socket
import time

import pytest

from evloop import CancelledError, ManualClock, Protocol, Reactor, SocketTransport, connect, listen


class Recorder(Protocol):
    def __init__(self) -> None:
        self.events: list[str] = []
        self.data = bytearray()
        self.transport: SocketTransport | None = None
        self.exc: BaseException | None = None
        self.failed: BaseException | None = None

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("CM")

    def data_received(self, data):
        self.data += data

    def connection_lost(self, exc):
        self.events.append("CL")
        self.exc = exc

    def connection_failed(self, exc):
        self.events.append("CF")
        self.failed = exc


def _pair(reactor: Reactor, protocol: Protocol | None = None, **kwargs):
    a, b = socket.socketpair()
    a.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    b.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16 * 1024)
    protocol = protocol or Recorder()
    transport = SocketTransport(reactor, a, protocol, **kwargs)
    transport.start()
    b.setblocking(False)
    return transport, protocol, b


def _drain(reactor, sock, want: int, run_until) -> bytes:
    got = bytearray()

    def read():
        try:
            got.extend(sock.recv(1 << 20))
        except BlockingIOError:
            pass

    reactor.add_reader(sock, read)
    try:
        run_until(reactor, lambda: len(got) >= want, timeout_s=20)
    finally:
        reactor.remove_reader(sock)
    return bytes(got)


# ------------------------------------------------------- the write funnel
def test_write_of_a_wide_item_view_sends_every_byte(reactor, run_until):
    transport, _, peer = _pair(reactor)
    with peer:
        payload = memoryview(array.array("i", range(1_000_000)))  # 4 bytes an item
        expected = payload.tobytes()
        transport.write(payload)  # partial send: the rest must be sliced by bytes
        # Counted in bytes: most of the 4 MB is still queued behind a 16 KiB socket buffer.
        assert len(expected) // 2 < transport.get_write_buffer_size() < len(expected)
        got = _drain(reactor, peer, len(expected), run_until)
        assert got == expected  # every byte, not every item
        transport.abort()
        reactor.run_once(0)


def test_writelines_of_mixed_buffers_counts_bytes(reactor, run_until):
    transport, _, peer = _pair(reactor)
    with peer:
        chunks = [b"head", memoryview(array.array("d", [1.5] * 200_000)), array.array("H", range(50_000)),
                  memoryview(bytes(range(256)) * 4000).cast("B", (1000, 1024))]
        expected = b"".join(bytes(memoryview(c)) if not isinstance(c, bytes) else c for c in chunks)
        transport.writelines(chunks)
        assert transport.get_write_buffer_size() <= len(expected)
        assert _drain(reactor, peer, len(expected), run_until) == expected
        transport.abort()
        reactor.run_once(0)


# -------------------------------------------------------- sendfile's on_done
def test_sendfile_on_done_is_never_called_inside_the_call(reactor, tmp_path):
    transport, _, peer = _pair(reactor)
    with peer:
        path = tmp_path / "small"
        path.write_bytes(b"x" * 100)  # fits the socket buffer: sent inside sendfile()
        done = []
        with open(path, "rb") as f:
            transport.sendfile(f, on_done=done.append)
            assert done == []  # not from inside the call, though the file went out whole
            reactor.run_once(0)
            assert done == [None]
            transport.sendfile(f, offset=100, on_done=done.append)  # nothing to send
            assert done == [None]
            reactor.run_once(0)
            assert done == [None, None]
        assert peer.recv(1000) == b"x" * 100
        transport.abort()
        reactor.run_once(0)


# ----------------------------------------------------------------- closing
def test_close_with_timeout_aborts_a_peer_that_stopped_reading():
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        transport, protocol, peer = _pair(reactor)
        with peer:
            transport.write(b"x" * 4_000_000)  # the peer never reads
            transport.close(timeout_s=30)
            reactor.run_once(0)
            assert protocol.events == ["CM"]
            clock.advance(29.9)
            reactor.run_once(0)
            assert protocol.events == ["CM"]
            clock.advance(0.2)
            reactor.run_once(0)
            reactor.run_once(0)
            assert protocol.events == ["CM", "CL"]
            assert isinstance(protocol.exc, TimeoutError)


def test_close_with_timeout_that_drains_in_time(reactor, run_until):
    transport, protocol, peer = _pair(reactor)
    with peer:
        transport.write(b"y" * 200_000)
        transport.close(timeout_s=60)
        _drain(reactor, peer, 200_000, run_until)
        run_until(reactor, lambda: "CL" in protocol.events)
        assert protocol.exc is None
        assert reactor.stats().timers_pending == 0  # the close timer was cancelled


def test_reactor_close_ends_transports_and_listeners(selector_cls):
    gc.collect()
    fds_before = len(os.listdir("/proc/self/fd"))
    reactor = Reactor(selector_cls())
    server_side: list[Recorder] = []

    def factory():
        server_side.append(Recorder())
        return server_side[-1]

    listener = listen(reactor, factory, "127.0.0.1", 0)
    port = listener.port
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    deadline = time.monotonic() + 5
    while not server_side and time.monotonic() < deadline:
        reactor.run_once(0.05)
    transport, protocol, peer = _pair(reactor)
    transport.write(b"z" * 4_000_000)  # queued bytes are dropped
    reactor.close()
    assert protocol.events == ["CM", "CL"]
    assert server_side[0].events == ["CM", "CL"]
    assert transport.is_closing()
    client.settimeout(5)
    assert client.recv(10) == b""  # the server side of the connection is closed
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=5)
    client.close()
    peer.close()
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) <= fds_before


def test_connection_lost_runs_once_when_the_reactor_closes_after_a_close(selector_cls):
    reactor = Reactor(selector_cls())
    transport, protocol, peer = _pair(reactor)
    transport.abort()  # connection_lost is queued for the next pass ...
    reactor.close()  # ... which never comes: close() calls it
    assert protocol.events == ["CM", "CL"]
    peer.close()


# ------------------------------------------------------------ extra info
def test_get_extra_info(reactor, run_until):
    listener = listen(reactor, Recorder, "127.0.0.1", 0)
    client = Recorder()
    pending = connect(reactor, lambda: client, "127.0.0.1", listener.port)
    transport = reactor.run_until_complete(pending.future, timeout_s=5)
    assert transport.get_extra_info("peername") == ("127.0.0.1", listener.port)
    assert transport.get_extra_info("sockname") == transport.socket.getsockname()
    assert transport.get_extra_info("socket") is transport.socket
    assert transport.get_extra_info("ssl_object") is None
    assert transport.get_extra_info("nothing", "fallback") == "fallback"
    transport.close()
    listener.close()
    reactor.run_once(0)


# ------------------------------------------------------- abstract Unix names
def test_abstract_unix_socket_listen_and_connect(reactor):
    name = f"\0evloop-test-{os.getpid()}-{time.monotonic_ns()}"
    server_side: list[Recorder] = []

    def factory():
        server_side.append(Recorder())
        return server_side[-1]

    listener = listen(reactor, factory, path=name)  # no file to replace or remove
    try:
        client = Recorder()
        pending = connect(reactor, lambda: client, path=name)
        transport = reactor.run_until_complete(pending.future, timeout_s=5)
        transport.write(b"hello")
        deadline = time.monotonic() + 5
        while not (server_side and server_side[0].data == b"hello") and time.monotonic() < deadline:
            reactor.run_once(0.05)
        assert server_side[0].data == b"hello"
        transport.close()
    finally:
        listener.close()  # must not try to unlink a file
    reactor.run_once(0)


# -------------------------------------------------------------- connect()
def test_connect_future_and_callbacks(reactor):
    listener = listen(reactor, Recorder, "127.0.0.1", 0)
    client = Recorder()
    pending = connect(reactor, lambda: client, "127.0.0.1", listener.port)
    assert client.events == [] and not pending.done()
    transport = reactor.run_until_complete(pending.future, timeout_s=5)
    assert client.events == ["CM"] and client.transport is transport is pending.transport
    transport.close()
    listener.close()
    reactor.run_once(0)


def test_connect_failure_fails_the_future_too(reactor):
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    port = holder.getsockname()[1]  # bound, not listening: refused
    with holder:
        client = Recorder()
        pending = connect(reactor, lambda: client, "127.0.0.1", port)
        with pytest.raises(ConnectionRefusedError):
            reactor.run_until_complete(pending.future, timeout_s=5)
        assert client.events == ["CF"] and isinstance(client.failed, ConnectionRefusedError)


def test_connect_with_an_existing_socket(reactor):
    a, b = socket.socketpair()
    with b:
        client = Recorder()
        pending = connect(reactor, lambda: client, sock=a)
        assert client.events == []  # from the loop, not inside connect()
        transport = reactor.run_until_complete(pending.future, timeout_s=5)
        assert transport.socket is a
        b.sendall(b"ping")
        deadline = time.monotonic() + 5
        while client.data != b"ping" and time.monotonic() < deadline:
            reactor.run_once(0.05)
        assert client.data == b"ping"
        transport.close()
        reactor.run_once(0)


def test_connect_local_addr(reactor):
    listener = listen(reactor, Recorder, "127.0.0.1", 0)
    local = socket.socket()
    local.bind(("127.0.0.1", 0))
    local_port = local.getsockname()[1]
    local.close()
    client = Recorder()
    pending = connect(reactor, lambda: client, "127.0.0.1", listener.port, local_addr=("127.0.0.1", local_port))
    transport = reactor.run_until_complete(pending.future, timeout_s=5)
    assert transport.get_extra_info("sockname") == ("127.0.0.1", local_port)
    transport.close()
    listener.close()
    reactor.run_once(0)


def _black_hole(family: int, host: str) -> tuple[socket.socket, list[socket.socket], int]:
    """A listening socket whose accept queue is full: further SYNs go unanswered, connects hang."""
    listener = socket.socket(family, socket.SOCK_STREAM)
    listener.bind((host, 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    fillers = []
    for _ in range(8):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setblocking(False)
        s.connect_ex((host, port))
        fillers.append(s)
    return listener, fillers, port


def _hangs(family: int, host: str, port: int) -> bool:
    probe = socket.socket(family, socket.SOCK_STREAM)
    probe.settimeout(0.3)
    try:
        probe.connect((host, port))
        return False
    except TimeoutError:
        return True
    except OSError:
        return False
    finally:
        probe.close()


def test_connect_timeout_on_the_reactor_clock():
    listener, fillers, port = _black_hole(socket.AF_INET, "127.0.0.1")
    try:
        if not _hangs(socket.AF_INET, "127.0.0.1", port):
            pytest.skip("this kernel answers SYNs past a full accept queue")
        clock = ManualClock()
        with Reactor(clock=clock) as reactor:
            client = Recorder()
            pending = connect(reactor, lambda: client, "127.0.0.1", port, timeout_s=10)
            reactor.run_once(0)
            clock.advance(9.9)
            reactor.run_once(0)
            assert client.events == []
            clock.advance(0.2)
            reactor.run_once(0)
            assert client.events == ["CF"] and isinstance(client.failed, TimeoutError)
            with pytest.raises(TimeoutError):
                pending.future.result()
    finally:
        for s in fillers:
            s.close()
        listener.close()


def _resolver_for(addresses):
    def resolve(host, port, family, type_):
        return [(fam, socket.SOCK_STREAM, 6, "", (addr, port) if fam == socket.AF_INET else (addr, port, 0, 0))
                for fam, addr in addresses]
    return resolve


_V6, _V4 = (socket.AF_INET6, "::1"), (socket.AF_INET, "127.0.0.1")


@pytest.mark.parametrize("first, second", [(_V6, _V4), (_V4, _V6)], ids=["IPv6-first", "IPv4-first"])
def test_happy_eyeballs_falls_back_after_the_stagger_delay(first, second):
    """The resolver's first family is tried first (RFC 8305 section 4; getaddrinfo's RFC 6724
    order usually puts IPv6 there); it hangs; 250 ms later on the reactor's clock the other
    family is tried and wins."""
    hole, fillers, port = _black_hole(*first)
    good = socket.socket(second[0], socket.SOCK_STREAM)
    try:
        try:
            good.bind((second[1], port))
        except OSError:
            pytest.skip("the port is taken in the other family")
        good.listen(8)
        if not _hangs(first[0], first[1], port):
            pytest.skip("this kernel answers SYNs past a full accept queue")
        clock = ManualClock()
        with Reactor(clock=clock) as reactor:
            client = Recorder()
            pending = connect(reactor, lambda: client, "dual.example", port, resolver=_resolver_for([first, second]))
            for _ in range(5):
                reactor.run_once(0.02)
            assert client.events == []  # the first hangs, the second not started yet
            clock.advance(0.25)
            transport = reactor.run_until_complete(pending.future, timeout_s=5)
            assert transport.get_extra_info("peername")[0] == second[1]
            assert client.events == ["CM"]
            transport.close()
            reactor.run_once(0)
    finally:
        good.close()
        for s in fillers:
            s.close()
        hole.close()


def test_happy_eyeballs_moves_on_at_once_when_an_attempt_fails(reactor):
    refused = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    refused.bind(("::1", 0))
    port = refused.getsockname()[1]  # bound, not listening: refused at once
    good = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        try:
            good.bind(("127.0.0.1", port))
        except OSError:
            pytest.skip("the port is taken on IPv4")
        good.listen(8)
        client = Recorder()
        started = time.monotonic()
        pending = connect(reactor, lambda: client, "dual.example", port, happy_eyeballs_delay_s=30,
                          resolver=_resolver_for([(socket.AF_INET6, "::1"), (socket.AF_INET, "127.0.0.1")]))
        transport = reactor.run_until_complete(pending.future, timeout_s=5)
        assert time.monotonic() - started < 5  # did not wait for the 30 s stagger
        assert transport.get_extra_info("peername")[0] == "127.0.0.1"
        transport.close()
        reactor.run_once(0)
    finally:
        good.close()
        refused.close()


def test_every_address_failing_reports_them_all(reactor):
    socks = []
    addresses = []
    for family, host in ((socket.AF_INET6, "::1"), (socket.AF_INET, "127.0.0.1")):
        s = socket.socket(family, socket.SOCK_STREAM)
        s.bind((host, 0))
        socks.append(s)
        addresses.append((family, host, s.getsockname()[1]))
    try:
        def resolve(host, port, family, type_):
            return [(fam, socket.SOCK_STREAM, 6, "", (h, p) if fam == socket.AF_INET else (h, p, 0, 0))
                    for fam, h, p in addresses]

        client = Recorder()
        pending = connect(reactor, lambda: client, "dual.example", 1, resolver=resolve)
        with pytest.raises(OSError) as info:
            reactor.run_until_complete(pending.future, timeout_s=5)
        assert "::1" in str(info.value) and "127.0.0.1" in str(info.value)
        assert client.events == ["CF"]
    finally:
        for s in socks:
            s.close()


def test_cancel_guarantees_no_later_callback(reactor):
    hole, fillers, port = _black_hole(socket.AF_INET, "127.0.0.1")
    try:
        gc.collect()
        fds = len(os.listdir("/proc/self/fd"))
        client = Recorder()
        pending = connect(reactor, lambda: client, "127.0.0.1", port, timeout_s=0.05)
        reactor.run_once(0)
        pending.cancel()
        assert pending.future.cancelled()
        with pytest.raises(CancelledError):
            pending.future.result()
        deadline = time.monotonic() + 0.3
        while time.monotonic() < deadline:
            reactor.run_once(0.05)  # past the timeout that would have failed it
        assert client.events == []
        assert len(os.listdir("/proc/self/fd")) <= fds
        pending.cancel()  # harmless twice
    finally:
        for s in fillers:
            s.close()
        hole.close()


def test_cancel_right_after_connect_even_before_the_loop_runs(reactor):
    listener = listen(reactor, Recorder, "127.0.0.1", 0)
    client = Recorder()
    pending = connect(reactor, lambda: client, "127.0.0.1", listener.port)
    pending.cancel()
    for _ in range(5):
        reactor.run_once(0.01)
    assert client.events == []
    listener.close()


def test_resolution_error_is_reported_from_the_loop(reactor):
    def failing(host, port, family, type_):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    client = Recorder()
    pending = connect(reactor, lambda: client, "nowhere.invalid", 80, resolver=failing)
    assert client.events == []
    with pytest.raises(socket.gaierror):
        reactor.run_until_complete(pending.future, timeout_s=5)
    assert client.events == ["CF"]


# ----------------------------------------------------------- more edges
def test_an_on_done_that_raises_does_not_stop_an_abort(reactor, tmp_path, caplog):
    transport, protocol, peer = _pair(reactor)
    with peer:
        path = tmp_path / "big"
        path.write_bytes(os.urandom(4 * 1024 * 1024))
        later = []

        def failing(exc):
            raise RuntimeError("on_done failed")

        with open(path, "rb") as f:
            transport.sendfile(f, on_done=failing)
            transport.sendfile(f, on_done=later.append)
            transport.abort()  # nothing of on_done runs in here
            with caplog.at_level("ERROR", logger="evloop"):
                reactor.run_once(0)
                reactor.run_once(0)
        assert protocol.events == ["CM", "CL"]
        assert len(later) == 1 and later[0] is not None
        assert "on_done failed" in caplog.text


def test_close_timeout_on_a_transport_already_closing():
    clock = ManualClock()
    with Reactor(clock=clock) as reactor:
        transport, protocol, peer = _pair(reactor)
        with peer:
            transport.write(b"x" * 4_000_000)  # the peer never reads
            transport.close()  # no bound ...
            transport.close(timeout_s=5)  # ... until a later close gives one
            transport.close(timeout_s=60)  # a later, longer one does not extend it
            clock.advance(5.1)
            reactor.run_once(0)
            reactor.run_once(0)
            assert protocol.events == ["CM", "CL"] and isinstance(protocol.exc, TimeoutError)


def test_close_rejects_a_bad_timeout_before_changing_anything(reactor, run_until):
    transport, protocol, peer = _pair(reactor)
    with peer:
        with pytest.raises(ValueError):
            transport.close(timeout_s=float("nan"))
        assert not transport.is_closing()
        transport.close()
        run_until(reactor, lambda: "CL" in protocol.events)


def test_a_read_only_view_of_a_mutable_buffer_is_copied_when_queued(reactor, run_until):
    transport, _, peer = _pair(reactor)
    with peer:
        buffer = bytearray(b"a" * 1_000_000)
        transport.write(memoryview(buffer).toreadonly())  # most of it is queued
        buffer[:] = b"b" * 1_000_000  # the caller reuses its buffer
        assert _drain(reactor, peer, 1_000_000, run_until) == b"a" * 1_000_000
        transport.abort()
        reactor.run_once(0)


def test_connect_with_a_bad_local_addr_fails_through_the_callbacks(reactor):
    listener = listen(reactor, Recorder, "127.0.0.1", 0)
    client = Recorder()
    pending = connect(reactor, lambda: client, "127.0.0.1", listener.port, local_addr=("127.0.0.1", "not a port"))
    with pytest.raises(TypeError):
        reactor.run_until_complete(pending.future, timeout_s=5)
    assert client.events == ["CF"]
    listener.close()


def test_a_resolver_error_of_any_kind_is_reported_from_the_loop(reactor):
    def bad_name(host, port, family, type_):
        raise UnicodeError("label empty or too long")

    client = Recorder()
    pending = connect(reactor, lambda: client, "a..b", 80, resolver=bad_name)  # connect() itself does not raise
    with pytest.raises(UnicodeError):
        reactor.run_until_complete(pending.future, timeout_s=5)
    assert client.events == ["CF"]


def test_connect_to_a_unix_socket_with_a_full_backlog_fails(reactor, tmp_path):
    path = str(tmp_path / "full.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(0)
    fillers = []
    try:
        for _ in range(64):
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            s.setblocking(False)
            fillers.append(s)
            if s.connect_ex(path) == errno.EAGAIN:
                break
        else:
            pytest.skip("this kernel never refuses a Unix connection with EAGAIN")
        client = Recorder()
        pending = connect(reactor, lambda: client, path=path)
        with pytest.raises(OSError):
            reactor.run_until_complete(pending.future, timeout_s=5)
        assert client.events == ["CF"]  # not connection_made then connection_lost
    finally:
        for s in fillers:
            s.close()
        server.close()


def test_connect_argument_errors_are_raised_at_once(reactor):
    a, b = socket.socketpair()
    with a, b:
        with pytest.raises(ValueError):
            connect(reactor, Recorder, "127.0.0.1", 1, sock=a)
        with pytest.raises(ValueError):
            connect(reactor, Recorder, path="/tmp/x", sock=a)
        with pytest.raises(ValueError):
            connect(reactor, Recorder, "127.0.0.1", 1, timeout_s=float("nan"))
        with pytest.raises(ValueError):
            connect(reactor, Recorder, "127.0.0.1", 1, happy_eyeballs_delay_s=-1)


def test_sendfile_on_done_is_called_when_the_reactor_closes(selector_cls, tmp_path):
    reactor = Reactor(selector_cls())
    transport, protocol, peer = _pair(reactor)
    with peer:
        path = tmp_path / "big"
        path.write_bytes(os.urandom(8 * 1024 * 1024))
        done = []
        with open(path, "rb") as f:
            transport.sendfile(f, on_done=done.append)
            reactor.close()  # no later pass: on_done must still come, so the file can be closed
        assert len(done) == 1 and done[0] is not None
        assert protocol.events == ["CM", "CL"]


def test_sendfile_after_write_eof_is_refused(reactor, tmp_path):
    transport, _, peer = _pair(reactor)
    with peer:
        transport.write_eof()
        path = tmp_path / "f"
        path.write_bytes(b"abc")
        with open(path, "rb") as f, pytest.raises(RuntimeError):
            transport.sendfile(f)
        transport.abort()
        reactor.run_once(0)


def test_a_forked_subprocess_can_be_handed_a_connection(reactor, run_until):
    """The at-fork hook leaves connections alone: preexec_fn makes subprocess run it."""
    import subprocess
    import sys

    transport, _, peer = _pair(reactor)
    with peer:
        peer.setblocking(True)
        peer.sendall(b"hello through the child\n")
        proc = subprocess.run(
            [sys.executable, "-c", "import sys; sys.stdout.write(sys.stdin.readline())"],
            stdin=transport.get_extra_info("socket"), capture_output=True, timeout=20, preexec_fn=os.getpid,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout == b"hello through the child\n"
        transport.abort()
        reactor.run_once(0)


def test_reactor_fork_child_does_not_keep_the_parents_connections_open(selector_cls, wait_child):
    with Reactor(selector_cls()) as reactor:
        transport, _, peer = _pair(reactor)
        with peer:
            r, w = os.pipe()
            pid = reactor.fork()
            if pid == 0:
                os.close(w)
                os.read(r, 1)  # stay alive until the parent has looked
                os._exit(0)
            os.close(r)
            try:
                transport.close()
                reactor.run_once(0)  # connection_lost, then the socket is closed
                peer.settimeout(5)
                assert peer.recv(10) == b""  # EOF now, although the child is still alive
            finally:
                os.write(w, b"x")
                os.close(w)
                assert wait_child(pid) == 0


def test_cancelling_the_future_gives_up_the_connection(reactor):
    listener = listen(reactor, Recorder, "127.0.0.1", 0)
    client = Recorder()
    gc.collect()
    fds = len(os.listdir("/proc/self/fd"))
    pending = connect(reactor, lambda: client, "127.0.0.1", listener.port)
    pending.future.cancel()  # as an asyncio user would
    for _ in range(10):
        reactor.run_once(0.01)
    assert client.events == [] and pending.done() and pending.transport is None
    assert len(os.listdir("/proc/self/fd")) <= fds + 1  # the listener may hold the accepted side
    listener.close()
    reactor.run_once(0)


def test_connect_refuses_a_socket_that_is_not_a_stream(reactor):
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    with udp, pytest.raises(ValueError):
        connect(reactor, Recorder, sock=udp)
