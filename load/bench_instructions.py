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
         "wsgi-keepalive": 1, "wsgi-pipelined": 16, "wsgi-unique": 1, "wsgi-keepalive-log": 1,
         "flask-keepalive": 1}
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


def drive(case: str, reads: int, manual_clock: bool = False) -> None:
    """The measured workload (run inside valgrind)."""
    from bench_glue import make_protocol

    from evloop.clock import ManualClock
    from evloop.reactor import Reactor

    hello = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n"
    if case.startswith("echo4k"):
        reads_data = [b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Length: 4096\r\n\r\n"
                      + b"e" * 4096] * reads
    elif case.startswith("browser"):
        sys.path.insert(0, str(PEERS.parent))
        from browser import head

        reads_data = [head(i, "127.0.0.1:8080") for i in range(1, reads + 1)]
    elif case.endswith(("unique", "unique-log")):
        reads_data = [b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nX-Request-Id: %d\r\n\r\n" % i for i in range(reads)]
    else:
        reads_data = [hello * CASES[case]] * reads
    with Reactor(clock=ManualClock() if manual_clock else None) as reactor:
        metrics = case.endswith("-metrics")
        protocol = make_protocol(reactor, access_log=case.endswith("-log") or metrics, metrics=metrics,
                                 app=app_for(case))
        for _ in range(200):
            protocol.data_received(hello)  # warm up: caches, the parser's cache of heads
        for data in reads_data:
            protocol.data_received(data)


def instructions(case: str, reads: int, manual_clock: bool) -> int:
    out = subprocess.run(
        ["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable, __file__,
         "--drive", case, str(reads), *(["--manual-clock"] if manual_clock else [])],
        capture_output=True, text=True, check=True,
    )
    match = re.search(r"refs:\s*([\d,]+)", out.stderr)
    if match is None:
        raise RuntimeError(f"no instruction count from valgrind: {out.stderr[-500:]}")
    return int(match.group(1).replace(",", ""))


def main() -> None:
    if sys.argv[1:2] == ["--drive"]:
        drive(sys.argv[2], int(sys.argv[3]), manual_clock="--manual-clock" in sys.argv[4:])
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
        per_request = (instructions(case, more, manual_clock) - instructions(case, fewer, manual_clock)) / extra
        print(f"{case:10s} {per_request:9,.0f}")


if __name__ == "__main__":
    main()
