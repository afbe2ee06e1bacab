"""An echo server on port 0 with 1,000 concurrent client connections, every byte checked."""

from __future__ import annotations

import random
import resource
import subprocess
import sys
import textwrap
import time

import pytest

from evloop import Protocol, Reactor, connect, listen

N_CLIENTS = 1000


@pytest.fixture(autouse=True)
def enough_descriptors():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 4 * N_CLIENTS + 100
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"RLIMIT_NOFILE hard limit {hard} is below {need}")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


class EchoServer(Protocol):
    open_now = 0
    max_open = 0
    bytes_echoed = 0

    def connection_made(self, transport):
        self.transport = transport
        cls = type(self)
        cls.open_now += 1
        cls.max_open = max(cls.max_open, cls.open_now)

    def data_received(self, data):
        type(self).bytes_echoed += len(data)
        self.transport.write(data)

    def eof_received(self):
        return False

    def connection_lost(self, exc):
        type(self).open_now -= 1


CLIENT_SCRIPT = textwrap.dedent(
    """
    import os, random, resource, selectors, socket, sys, time
    port, n, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 4 * n + 100)), hard))
    rng = random.Random(seed)
    sel = selectors.DefaultSelector()
    conns = []
    for i in range(n):
        s = socket.socket()
        s.setblocking(False)
        s.connect_ex(("127.0.0.1", port))
        payload = rng.randbytes(rng.randint(1, 32 * 1024))
        c = {"sock": s, "payload": payload, "sent": 0, "got": bytearray(), "eof": False}
        conns.append(c)
        sel.register(s, selectors.EVENT_READ | selectors.EVENT_WRITE, c)
    deadline = time.monotonic() + 40
    # Phase 1: every client sends its payload and reads its echo, with all
    # connections open at once (nobody closes before everyone is echoed).
    echoed = 0
    while echoed < n:
        if time.monotonic() > deadline:
            print("timeout in phase 1", echoed, flush=True)
            sys.exit(2)
        for key, mask in sel.select(1.0):
            c = key.data
            s = c["sock"]
            if mask & selectors.EVENT_WRITE:
                try:
                    c["sent"] += s.send(c["payload"][c["sent"]:c["sent"] + 65536])
                except (BlockingIOError, InterruptedError):
                    pass
                if c["sent"] == len(c["payload"]):
                    sel.modify(s, selectors.EVENT_READ, c)
            if mask & selectors.EVENT_READ:
                try:
                    data = s.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                if not data:
                    print("early EOF", flush=True)
                    sys.exit(3)
                c["got"] += data
                if len(c["got"]) >= len(c["payload"]):
                    if c["got"] != c["payload"]:
                        print("mismatch", flush=True)
                        sys.exit(4)
                    sel.unregister(s)
                    echoed += 1
    # Phase 2: half-close every connection; the server closes after EOF.
    for c in conns:
        c["sock"].shutdown(socket.SHUT_WR)
        sel.register(c["sock"], selectors.EVENT_READ, c)
    closed = 0
    while closed < n:
        if time.monotonic() > deadline:
            print("timeout in phase 2", closed, flush=True)
            sys.exit(5)
        for key, mask in sel.select(1.0):
            c = key.data
            data = c["sock"].recv(65536)
            if data:
                print("unexpected data", flush=True)
                sys.exit(6)
            sel.unregister(c["sock"])
            c["sock"].close()
            closed += 1
    total = sum(len(c["payload"]) for c in conns)
    print("ok", n, total, flush=True)
    """
)


def test_echo_1000_concurrent_clients_in_subprocess(tmp_path):
    EchoServer.open_now = EchoServer.max_open = EchoServer.bytes_echoed = 0
    script = tmp_path / "clients.py"
    script.write_text(CLIENT_SCRIPT)
    with Reactor() as reactor:
        listener = listen(reactor, EchoServer, "127.0.0.1", 0)
        proc = subprocess.Popen(
            [sys.executable, str(script), str(listener.port), str(N_CLIENTS), "1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            deadline = time.monotonic() + 45
            while proc.poll() is None and time.monotonic() < deadline:
                reactor.run_once(0.05)
            # Let the last connection_lost callbacks run.
            end = time.monotonic() + 5
            while EchoServer.open_now and time.monotonic() < end:
                reactor.run_once(0.05)
        finally:
            if proc.poll() is None:
                proc.kill()
            out, err = proc.communicate(timeout=10)
            listener.close()
    assert proc.returncode == 0, (out, err)
    _, n, total = out.split()
    assert int(n) == N_CLIENTS
    assert EchoServer.bytes_echoed == int(total)
    assert EchoServer.max_open == N_CLIENTS
    assert EchoServer.open_now == 0


class EchoClient(Protocol):
    results: list[EchoClient] = []

    def __init__(self, payload: bytes) -> None:
        self.payload = payload
        self.got = bytearray()
        self.lost = False
        self.failed: BaseException | None = None
        self.exc: BaseException | None = None

    def connection_made(self, transport):
        self.transport = transport
        view = memoryview(self.payload)
        # Several writes, so the transport's queue and coalescing are used.
        for i in range(0, len(view), 5000):
            transport.write(view[i:i + 5000])
        transport.write_eof()

    def data_received(self, data):
        self.got += data

    def connection_lost(self, exc):
        self.exc = exc
        self.lost = True

    def connection_failed(self, exc):
        self.failed = exc
        self.lost = True


def test_echo_1000_concurrent_evloop_clients_same_reactor():
    EchoServer.open_now = EchoServer.max_open = EchoServer.bytes_echoed = 0
    rng = random.Random(2)
    clients = [EchoClient(rng.randbytes(rng.randint(1, 16 * 1024))) for _ in range(N_CLIENTS)]
    with Reactor() as reactor:
        listener = listen(reactor, EchoServer, "127.0.0.1", 0, backlog=2048)
        try:
            for client in clients:
                connect(reactor, lambda c=client: c, "127.0.0.1", listener.port)
            deadline = time.monotonic() + 30
            while not all(c.lost for c in clients) and time.monotonic() < deadline:
                reactor.run_once(0.05)
            while EchoServer.open_now and time.monotonic() < deadline:
                reactor.run_once(0.05)
        finally:
            listener.close()
    failed = [c.failed for c in clients if c.failed]
    assert not failed, failed[:3]
    assert all(c.lost for c in clients)
    assert all(c.exc is None for c in clients)
    assert all(bytes(c.got) == c.payload for c in clients)
    assert EchoServer.bytes_echoed == sum(len(c.payload) for c in clients)
    assert EchoServer.open_now == 0
