#!/usr/bin/env python3
"""The floor under evloop-demo: its own reactor and transport, with no HTTP at all.

Run: python load/bench/floor.py [--duration S] [--rounds N] [--scenarios hello,pipeline16]

The floor server (``--serve``) is evloop's reactor and ``SocketTransport``
with a protocol that counts the blank lines ending request heads and writes
that many copies of a fixed hello response: no parsing, no objects, no app.
What it costs per request is the kernel's work (epoll, recv, send on
loopback) plus the reactor's.  Measured beside ``evloop-demo`` with the
same wrk set-up as ``run.py`` (server on CPU 0, wrk on CPU 1, the same
scenarios), the difference is the cost of evloop's HTTP layer and app per
request.  It reports; it asserts nothing.
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


def serve() -> None:
    from evloop import Protocol, listen
    from evloop.reactor import Reactor

    response = (b"HTTP/1.1 200 OK\r\nServer: evloop\r\nDate: " + email.utils.formatdate(usegmt=True).encode()
                + b"\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, World!")

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
    print(f"{'scenario':12s} {'floor req/CPU-s':>16s} {'evloop req/CPU-s':>17s} {'floor us':>9s} "
          f"{'evloop us':>10s} {'HTTP layer us':>14s}")
    for scenario in args.scenarios.split(","):
        floor = statistics.median(per_cpu[scenario, "floor"])
        evloop = statistics.median(per_cpu[scenario, "evloop"])
        print(f"{scenario:12s} {floor:16,.0f} {evloop:17,.0f} {1e6 / floor:9.2f} {1e6 / evloop:10.2f} "
              f"{1e6 / evloop - 1e6 / floor:14.2f}")


if __name__ == "__main__":
    main()
