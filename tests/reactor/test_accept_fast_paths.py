"""The accept path's two speed-ups, each against the plain path, for every selector class.

- A listener's transport reads once before its socket is watched
  (``SocketTransport.start(read_first=True)``, then ``_read_first()`` once
  what was queued is accepted): a request that came with the connection is
  served in the accept's callback.
- A TCP listener on Linux asks the kernel whether connections are left in
  its queue (TCP_INFO), instead of accepting until an accept fails (EAGAIN).
- A TCP listener on Linux sets TCP_NODELAY on its listening socket, which
  its connections inherit, instead of on each connection.

Either way the protocol must see the same calls and bytes, and no
connection may wait for a readiness event that never comes.
"""

from __future__ import annotations

import os
import socket

import pytest

import evloop.listener
from evloop import Protocol, SocketTransport, listen


class Echo(Protocol):
    """Records its calls; echoes what it gets; closes after ``close_after`` bytes (None: never)."""

    def __init__(self, close_after: int | None = None) -> None:
        self.close_after = close_after
        self.events: list[str] = []
        self.data = bytearray()
        self.transport: SocketTransport | None = None

    def connection_made(self, transport):
        self.transport = transport
        self.events.append("CM")

    def data_received(self, data):
        self.data += data
        if self.events[-1] != "DR":
            self.events.append("DR")
        self.transport.write(data)
        if self.close_after is not None and len(self.data) >= self.close_after:
            self.transport.close()

    def eof_received(self):
        self.events.append("ER")
        return None

    def connection_lost(self, exc):
        self.events.append("CL")

    @property
    def lost(self) -> bool:
        return "CL" in self.events


class Keep(Echo):
    """Keeps what it gets, echoes nothing."""

    def data_received(self, data):
        self.data += data


def _recv_all(sock: socket.socket) -> bytes:
    sock.settimeout(5)
    got = bytearray()
    while chunk := sock.recv(65536):
        got += chunk
    return bytes(got)


@pytest.mark.parametrize("read_first", [True, False], ids=["read-first", "plain"])
@pytest.mark.parametrize("story", ["sent-with-connect", "sent-later", "sent-and-shut", "shut-at-once"])
def test_an_accepted_connection_is_served_the_same_with_or_without_the_first_read(reactor, run_until, read_first,
                                                                                  story):
    """The same calls in the same order whether the first bytes are read before the socket is watched or after."""
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname(), timeout=5)
    with server, client:
        if story in ("sent-with-connect", "sent-and-shut"):
            client.sendall(b"hello")
        if story in ("sent-and-shut", "shut-at-once"):
            client.shutdown(socket.SHUT_WR)
        conn, addr = server.accept()
        protocol = Echo(close_after=5 if story != "shut-at-once" else None)
        transport = SocketTransport(reactor, conn, protocol, peername=addr)
        transport.start(read_first=read_first)
        if read_first:
            transport._read_first()  # what the listener does once it accepted what was queued
        if story == "sent-later":
            reactor.run_once(0)  # nothing came: the socket is watched, and nothing is lost
            assert protocol.events == ["CM"]
            client.sendall(b"hello")
        run_until(reactor, lambda: protocol.lost)
        echoed = _recv_all(client)
    expected = {"sent-with-connect": ["CM", "DR", "CL"], "sent-later": ["CM", "DR", "CL"],
                "sent-and-shut": ["CM", "DR", "CL"], "shut-at-once": ["CM", "ER", "CL"]}[story]
    assert protocol.events == expected
    assert echoed == (b"" if story == "shut-at-once" else b"hello")


def test_a_request_sent_with_the_connect_is_answered_without_watching_the_socket(reactor, run_until, monkeypatch):
    """The README's claim: served in the accept's own callback, the socket never registered with the selector."""
    watched: list[object] = []
    add_reader = reactor.add_reader
    monkeypatch.setattr(reactor, "add_reader", lambda f, *args: (watched.append(f), add_reader(f, *args)))
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname(), timeout=5)
    with server, client:
        client.sendall(b"hello")
        conn, addr = server.accept()
        protocol = Echo(close_after=5)
        transport = SocketTransport(reactor, conn, protocol, peername=addr)
        transport.start(read_first=True)
        transport._read_first()  # as the listener calls them
        assert protocol.events[:2] == ["CM", "DR"]  # answered before any pass of the loop
        run_until(reactor, lambda: protocol.lost)  # the close that Echo asked for
        assert _recv_all(client) == b"hello"
    assert watched == []


def test_a_first_read_leaves_the_rest_to_readiness(reactor, run_until):
    """More than one read's worth sent with the connect: the first read takes some, readiness the rest."""
    server = socket.create_server(("127.0.0.1", 0))
    client = socket.create_connection(server.getsockname(), timeout=5)
    payload = bytes(range(256)) * 4096  # 1 MiB: more than the reactor's read buffer takes at once
    with server, client:
        conn, addr = server.accept()
        client.setblocking(False)
        sent = 0
        try:
            while sent < len(payload):
                sent += client.send(payload[sent:])
        except BlockingIOError:
            pass
        received = Keep()
        transport = SocketTransport(reactor, conn, received, peername=addr)
        transport.start(read_first=True)
        transport._read_first()
        client.setblocking(True)
        client.sendall(payload[sent:])
        run_until(reactor, lambda: len(received.data) == len(payload))
        transport.abort()
        run_until(reactor, lambda: received.lost)
    assert bytes(received.data) == payload


def _close_all(reactor, listener, clients, servers) -> None:
    for client in clients:
        client.close()
    for server in servers:
        server.transport.abort()
    reactor.run_once(0)
    listener.close()


@pytest.fixture(params=["queue-length", "until-eagain"])
def accept_path(request, monkeypatch):
    """The listener's two ways to know when to stop accepting; the plain one forced on TCP sockets too."""
    if request.param == "until-eagain":
        monkeypatch.setattr(evloop.listener, "_tells_queue", lambda sock: False)
    return request.param


@pytest.mark.parametrize("batch", [128, 2])
def test_queued_connections_are_accepted_in_batches_and_none_waits(reactor, accept_path, batch):
    """Five queued connections: accepted in passes of ``batch``; one that comes after them is accepted too."""
    servers: list[Echo] = []

    def factory() -> Echo:
        servers.append(Echo())
        return servers[-1]

    listener = listen(reactor, factory, "127.0.0.1", 0, accept_batch=batch)
    clients = [socket.create_connection(("127.0.0.1", listener.port), timeout=5) for _ in range(5)]
    try:
        counts = []
        while len(servers) < 5:
            reactor.run_once(5)  # the listener is readable: each pass accepts
            counts.append(len(servers))
        assert counts == ([5] if batch >= 5 else [2, 4, 5])
        clients.append(socket.create_connection(("127.0.0.1", listener.port), timeout=5))
        reactor.run_once(5)
        assert len(servers) == 6
    finally:
        _close_all(reactor, listener, clients, servers)


def test_a_connection_queued_while_the_accept_callback_runs_is_accepted_in_the_same_pass(reactor, accept_path):
    """As with accepting until EAGAIN: the queue is asked again once what it said was there is accepted."""
    servers: list[Echo] = []
    clients: list[socket.socket] = []

    def factory() -> Echo:
        servers.append(Echo())
        if len(servers) == 1:  # the second client connects while the first is being set up
            clients.append(socket.create_connection(("127.0.0.1", listener.port), timeout=5))
        return servers[-1]

    listener = listen(reactor, factory, "127.0.0.1", 0)
    clients.append(socket.create_connection(("127.0.0.1", listener.port), timeout=5))
    try:
        reactor.run_once(5)
        assert len(servers) == 2
    finally:
        _close_all(reactor, listener, clients, servers)


def test_connections_queued_together_are_all_made_before_the_first_bytes_are_read(reactor, accept_path):
    """As readiness would have it: the first client's bytes are read once every queued connection is made."""
    servers: list[Echo] = []
    seen_at_first_read: list[int] = []

    class Counting(Echo):
        def data_received(self, data):
            seen_at_first_read.append(len(servers))
            super().data_received(data)

    def factory() -> Echo:
        servers.append(Counting())
        return servers[-1]

    listener = listen(reactor, factory, "127.0.0.1", 0)
    clients = [socket.create_connection(("127.0.0.1", listener.port), timeout=5) for _ in range(3)]
    clients[0].sendall(b"first")
    try:
        reactor.run_once(5)
        assert len(servers) == 3
        assert seen_at_first_read == [3]
    finally:
        _close_all(reactor, listener, clients, servers)


def test_a_tcp_listener_on_linux_reads_its_queue_length(monkeypatch):
    """The fast path is taken where it exists (so the tests above test it), and reads the kernel's count."""
    server = socket.create_server(("127.0.0.1", 0), backlog=16)
    with server:
        if not evloop.listener._tells_queue(server):
            pytest.skip("TCP_INFO does not give the accept queue's length here (not Linux)")
        clients = [socket.create_connection(server.getsockname(), timeout=5) for _ in range(3)]
        try:
            assert evloop.listener._queued(server) == 3
            server.accept()[0].close()
            assert evloop.listener._queued(server) == 2
        finally:
            for client in clients:
                client.close()


@pytest.mark.parametrize("host", ["127.0.0.1", "::1"])
@pytest.mark.parametrize("nodelay", ["inherited", "per-connection"])
def test_every_accepted_tcp_connection_has_nagle_off(reactor, run_until, monkeypatch, host, nodelay):
    """TCP_NODELAY on each accepted connection, whether inherited from the listening socket or set on it."""
    if nodelay == "per-connection":
        monkeypatch.setattr(evloop.listener, "_passes_nodelay_on", lambda sock: False)
    if host == "::1" and not socket.has_ipv6:
        pytest.skip("no IPv6")
    servers: list[Echo] = []

    def factory() -> Echo:
        servers.append(Echo())
        return servers[-1]

    try:
        listener = listen(reactor, factory, host, 0)
    except OSError:
        pytest.skip(f"cannot bind {host}")
    clients = [socket.create_connection((host, listener.port), timeout=5) for _ in range(3)]
    try:
        run_until(reactor, lambda: len(servers) == 3)
        for server in servers:
            assert server.transport.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            assert server.transport.socket.getblocking() is False
    finally:
        _close_all(reactor, listener, clients, servers)


@pytest.mark.parametrize("asked", ["while-open", "after-close"])
def test_a_listeners_connection_hands_out_a_socket_socket_and_is_served_the_same(reactor, run_until, asked):
    """A listener's transports hold the plain C socket (``net/tcp.py`` ``PlainSocket``) and hand out a
    ``socket.socket`` all the same: one object for ``socket`` and ``get_extra_info("socket")``, open and
    non-blocking while the connection is, closed after it.  Asked for mid-connection, reading, writing and
    closing go on through it; the next connections (which may get the same descriptor number) are served too."""
    servers: list[Echo] = []

    def factory() -> Echo:
        servers.append(Echo(close_after=10))
        return servers[-1]

    listener = listen(reactor, factory, "127.0.0.1", 0)
    try:
        for round_ in range(3):
            with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as client:
                client.sendall(b"hello")
                run_until(reactor, lambda n=round_: len(servers) > n and servers[n].data == b"hello")
                server = servers[round_]
                transport = server.transport
                if asked == "while-open":
                    sock = transport.get_extra_info("socket")
                    assert type(sock) is socket.socket and transport.socket is sock
                    assert sock.fileno() >= 0 and sock.getblocking() is False
                    assert sock.getsockname() == client.getpeername()
                    assert sock.getpeername() == client.getsockname()
                client.sendall(b"world")
                run_until(reactor, lambda s=server: s.lost)
                assert _recv_all(client) == b"helloworld"
            sock = transport.socket
            assert type(sock) is socket.socket and sock.fileno() == -1
            assert transport.get_extra_info("socket") is sock
            assert server.events == ["CM", "DR", "CL"]
    finally:
        listener.close()


class Gather(Echo):
    """Answers each piece with ``writelines`` (several chunks: the gathered write) and half-closes after
    ``close_after`` bytes (``write_eof``: a shutdown, which needs the socket object)."""

    def data_received(self, data):
        self.data += data
        self.transport.writelines([b"<", bytes(data), b">"])
        if self.close_after is not None and len(self.data) >= self.close_after:
            self.transport.write_eof()

    def eof_received(self):
        self.transport.close()
        return None


def _open_descriptors() -> int:
    return len(os.listdir("/proc/self/fd"))


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc/self/fd")
@pytest.mark.parametrize("host", ["127.0.0.1", "0.0.0.0"], ids=["one-address", "wildcard"])
def test_a_listener_on_one_address_hands_its_transports_the_bare_descriptor(reactor, run_until, host):
    """On one address a listener's transports get the accepted descriptor alone (no socket object, whose
    making asks the kernel for the local address: ``net/tcp.py``), on a wildcard the plain C socket; both are
    non-blocking, know both addresses, write single and gathered pieces, half-close and close the same, and
    leave no descriptor open.  Nobody asks for the socket here, so the bare descriptor is all the first kind
    ever holds until the half-close makes the socket object it shuts down."""
    servers: list[Gather] = []

    def factory() -> Gather:
        servers.append(Gather(close_after=10))
        return servers[-1]

    listener = listen(reactor, factory, host, 0)
    before = _open_descriptors()
    try:
        for round_ in range(3):
            with socket.create_connection(("127.0.0.1", listener.port), timeout=5) as client:
                client.sendall(b"hello")
                run_until(reactor, lambda n=round_: len(servers) > n and servers[n].data == b"hello")
                transport = servers[round_].transport
                assert (transport._sock is None) == (host == "127.0.0.1")
                assert os.get_blocking(transport._fd) is False
                assert transport.get_extra_info("sockname") == client.getpeername()
                assert transport.get_extra_info("peername") == client.getsockname()
                client.sendall(b"world")
                run_until(reactor, lambda t=transport: t._eof_written)
                assert _recv_all(client) == b"<hello><world>"  # ended by the server's write_eof
            run_until(reactor, lambda s=servers[round_]: s.lost)
            assert transport.socket.fileno() == -1
        assert _open_descriptors() == before
    finally:
        listener.close()


def test_a_stop_request_from_a_first_read_leaves_the_later_connections_watched(reactor, run_until):
    """SystemExit from the second of three connections' first reads goes out of the pass; the third, whose
    first read did not run, is watched all the same: its bytes are read on a later pass, as the first's are."""
    servers: list[Echo] = []

    class Stopping(Echo):
        def data_received(self, data):
            super().data_received(data)
            if len(servers) == 3 and self is servers[1] and self.data == b"1":
                raise SystemExit("stop")

    def factory() -> Echo:
        servers.append(Stopping())
        return servers[-1]

    listener = listen(reactor, factory, "127.0.0.1", 0)
    clients = [socket.create_connection(("127.0.0.1", listener.port), timeout=5) for _ in range(3)]
    for i, client in enumerate(clients):
        client.sendall(b"%d" % i)
    try:
        with pytest.raises(SystemExit):
            reactor.run_once(5)
        assert len(servers) == 3 and [s.data for s in servers] == [b"0", b"1", b""]
        for client in clients:
            client.sendall(b"+")
        run_until(reactor, lambda: servers[0].data == b"0+" and servers[2].data == b"2+")
    finally:
        _close_all(reactor, listener, clients, servers)
