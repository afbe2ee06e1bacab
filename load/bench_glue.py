"""Per-request cost of the HTTP server glue, without sockets or a kernel.

Run: .venv/bin/python load/bench_glue.py [N] [--profile]

Drives ``evloop.server.HTTPProtocol`` with the demo app through a transport
that only counts bytes, so the figure is the Python work of one keep-alive
request: parse, Request, routing, response framing, the next cycle.  Two
cases: the same head each time (served from the parser's cache of validated
heads) and a different head each time (parsed in full).  ``--profile`` prints
a cProfile of the repeated case.  It measures; it asserts nothing.
"""

import cProfile
import os
import pstats
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from evloop.demo import make_app  # noqa: E402
from evloop.reactor import Reactor  # noqa: E402
from evloop.server import HTTPProtocol, Server, ServerConfig  # noqa: E402


class CountingTransport:
    """Just enough of SocketTransport for HTTPProtocol: writes are counted, not sent."""

    peername = ("127.0.0.1", 40000)
    sockname = ("127.0.0.1", 8080)

    def __init__(self) -> None:
        self.written = 0

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def get_write_buffer_size(self) -> int:
        return 0

    def is_closing(self) -> bool:
        return False

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def close(self) -> None:
        raise AssertionError("the benchmark connection must stay open")

    abort = close


def make_protocol(reactor: Reactor, access_log: bool = False, metrics: bool = False, app: Any = None) -> HTTPProtocol:
    """An HTTPProtocol serving ``app`` (default: the demo app), connected to a CountingTransport.

    ``access_log``: on, as evloop-demo has it by default: lines formatted and
    sent through the buffered handler into /dev/null (written when 64 KiB are waiting, as
    nothing here lets the loop go idle).  ``metrics``: ``--metrics-path /metrics`` on.
    """
    if access_log:
        import logging

        from evloop.server import install_access_handler

        install_access_handler(open(os.devnull, "w"))  # noqa: SIM115 (lives as long as the process)
        # evloop-demo's root logger is at INFO (--log-level): without this the
        # lines would be dropped before they are formatted.
        logging.getLogger("evloop.access").setLevel(logging.INFO)
    server = Server(make_app(None) if app is None else app, reactor,
                    ServerConfig(access_log=access_log, metrics_path="/metrics" if metrics else None))
    protocol = HTTPProtocol(server)
    protocol.connection_made(CountingTransport())  # type: ignore[arg-type]
    return protocol


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 100_000
    with Reactor() as reactor:
        protocol = make_protocol(reactor)
        hello = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
        unique = [b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Request-Id: %d\r\n\r\n" % i for i in range(n)]
        for _ in range(10_000):
            protocol.data_received(hello)  # warm up
        if "--profile" in sys.argv:
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(n):
                protocol.data_received(hello)
            profile.disable()
            pstats.Stats(profile).sort_stats("tottime").print_stats(15)
            return
        for name, requests in (("same head each time", [hello] * n), ("different head each time", unique)):
            best = min(_timed(protocol, requests) for _ in range(3))
            print(f"hello keep-alive, {name:26s} {best * 1e6:6.2f} us/request (CPU time, best of 3)")
        pipelined = hello * 16
        t0 = time.process_time()
        for _ in range(n // 16):
            protocol.data_received(pipelined)
        print(f"hello pipelined 16 per read, same head   {(time.process_time() - t0) / n * 1e6:6.2f} us/request")


def _timed(protocol: HTTPProtocol, requests: list[bytes]) -> float:
    t0 = time.process_time()
    for request in requests:
        protocol.data_received(request)
    return (time.process_time() - t0) / len(requests)


if __name__ == "__main__":
    main()
