"""User-space instructions per request of the whole evloop-demo process, counted by valgrind.

Run: .venv/bin/python load/server_instructions.py [--src DIR] [--counts FEWER MORE] [--keep DIR] CASE [-- DEMO ARGS...]

Cases: ``keepalive`` (one hello request at a time on one connection),
``pipelined`` (16 hello requests per send), ``browser`` (the ``browser-unique``
scenario's heads, ``load/bench/browser.py``, one at a time on one connection), ``close`` (a new connection per
``Connection: close`` request, one at a time), ``echo4k`` (a ``POST /echo``
with a 4 KiB body at a time on one connection), ``bytes1m`` (``GET
/bytes/1048576`` on one connection: the figure is per MiB), ``static-small`` (a
2 KiB file of ``--root``, one at a time on one connection), ``static-304`` (that file
revalidated with its ``ETag`` in ``If-None-Match``), ``ws16`` and ``ws4k``
(16-byte and 4 KiB text messages echoed on ``/ws/echo``, one at a time).  The
``tls-`` cases run the server with ``--certfile``/``--keyfile`` (an ECDSA
P-256 certificate made for the run, as load/bench/run.py makes it) and drive
it with Python's ``ssl`` over TLS 1.3: ``tls-keepalive`` and ``tls-bytes1m``
as their plain cases, and ``tls-handshake``, ``close`` over TLS (each
connection a full handshake: the client offers no session, as ``openssl
s_time -new``).  The ``wsgi-`` cases (``wsgi-keepalive``, ``wsgi-close``,
``wsgi-echo4k``) send the same requests to the raw WSGI app of ``load/bench/peers/wsgi_app.py``
(``evloop-demo --wsgi wsgi_app:app``), ``flask-keepalive`` and ``flask-close``
to the Flask app of ``load/bench/peers/flask_app.py``.  ``conns50`` and
``conns1000`` (and their ``wsgi-`` forms) hold that many keep-alive
connections open and, each round, send one hello request on every one of
them before reading the answers, as wrk keeps every connection busy: epoll
returns many ready connections a pass.  Both runs open the same connections,
so the figure is per request; ``conns1000`` against ``conns50`` is what the
count of open connections costs a request.  They run with an hour's header
and keep-alive timeouts: under valgrind a round of 1,000 requests outlasts
the default 5 s, and wrk's connections never idle that long.

Where ``load/bench_instructions.py`` counts the HTTP glue alone, this runs
``python -m evloop.demo`` itself under ``valgrind --tool=callgrind`` and
drives it over loopback sockets: the reactor's passes, the transports'
system-call wrappers, the access log (on unless ``--no-access-log`` is passed
after ``--``) and the glue.  Two runs with different counts; the difference
divided by the extra requests is the figure, start-up and shutdown excluded.
The kernel's share (the system calls themselves) is not counted, so this says
what a change to evloop's Python did, not what a request costs in all.
``--src`` measures another checkout (a ``git worktree`` of an older commit):
its ``evloop`` package is imported by the same interpreter.  It measures; it
asserts nothing.  Needs valgrind.
"""

from __future__ import annotations

import argparse
import base64
import os
import re
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "load" / "bench"))
import run as bench  # noqa: E402  (load/bench/run.py: make_certificates)

HELLO = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
CLOSE = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
WS_MASK = b"\x12\x34\x56\x78"
ECHO4K = b"POST /echo HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 4096\r\n\r\n" + b"e" * 4096
BYTES1M = b"GET /bytes/1048576 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
STATIC_SMALL = b"GET /static/small.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
STATIC_BYTES = 2048  # the static-small file's length, as load/bench/run.py's
CASES = ("keepalive", "pipelined", "browser", "close", "echo4k", "ws16", "ws4k", "wsgi-keepalive", "wsgi-close", "wsgi-echo4k",
         "conns50", "conns1000", "wsgi-conns50", "wsgi-conns1000", "flask-keepalive", "flask-close", "bytes1m", "static-small",
         "static-304",
         "tls-keepalive", "tls-bytes1m", "tls-handshake")
# Fewer requests where each costs millions of instructions under valgrind.
DEFAULT_COUNTS = {"bytes1m": (20, 60), "tls-bytes1m": (20, 60), "tls-handshake": (100, 300),
                  "conns50": (1000, 3000), "wsgi-conns50": (1000, 3000),
                  "conns1000": (1000, 3000), "wsgi-conns1000": (1000, 3000)}
PEERS = ROOT / "load" / "bench" / "peers"  # the apps the load/bench peers serve
WS_SIZES = {"ws16": 16, "ws4k": 4096}  # text message bytes of the WebSocket cases


def _ws_length(size: int) -> bytes:
    """The length bytes of a frame header (RFC 6455 5.2), before the mask bit is set."""
    return bytes((size,)) if size < 126 else bytes((126,)) + size.to_bytes(2, "big")


def _masked_text_frame(size: int) -> bytes:
    payload = bytes(b ^ WS_MASK[i % 4] for i, b in enumerate(b"x" * size))
    length = _ws_length(size)
    return bytes((0x81, 0x80 | length[0])) + length[1:] + WS_MASK + payload


def _recv_until(sock: socket.socket, wanted: int, count: bytes | None = None) -> None:
    """Read until ``wanted`` bytes came (or, with ``count``, that many occurrences of it)."""
    got = 0
    while got < wanted:
        data = sock.recv(65536)
        if not data:
            raise ConnectionError("the server closed the connection")
        got += data.count(count) if count is not None else len(data)


def _echo(sock: socket.socket, n: int) -> None:
    """``n`` 4 KiB echoes, one at a time: the first answer's length (its head and Content-Length) is every one's."""
    sock.sendall(ECHO4K)
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))  # type: ignore[union-attr]
    _recv_until(sock, length - len(body))
    for _ in range(n - 1):
        sock.sendall(ECHO4K)
        _recv_until(sock, len(head) + 4 + length)


def _connect(port: int, context: ssl.SSLContext | None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=60)
    return sock if context is None else context.wrap_socket(sock, server_hostname="localhost")


def _download(sock: socket.socket, n: int, request: bytes = BYTES1M, size: int = 1 << 20) -> None:
    """``n`` downloads of ``request`` (a ``size``-byte body), one at a time."""
    for _ in range(n):
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            data += sock.recv(65536)
        _recv_until(sock, size - len(data.partition(b"\r\n\r\n")[2]))


def _many_connections(port: int, conns: int, n: int) -> None:
    """``n`` hello requests over ``conns`` open connections: each round one request on every connection, then
    every answer read (``n`` is rounded down to whole rounds)."""
    socks = [socket.create_connection(("127.0.0.1", port), timeout=60) for _ in range(conns)]
    try:
        for _ in range(n // conns):
            for sock in socks:
                sock.sendall(HELLO)
            for sock in socks:
                _recv_until(sock, 1, count=b"Hello, World!")
    finally:
        for sock in socks:
            sock.close()


def _drive(case: str, port: int, n: int, context: ssl.SSLContext | None = None) -> None:
    """Send ``n`` requests (or messages) of ``case`` and wait for every answer (over TLS with ``context``)."""
    case = case.partition("-")[2] if case.startswith(("wsgi-", "flask-", "tls-")) else case
    if case.startswith("conns"):
        _many_connections(port, int(case[5:]), n)
        return
    case = "close" if case == "handshake" else case
    if case == "close":
        for _ in range(n):
            with _connect(port, context) as sock:
                sock.sendall(CLOSE)
                while sock.recv(65536):
                    pass
        return
    with _connect(port, context) as sock:
        if case == "bytes1m":
            _download(sock, n)
            return
        if case == "static-small":
            _download(sock, n, STATIC_SMALL, STATIC_BYTES)
            return
        if case == "static-304":
            sock.sendall(STATIC_SMALL)
            head = b""
            while b"\r\n\r\n" not in head or len(head.partition(b"\r\n\r\n")[2]) < STATIC_BYTES:
                head += sock.recv(65536)
            etag = re.search(rb"\r\nETag: ([^\r]+)", head).group(1)  # type: ignore[union-attr]
            _download(sock, n, STATIC_SMALL[:-2] + b"If-None-Match: " + etag + b"\r\n\r\n", 0)
            return
        if case in WS_SIZES:
            key = base64.b64encode(os.urandom(16))
            sock.sendall(b"GET /ws/echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                         b"Sec-WebSocket-Key: " + key + b"\r\nSec-WebSocket-Version: 13\r\n\r\n")
            head = b""
            while b"\r\n\r\n" not in head:
                head += sock.recv(4096)
            size = WS_SIZES[case]
            frame = _masked_text_frame(size)
            answer = 1 + len(_ws_length(size)) + size  # the echo: unmasked, the same length
            for _ in range(n):
                sock.sendall(frame)
                _recv_until(sock, answer)
            return
        if case == "echo4k":
            _echo(sock, n)
            return
        if case == "browser":
            from browser import head  # load/bench/browser.py: the browser-unique scenario's heads

            heads = [head(i, "127.0.0.1") for i in range(1, n + 1)]
            for data in heads:
                sock.sendall(data)
                _recv_until(sock, 1, count=b"item ")
            return
        depth = 16 if case == "pipelined" else 1
        for _ in range(n // depth):
            sock.sendall(HELLO * depth)
            _recv_until(sock, depth, count=b"Hello, World!")


def _port_from_log(log: Path, proc: subprocess.Popen[bytes], timeout_s: float = 600) -> int:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        match = re.search(rb"serving on https?://127\.0\.0\.1:(\d+)", log.read_bytes())
        if match:
            return int(match.group(1))
        if proc.poll() is not None:
            break
        time.sleep(0.2)  # waiting on a log file under valgrind: there is no event to wait on
    raise RuntimeError(f"evloop-demo did not start: {log.read_text(errors='replace')[-2000:]}")


def instructions(src: Path, case: str, n: int, demo_args: list[str], work: Path,
                 context: ssl.SSLContext | None = None) -> int:
    """Instructions of one whole run of evloop-demo (from ``src``) serving ``n`` of ``case`` (over ``context``)."""
    out, log = work / f"callgrind.{n}", work / f"demo.{n}.log"
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(src)}
    with open(log, "wb") as log_file:
        proc = subprocess.Popen(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable,
                                 "-m", "evloop.demo", "--port", "0", *demo_args],
                                cwd=src, env=env, stdout=log_file, stderr=subprocess.STDOUT)
    try:
        _drive(case, _port_from_log(log, proc), n, context)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=600)
    summary = subprocess.run(["callgrind_annotate", str(out)], capture_output=True, text=True, check=True).stdout
    match = re.search(r"([\d,]+)\s+(?:\(100\.0%\)\s+)?PROGRAM TOTALS", summary)
    if match is None:
        raise RuntimeError(f"no total in callgrind's summary: {summary[:500]}")
    return int(match.group(1).replace(",", ""))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("case", choices=CASES)
    parser.add_argument("--src", type=Path, default=ROOT, help="the checkout whose evloop runs (default: this one)")
    parser.add_argument("--counts", type=int, nargs=2, metavar=("FEWER", "MORE"),
                        help="requests of the two runs (default 320 960; bytes1m and tls-bytes1m 20 60, tls-handshake 100 300, "
                             "conns50 and conns1000 1000 3000)")
    parser.add_argument("--keep", type=Path, metavar="DIR", help="keep the callgrind outputs in DIR")
    parser.add_argument("demo_args", nargs="*", help="after --: extra evloop-demo arguments")
    args = parser.parse_args()
    shown = " ".join(args.demo_args)
    fewer, more = args.counts or DEFAULT_COUNTS.get(args.case, (320, 960))
    if "conns" in args.case:
        args.demo_args = ["--header-timeout", "3600", "--keepalive-timeout", "3600", *args.demo_args]
    if args.case.startswith(("wsgi-", "flask-")):
        app = "flask_app:app" if args.case.startswith("flask-") else "wsgi_app:app"
        args.demo_args = ["--chdir", str(PEERS), "--wsgi", app, *args.demo_args]
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        context = None
        if args.case.startswith("static-"):
            root = Path(tmp) / "static"
            root.mkdir()
            (root / "small.bin").write_bytes(os.urandom(STATIC_BYTES))
            args.demo_args = ["--root", str(root), *args.demo_args]
        if args.case.startswith("tls-"):
            ca, cert, key = bench.make_certificates(Path(tmp))
            args.demo_args = ["--certfile", str(cert), "--keyfile", str(key), *args.demo_args]
            context = ssl.create_default_context(cafile=str(ca))
        low = instructions(args.src, args.case, fewer, args.demo_args, work, context)
        high = instructions(args.src, args.case, more, args.demo_args, work, context)
    per = (high - low) / (more - fewer)
    print(f"{args.case} ({args.src}{' ' + shown if shown else ''}): "
          f"{per:,.0f} instructions a request")


if __name__ == "__main__":
    main()
