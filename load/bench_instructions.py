"""Instructions per request of the server glue, counted by valgrind: a figure that noise cannot move.

Run: .venv/bin/python load/bench_instructions.py [--reads FEWER MORE] [--manual-clock] [CASE ...]

Cases: ``keepalive`` (one hello request per read), ``pipelined`` (16 per
read), ``unique`` (one per read, a different head each time), ``echo4k`` (a
``POST /echo`` with a 4 KiB body per read: the small-body path), and each
again with ``-log``: the access log on, as the default server has it; ``-metrics``:
the access log and ``--metrics-path`` on.  The
``browser`` case sends the ``browser-unique`` scenario's heads
(``load/bench/browser.py``: ~730 bytes, 12 fields, the path, query, referer
and cookie new on every request) to ``/items/{item_id}``.  The
``close`` cases (``close``, ``wsgi-close``) make a new connection for each
request, which asks for ``Connection: close``: what a connection costs the
glue (its protocol, state machine, deadline, request) besides its request;
accepting and closing the socket are the reactor's, which
``load/server_instructions.py close`` counts.  The
``wsgi-`` cases serve the same requests from the raw WSGI app of
``load/bench/peers/wsgi_app.py`` through ``evloop.wsgi.WSGIApp`` (as
``evloop-demo --wsgi wsgi_app:app`` does), ``flask-keepalive`` from the Flask
hello-world of ``load/bench/peers/flask_app.py``.  Each case
drives ``evloop.server.HTTPProtocol`` with its app through a transport
that only counts bytes (as ``load/bench_glue.py`` does), under
``valgrind --tool=callgrind``, twice with different request counts; the
difference divided by the extra requests is the count per request, start-up
excluded.  On a shared machine wall and CPU times move by tens of percent
between runs; instruction counts repeat to a few parts in ten thousand, so
they show what a change to the hot path did.  Needs valgrind (Debian package
``valgrind``).  It measures; it asserts nothing.

``--manual-clock``: the reactor reads a clock that never moves.  Under
valgrind a request takes ~50 times as long, so the access log's durations
spread over thousands of microsecond values and its cache of their texts
misses where a real run hits (a ``-log`` figure moved by 300-1,000
instructions between runs); with this option every duration is 0 and the
``-log`` figures repeat.  Use it to compare two builds' log path, not for
figures of a whole request (the clock read itself costs a little differently).
"""

import re
import shutil
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

# case -> requests per read; "-log": with the access log on (the default configuration)
CASES = {"keepalive": 1, "pipelined": 16, "unique": 1, "echo4k": 1, "browser": 1, "browser-log": 1,
         "keepalive-log": 1, "pipelined-log": 16, "unique-log": 1, "echo4k-log": 1,
         "keepalive-metrics": 1, "pipelined-metrics": 16,
         "close": 1, "wsgi-keepalive": 1, "wsgi-pipelined": 16, "wsgi-unique": 1, "wsgi-keepalive-log": 1,
         "wsgi-close": 1, "wsgi-echo4k": 1, "flask-keepalive": 1}
PEERS = Path(__file__).resolve().parent / "bench" / "peers"  # the apps the load/bench peers serve
FEWER, MORE = 1000, 3000  # reads in the two runs (--reads)


def app_for(case: str) -> object:
    """The case's app: None (the demo app), or a WSGI peer app in ``WSGIApp``."""
    if not case.startswith(("wsgi-", "flask-")):
        return None
    from evloop.wsgi import WSGIApp

    sys.path.insert(0, str(PEERS))
    if case.startswith("flask-"):
        from flask_app import app as flask_app

        return WSGIApp(flask_app)
    from wsgi_app import app as raw_app

    return WSGIApp(raw_app)


def drive_connections(case: str, reads: int, manual_clock: bool) -> None:
    """The close cases: each request on a connection of its own, closed after the response."""
    from bench_glue import CountingTransport

    from evloop.clock import ManualClock
    from evloop.reactor import Reactor
    from evloop.server import HTTPProtocol, Server, ServerConfig

    class ClosingTransport(CountingTransport):
        """A connection that the server closes after its one response."""

        def __init__(self, protocol: HTTPProtocol) -> None:
            super().__init__()
            self.protocol = protocol
            self.closed = False

        def close(self) -> None:
            if not self.closed:
                self.closed = True
                self.protocol.connection_lost(None)
                self.protocol = None  # as SocketTransport lets go of its protocol

        abort = close

        def is_closing(self) -> bool:
            return self.closed

    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nConnection: close\r\n\r\n"
    with Reactor(clock=ManualClock() if manual_clock else None) as reactor:
        app = app_for(case)
        if app is None:
            from evloop.demo import make_app

            app = make_app(None)
        server = Server(app, reactor, ServerConfig(access_log=False))
        for _ in range(200 + reads):  # 200 to warm up
            protocol = HTTPProtocol.for_connection(server)  # as the listener makes them: reused once closed
            transport = ClosingTransport(protocol)
            protocol.connection_made(transport)  # type: ignore[arg-type]
            protocol.data_received(request)
            if not transport.closed:
                raise RuntimeError("the server kept the connection open")
            del protocol, transport  # a closed connection's protocol is held by nothing, as in the server


def drive(case: str, reads: int, made: int, manual_clock: bool = False) -> None:
    """The measured workload (run inside valgrind): ``reads`` reads of ``made`` made.

    Both runs of a case make the same number of reads (the larger count), so
    the difference leaves out making them: a browser head cost the script
    ~19,500 instructions of string formatting, counted as the server's before.
    """
    from bench_glue import make_protocol

    from evloop.clock import ManualClock
    from evloop.reactor import Reactor

    if case.endswith("close"):
        drive_connections(case, reads, manual_clock)
        return
    hello = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
    if "echo4k" in case:
        reads_data = [b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 4096\r\n\r\n"
                      + b"e" * 4096] * made
    elif case.startswith("browser"):
        sys.path.insert(0, str(PEERS.parent))
        from browser import head

        reads_data = [head(i, "127.0.0.1:8080") for i in range(1, made + 1)]
    elif case.endswith(("unique", "unique-log")):
        reads_data = [b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Request-Id: %d\r\n\r\n" % i for i in range(made)]
    else:
        reads_data = [hello * CASES[case]] * made
    with Reactor(clock=ManualClock() if manual_clock else None) as reactor:
        metrics = case.endswith("-metrics")
        protocol = make_protocol(reactor, access_log=case.endswith("-log") or metrics, metrics=metrics,
                                 app=app_for(case))
        for _ in range(200):
            protocol.data_received(hello)  # warm up: caches, the parser's cache of heads
        for data in reads_data[:reads]:
            protocol.data_received(data)


def instructions(case: str, reads: int, made: int, manual_clock: bool) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
         "--drive", case, str(reads), str(made), *(["--manual-clock"] if manual_clock else [])],
        capture_output=True, text=True, check=True,
    )
    match = re.search(r"refs:\s*([\d,]+)", out.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count from valgrind: {out.stderr[-500:]}")
    return int(match.group(1).replace(",", ""))


def main() -> None:
    if sys.argv[1:2] == ["--drive"]:
        drive(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), manual_clock="--manual-clock" in sys.argv[5:])
        return
    if shutil.which("valgrind") is None:
        sys.exit("valgrind is not installed (apt-get install valgrind)")
    args = sys.argv[1:]
    manual_clock = "--manual-clock" in args
    args = [arg for arg in args if arg != "--manual-clock"]
    fewer, more = FEWER, MORE
    if args[:1] == ["--reads"]:
        fewer, more = int(args[1]), int(args[2])
        args = args[3:]
    for case in args:
        if case not in CASES:
            sys.exit(f"unknown case {case!r}; known: {', '.join(CASES)}")
    print(f"python {sys.version.split()[0]}, instructions per request (valgrind callgrind, "
          f"{fewer} and {more} reads, difference{', manual clock' if manual_clock else ''})")
    for case in args or list(CASES):
        extra = (more - fewer) * CASES[case]
        per_request = (instructions(case, more, more, manual_clock)
                       - instructions(case, fewer, more, manual_clock)) / extra
        print(f"{case:10s} {per_request:9,.0f}")


if __name__ == "__main__":
    main()
