#!/usr/bin/env python3
"""The floor under evloop-demo: a loop that answers without any HTTP at all.

Run: python load/bench/floor.py [--duration S] [--rounds N] [--scenarios hello,pipeline16]

Two floors, each a server that counts the blank lines ending request heads
and writes that many copies of a fixed hello response (no parsing, no
objects, no app):

- ``floor`` (``--serve``): evloop's own reactor and ``SocketTransport``.  What
  it costs per request is the kernel's work (epoll, recv, send on loopback)
  plus the reactor's, so the difference to ``evloop-demo`` is the cost of
  evloop's HTTP layer and app per request.
- ``floor-selectors`` (``--serve-selectors``): the bare pure-Python loop on
  the standard library's ``selectors`` that the performance issues name as
  the floor (a ``DefaultSelector``, non-blocking sockets, ``recv``/``send``,
  no reactor).  It is the yardstick of issue 20's "hello-ka at least 0.75x
  the floor"; both are reported because a faster reactor raises the first
  floor with evloop, and only the second is fixed.

Measured beside ``evloop-demo`` with the same wrk set-up as ``run.py``
(server on CPU 0, wrk on CPU 1, the same scenarios).  It reports; it asserts
nothing.
"""

from __future__ import annotations

import argparse
import email.utils
import os
import statistics
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO))


def _hello_response() -> bytes:
    return (b"HTTP/1.1 200 OK\r\nServer: evloop\r\nDate: " + email.utils.formatdate(usegmt=True).encode()
            + b"\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")


def serve_selectors() -> None:
    """The bare ``selectors`` loop: accept, read, count heads, write, nothing else."""
    import selectors
    import socket

    response = _hello_response()
    selector = selectors.DefaultSelector()
    server = socket.create_server(("127.0.0.1", 0), backlog=2048)
    server.setblocking(False)
    rest: dict[socket.socket, bytes] = {}
    unsent: dict[socket.socket, bytes] = {}

    def close(conn: socket.socket) -> None:
        selector.unregister(conn)
        rest.pop(conn, None)
        unsent.pop(conn, None)
        conn.close()

    def flush(conn: socket.socket, data: bytes) -> None:
        try:
            sent = conn.send(data)
        except BlockingIOError:
            sent = 0
        if sent < len(data):  # the peer reads slower than it asks: wait for room
            unsent[conn] = data[sent:]
            selector.modify(conn, selectors.EVENT_READ | selectors.EVENT_WRITE, serve_connection)
        elif conn in unsent:
            del unsent[conn]
            selector.modify(conn, selectors.EVENT_READ, serve_connection)

    def serve_connection(conn: socket.socket, mask: int) -> None:
        if mask & selectors.EVENT_WRITE and conn in unsent:
            flush(conn, unsent[conn])
        if not mask & selectors.EVENT_READ:
            return
        try:
            data = conn.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            close(conn)
            return
        if conn in rest:
            data = rest.pop(conn) + data
        heads = data.count(b"\r\n\r\n")
        tail = data[data.rfind(b"\r\n\r\n") + 4:] if heads else data
        if tail:
            rest[conn] = tail
        if heads:
            flush(conn, unsent.pop(conn, b"") + response * heads)

    def accept(sock: socket.socket, mask: int) -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            conn.setblocking(False)
            conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            selector.register(conn, selectors.EVENT_READ, serve_connection)

    selector.register(server, selectors.EVENT_READ, accept)
    print(f"serving on port {server.getsockname()[1]}", flush=True)
    while True:
        for key, mask in selector.select():
            key.data(key.fileobj, mask)


def serve() -> None:
    from evloop import Protocol, listen
    from evloop.reactor import Reactor

    response = _hello_response()

    class FixedResponses(Protocol):
        __slots__ = ("transport", "rest")

        def connection_made(self, transport):  # type: ignore[override]
            self.transport = transport
            self.rest = b""

        def data_received(self, data: bytes) -> None:
            if self.rest:
                data = self.rest + data
            heads = data.count(b"\r\n\r\n")
            if heads:
                self.rest = data[data.rfind(b"\r\n\r\n") + 4:]
                self.transport.write(response * heads)
            else:
                self.rest = data

    reactor = Reactor()
    listener = listen(reactor, FixedResponses, "127.0.0.1", 0, backlog=2048)
    print(f"serving on port {listener.port}", flush=True)
    reactor.run()


def main() -> None:
    if sys.argv[1:2] == ["--serve"]:
        serve()
        return
    if sys.argv[1:2] == ["--serve-selectors"]:
        serve_selectors()
        return
    import run as bench  # load/bench/run.py: wrk, pinning, CPU accounting

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--scenarios", default="hello,pipeline16")
    args = parser.parse_args()
    bench.PIN = (os.cpu_count() or 1) >= 2
    if bench.PIN:
        os.sched_setaffinity(0, {int(bench.CLIENT_CPU)})
    servers = {
        "floor": [sys.executable, str(Path(__file__).resolve()), "--serve"],
        "floor-selectors": [sys.executable, str(Path(__file__).resolve()), "--serve-selectors"],
        "evloop": [sys.executable, "-m", "evloop.demo", "--no-access-log", "--port", "0", "--backlog", "2048"],
    }
    env = dict(os.environ, PYTHONPATH=str(REPO))
    workdir = Path(tempfile.mkdtemp(prefix="evloop-floor-"))
    per_cpu: dict[tuple[str, str], list[float]] = {}
    with open(workdir / "servers.log", "ab") as log:
        for _ in range(args.rounds):
            for scenario in args.scenarios.split(","):
                opts = bench.SCENARIOS[scenario][2]
                for name, argv in servers.items():
                    server = bench.Server(name, argv, env, log)
                    try:
                        server.wait_ready()
                        result = bench.measure_wrk(server, opts, args.duration, 1, workdir)
                    finally:
                        server.stop()
                    per_cpu.setdefault((scenario, name), []).append(result["per_cpu"])
    print(f"median of {args.rounds} rounds of {args.duration} s; server on CPU {bench.SERVER_CPU}, wrk on "
          f"CPU {bench.CLIENT_CPU}")
    print(f"{'scenario':12s} {'server':16s} {'req/CPU-s':>10s} {'us/req':>7s} {'evloop/this':>12s} "
          f"{'evloop - this us':>17s}")
    for scenario in args.scenarios.split(","):
        evloop = statistics.median(per_cpu[scenario, "evloop"])
        for name in servers:
            figure = statistics.median(per_cpu[scenario, name])
            print(f"{scenario:12s} {name:16s} {figure:10,.0f} {1e6 / figure:7.2f} {evloop / figure:11.2f}x "
                  f"{1e6 / evloop - 1e6 / figure:17.2f}")
    # The servers of a round run one after another, minutes apart at most: a round's own ratio is less
    # moved by the machine's speed than a ratio of medians taken over all rounds (run.py reports them so).
    print("evloop/this per round (the median of the rounds' ratios first):")
    for scenario in args.scenarios.split(","):
        for name in servers:
            if name != "evloop":
                ratios = [a / b for a, b in zip(per_cpu[scenario, "evloop"], per_cpu[scenario, name], strict=True)]
                print(f"{scenario:12s} {name:16s} {statistics.median(ratios):.2f}x  "
                      + ", ".join(f"{r:.2f}" for r in ratios))


if __name__ == "__main__":
    main()
