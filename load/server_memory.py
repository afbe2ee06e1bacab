#!/usr/bin/env python3
"""A server's resident memory: per idle keep-alive connection, and across a million distinct requests.

Run::

    python load/server_memory.py idle --conns 10000            # KiB and bytes per open connection
    python load/server_memory.py growth --requests 1000000     # RSS after 1M requests vs after 10,000
    python load/server_memory.py growth --server uvicorn --venv load/bench/.venv   # a peer of load/bench

``--server`` is a server of ``load/bench/run.py`` (default ``evloop``: evloop-demo as
deployed, its access log on and written to a file in a temp dir; ``evloop-nolog``
without it), started as the benchmark starts it, on port 0, from the bench venv
when ``--venv`` has one (else on this interpreter: the evloop servers and
``threading`` only).

``idle``: one request on each of ``--conns`` connections, left open; the
figure is the growth of the server's RSS (its whole process tree, from
``/proc``) over its RSS after a warm-up, divided by the connections it still
holds open (``run.py``'s ``idle-memory`` measurement). Each connection costs a
descriptor on both sides: the soft ``RLIMIT_NOFILE`` of this script (which the
server inherits, and which evloop-demo raises itself) is raised to the hard
limit; when the hard limit stops ``--conns``, the run says so and measures as
many as it allows.

``growth``: ``--requests`` distinct requests, each a browser-sized head with a
new path, query, referer and cookie (``load/bench/browser.py``, the
``browser-unique`` scenario's heads), ``GET /items/ID``, pipelined
``--depth`` deep on ``--conns`` keep-alive connections from raw sockets (a
client fast enough that the server is the bottleneck). The server's RSS is read
after the first ``--first`` responses and then every ``--every``; the figure is
the last one against the first: a server whose caches, logs or buffers keep
what each request brought grows here. It measures; it asserts nothing.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import selectors
import shutil
import socket
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "bench"))

import browser  # noqa: E402  (load/bench/browser.py)
import run as bench  # noqa: E402  (load/bench/run.py: the servers, /proc readings, the idle client)

CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:[ \t]*(\d+)", re.I)
FD_MARGIN = 64  # descriptors besides the connections: listener, log, pipes, the interpreter's own


def raise_fd_limit(conns: int) -> int:
    """Raise the soft RLIMIT_NOFILE to the hard limit; return how many connections that allows."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = hard if hard != resource.RLIM_INFINITY else 1 << 20
    if soft == resource.RLIM_INFINITY or soft >= want:
        want = soft
    else:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    allowed = want - FD_MARGIN
    if allowed < conns:
        print(f"note: the hard open-file limit ({hard}) stops {conns:,} connections: measuring {allowed:,} "
              "(raise it with `ulimit -Hn` as root, or in limits.conf)", flush=True)
    return min(conns, allowed)


def start_server(name: str, venv: Path, workdir: Path, evloop_args: str):
    """Start ``name`` as load/bench/run.py does; return (Server, its log file, its Spec)."""
    venv_bin = venv / "bin"
    py = str(venv_bin / "python") if (venv_bin / "python").exists() else sys.executable
    commands = bench.server_commands(py, venv_bin, evloop_args.split())
    if name not in commands:
        sys.exit(f"unknown server {name!r}; known: {', '.join(commands)}")
    spec = commands[name]
    if spec.nginx:
        sys.exit("nginx: measure it with load/bench/run.py --scenarios idle-memory")
    if spec.needs_venv and not Path(spec.argv[0]).exists():
        sys.exit(f"{name}: not installed in {venv} (load/bench/run.py builds that venv)")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(bench.PEERS), str(bench.REPO)]))
    log_path = workdir / f"{name}.log"
    log = open(log_path, "wb")
    server = bench.Server(name, spec.argv, env, log)
    try:
        server.wait_ready()
    except Exception:
        server.stop()
        log.close()
        raise
    return server, log, log_path, spec


def measure_idle(server, conns: int, timeout_s: float) -> None:
    res = bench.measure_idle(server, conns, timeout_s)
    per_conn = res["kib_per_conn"]
    print(f"open keep-alive connections: {res['open']:,} of {conns:,} (answered {res['answered']:,})")
    print(f"RSS growth: {res['rss_growth_kib']:,} KiB")
    if per_conn is not None:
        print(f"per connection: {per_conn:.2f} KiB ({per_conn * 1024:,.0f} bytes)")
    fresh = res["fresh_request_ms"]
    print(f"a fresh request meanwhile: {'failed' if fresh is None else f'{fresh:.1f} ms'}")


class Pipeline:
    """One keep-alive connection sending batches of heads and counting the responses."""

    __slots__ = ("sock", "buf", "waiting")

    def __init__(self, port: int) -> None:
        self.sock = socket.create_connection(("127.0.0.1", port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()
        self.waiting = 0

    def responses_received(self, data: bytes) -> tuple[int, int]:
        """Add ``data``; return (complete responses, how many of them were 200)."""
        self.buf += data
        done = ok = pos = 0
        while True:
            end = self.buf.find(b"\r\n\r\n", pos)
            if end < 0:
                break
            match = CONTENT_LENGTH.search(self.buf, pos, end)
            after = end + 4 + (int(match.group(1)) if match else 0)
            if after > len(self.buf):
                break
            done += 1
            ok += self.buf.startswith(b"HTTP/1.1 200 ", pos)
            pos = after
        del self.buf[:pos]
        self.waiting -= done
        return done, ok


def measure_growth(server, total: int, first: int, every: int, conns: int, depth: int, timeout_s: float) -> None:
    host = f"127.0.0.1:{server.port}"
    pids = server.pids
    pipes = [Pipeline(server.port) for _ in range(conns)]
    sel = selectors.DefaultSelector()
    for pipe in pipes:
        sel.register(pipe.sock, selectors.EVENT_READ, pipe)
    checkpoints = sorted({first, *range(every, total, every), total} - set(range(first)))
    readings: list[tuple[int, int]] = []
    sent = done = ok = 0
    started = time.monotonic()
    deadline = started + timeout_s
    try:
        for checkpoint in checkpoints:
            while done < checkpoint:
                if time.monotonic() > deadline:
                    raise SystemExit(f"only {done:,} of {total:,} responses within {timeout_s:g} s")
                for pipe in pipes:
                    if pipe.waiting == 0 and sent < checkpoint:
                        batch = min(depth, checkpoint - sent)
                        pipe.sock.sendall(b"".join(browser.head(n, host) for n in range(sent + 1, sent + batch + 1)))
                        pipe.waiting = batch
                        sent += batch
                for key, _mask in sel.select(1.0):
                    data = key.fileobj.recv(1 << 18)
                    if not data:
                        raise SystemExit(f"the server closed a connection after {done:,} responses")
                    got, good = key.data.responses_received(data)
                    done += got
                    ok += good
            readings.append((done, bench.rss_kib(pids)))
            print(f"RSS after {done:>10,} requests: {readings[-1][1]:>9,} KiB", flush=True)
    finally:
        sel.close()
        for pipe in pipes:
            pipe.sock.close()
    seconds = time.monotonic() - started
    (n0, rss0), (n1, rss1) = readings[0], readings[-1]
    print(f"{total:,} requests in {seconds:.1f} s ({total / seconds:,.0f}/s), {total - ok:,} not 200")
    print(f"RSS after {n1:,} requests against after {n0:,}: {rss1 - rss0:+,} KiB ({(rss1 - rss0) / rss0:+.1%})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("mode", choices=("idle", "growth"))
    parser.add_argument("--server", default="evloop", help="a server of load/bench/run.py (default: evloop)")
    parser.add_argument("--venv", type=Path, default=bench.DEFAULT_VENV,
                        help="the bench venv with the peers (default: load/bench/.venv)")
    parser.add_argument("--evloop-args", default="--backlog 2048", help="extra evloop-demo options (one string)")
    parser.add_argument("--conns", type=int, default=None,
                        help="idle: connections to hold open (default 10,000); growth: keep-alive connections "
                             "(default 4)")
    parser.add_argument("--requests", type=int, default=1_000_000, help="growth: distinct requests in all")
    parser.add_argument("--first", type=int, default=10_000, help="growth: the RSS reading to compare with")
    parser.add_argument("--every", type=int, default=None,
                        help="growth: read the RSS every this many requests too (default: --requests / 10)")
    parser.add_argument("--depth", type=int, default=16, help="growth: requests pipelined per connection")
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds before the client gives up")
    args = parser.parse_args(argv)
    if args.mode == "growth" and not 0 < args.first <= args.requests:
        parser.error("--first must be between 1 and --requests")
    conns = args.conns or (10_000 if args.mode == "idle" else 4)
    if args.mode == "idle":
        conns = raise_fd_limit(conns)
    workdir = Path(tempfile.mkdtemp(prefix="evloop-memory-"))
    server, log, log_path, spec = start_server(args.server, args.venv, workdir, args.evloop_args)
    print(f"{args.server}: {spec.description}, pid {server.proc.pid}, port {server.port}", flush=True)
    try:
        if args.mode == "idle":
            measure_idle(server, conns, args.timeout)
        else:
            measure_growth(server, args.requests, args.first, args.every or max(1, args.requests // 10), conns,
                           args.depth, args.timeout)
    finally:
        server.stop()
        log.close()
        lines, size, _sample = bench.log_summary(log_path)
        print(f"{args.server} wrote {lines:,} lines ({size:,} bytes) to its stdout and stderr")
        shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
