#!/usr/bin/env python3
"""Side-by-side benchmark: evloop against the servers people would pick instead.

One command::

    python load/bench/run.py                      # full run: every server, every scenario
    python load/bench/run.py --duration 3 --rounds 1 --servers uvicorn,tornado \\
        --scenarios hello,pipeline16              # a quick look
    python load/bench/run.py --evloop-rev 55f0e22 # also evloop as of commit 55f0e22, same run
    python load/bench/run.py --append             # also record the run in load/BENCHMARKS.md

Theory of operation
-------------------
Setup builds a separate virtual environment (``load/bench/.venv``,
git-ignored) with the peers from ``requirements.txt`` and installs ``wrk`` with
apt-get when it is missing. Every server runs on the same interpreter, serves the
same endpoints with the same bytes (``peers/common.py``), and is pinned to CPU 0
with ``taskset``; wrk and this script's own clients run on CPU 1.

For each round, for each scenario, the servers take turns (the order rotates each
round). Every measurement gets a freshly started server that binds port 0; the
port is read from the listening socket the process tree owns (``/proc``), so no
port number is ever guessed or reused. A short warm-up run precedes each
measured run. The server's CPU time is ``utime + stime`` of its whole process
tree (all threads) from ``/proc/PID/stat`` before and after the measured run, so
requests per CPU-second is independent of how much CPU wrk left it.

The servers (``--servers``, default all of them, in this order)
---------------------------------------------------------------
- ``evloop``: ``python -m evloop.demo`` in its default configuration, as deployed:
  access log on, its stdout and stderr written to a file in the run's temp dir
  (not a pipe nobody reads, which would fill and block it, nor /dev/null,
  which takes the bytes without writing them). ``evloop-nolog``: the same with ``--no-access-log``. Both get
  ``--evloop-args`` (default ``--backlog 2048``).
- ``uvicorn`` (httptools + uvloop, ``--no-access-log``), ``uvicorn-log`` (the same
  with its access log on: ``--log-level info``, to a file like evloop's), and
  ``uvicorn-h11`` (h11 + asyncio, no access log).
- ``granian-asgi`` and ``granian-wsgi``: granian, whose HTTP and I/O are Rust,
  serving ``peers/asgi_app.py`` and ``peers/wsgi_app.py``. Chosen for a fair
  one-core comparison: one worker process (``--workers 1``, as every other
  server has one process); a single-threaded Rust runtime (``--runtime-mode st
  --runtime-threads 1``: more runtime threads would only take turns on the one
  CPU); one Python thread running the app (``--blocking-threads 1``: the only
  value granian allows for ASGI; for WSGI its default is backlog / 2 threads,
  1,024 here, started on demand, and in short trials on the 2-core machine 1, 2
  and 4 threads gave about the same requests per CPU-second and the default
  fewer, so one thread, as evloop has). The price: the WSGI app's ``/delay``
  sleeps in that one thread, so granian-wsgi, like gunicorn's sync worker,
  cannot finish ``delay1000`` within the client's limit. Also ``--http 1``
  (HTTP/1.1 only, like every other server here, with no HTTP/2 sniffing),
  ``--loop uvloop`` for ASGI (as for uvicorn), backlog 2048, access log off
  (its default).
- The WSGI servers on one app (``peers/wsgi_app.py``, the raw WSGI app):
  ``evloop-wsgi`` (``evloop-demo --wsgi wsgi_app:app`` in its default
  configuration, access log on, to a file), ``evloop-wsgi-nolog``
  (``--no-access-log``), ``granian-wsgi``, ``waitress`` and ``gunicorn``; and on
  a Flask app (``peers/flask_app.py``, the same endpoints):
  ``evloop-wsgi-flask`` (access log off, as the peers'), ``granian-wsgi-flask``,
  ``waitress-flask`` and ``gunicorn-flask``, each configured as its raw-app
  variant.  The evloop ones run on this interpreter, which needs Flask for
  ``evloop-wsgi-flask`` (the ``test`` extra has it); the peers take it from
  the bench venv.
- ``tornado``, ``waitress`` (4 threads), ``gunicorn`` (one sync worker) and
  ``threading`` (the standard library's ThreadingHTTPServer), access logs off.
- ``nginx`` (Debian's package, installed by setup when missing): one worker
  process, access log off, serving the hello text (``return 200``), a 1 MiB
  file of ``x`` (``/bytes/1048576``), ``/items/ID`` (``return 200`` on a
  location regex) and the static root from a configuration written into the run's
  temp dir; it runs every scenario that needs only those (not ``echo4k`` or
  ``delay1000``). nginx cannot listen on port 0: the run binds port 0 itself and
  hands the socket over the way nginx's own binary upgrade does (the inherited
  descriptor named in the ``NGINX`` environment variable).
- Access log on: ``evloop``, ``evloop-wsgi`` and ``uvicorn-log`` (above), and
  ``granian-asgi-log``, ``granian-wsgi-log`` (``--access-log``), ``nginx-log``
  (``access_log`` in the combined format, unbuffered, nginx's default),
  ``gunicorn-log`` (``--access-logfile -``), ``tornado-log`` (tornado's own
  ``log_function``, through ``logging`` to stdout) and ``threading-log``
  (``http.server``'s line to stderr): each the server without the suffix, with
  its access log written to a file. waitress has no access log of its own.
  Every scenario runs with the log on and off by naming both.

Real traffic (issue 20)
-----------------------
``browser-unique`` sends heads as a browser does (``browser.py``: 12 fields,
about 730 bytes, a Chrome ``User-Agent`` and client hints, a cookie of about
195 bytes) whose path (``GET /items/ID``, a route with a path parameter), query,
referer and cookie are new on every request, numbered by a counter in wrk's
Lua (each wrk run starts its own range, so the measured run does not repeat
the warm-up's heads). ``static-1m`` and ``static-small`` fetch a 1 MiB and a
2 KiB file of the run's static root (made in its temp dir) under ``/static/``,
and ``static-304`` revalidates the 2 KiB one with the ``ETag`` and
``Last-Modified`` of the server's own 200 (``If-None-Match`` and
``If-Modified-Since``, as a browser sends both) and must get 304s. The servers
serve that root as their users would: evloop with ``--root`` (its
``StaticFiles``, ``sendfile``), uvicorn with Starlette's ``StaticFiles``
mounted in the ASGI app (``BENCH_STATIC_ROOT``), granian with its own Rust file
server (``--static-path-mount``: it sends no ``ETag`` or ``Last-Modified``, so
it fails ``static-304``, and its access log leaves these requests out), nginx
with ``alias``, ``sendfile on`` and ``tcp_nopush on`` (Debian's defaults) as
the anchor; the others skip them. ``latency`` reports p50, p90, p99 and p99.9
of wrk's histogram at 50 connections as fast as they go; ``latency-rate`` the
same at a fixed rate below saturation (``--latency-rate``, 10,000 requests a
second by default): each connection waits ``50 / rate`` seconds before each
request (wrk's ``delay()``), and the table gives the rate reached beside the
percentiles (lower than asked when a server saturates, and by the response
time itself: each connection waits for its response before its next wait).

TLS scenarios (``tls-*``)
-------------------------
Every server that can is run over TLS in the same run, with a CA and a server
certificate for 127.0.0.1 made for the run by the ``openssl`` command line (ECDSA
P-256, as trustme makes for the tests; the key in PKCS#8, which granian needs):
evloop with ``--certfile/--keyfile`` (its default configuration otherwise: the
access log stays on for ``evloop``), uvicorn with ``--ssl-certfile/--ssl-keyfile``,
granian with ``--ssl-certificate/--ssl-keyfile``, nginx with ``ssl_certificate``
(and ``ssl_session_cache shared:SSL:10m``). Every client negotiates TLS 1.3.
``tls-hello`` is keep-alive over TLS (``wrk https://``); ``tls-handshake`` a full
handshake per request (``openssl s_time -new -www /``, 4 processes at once on the
client CPU: each connection makes a handshake, one ``GET / HTTP/1.0`` and a
close); ``tls-resume`` is wrk with ``Connection: close``: wrk offers the session
of its last connection on the next, so every request is a resumed handshake;
``tls-bytes1m`` 1 MiB downloads; ``tls-idle-memory`` the idle-memory scenario
with a handshake and a request on each connection first (Python's ``ssl`` on the
client side). The waiting and preflight requests go over HTTPS, verified
against the run's CA.

Only the servers with the access log on (above) write one. Their log file is new
for each measurement; the raw results record how many lines and bytes it got
(``log_lines``, ``log_bytes``: warm-up and preflight requests included), the
servers log keeps its first and last lines, and the file is then deleted.

Before and after: ``--evloop-rev REV``
--------------------------------------
``--evloop-rev REV`` (repeatable) adds ``evloop@SHORT`` and
``evloop-nolog@SHORT``: the same two variants, run by the same interpreter, with
the ``evloop`` package of commit REV (SHORT is its abbreviated id) extracted by
``git archive`` into the run's temp dir and put first on ``PYTHONPATH``. Names
such as ``evloop@55f0e22`` may also be given in ``--servers``. ``git archive``
only reads the repository: unlike ``git worktree`` it leaves nothing under
``.git`` to prune if the run is killed and takes no lock, while others may be
committing. Before measuring, the run checks that the interpreter imports
``evloop`` from the intended directory. Plain ``evloop`` is the work tree as it
is, uncommitted changes included; the report's header says whether ``evloop/``
differs from HEAD.

Report
------
Per scenario, the median over rounds and the spread (``(max - min) / 2 /
median``) of requests per second and per CPU-second, each also as a ratio to
``--baseline`` (default ``evloop``); then a table of pairs (``a / b`` of the
headline figure): evloop with its access log against without, against uvicorn
with its access log, evloop-nolog against uvicorn and granian, and every
``X@REV`` against ``X`` (without ``X`` in the run, against the first ``X@REV``).
The header gives how much of CPU 0 other processes took during the wrk runs
(``cpu0_others`` in the raw results): on a busy machine a server gets the CPU
in fewer, larger batches, which changes what a request costs, so only a run
near 0% there is clean evidence. It reports; it never asserts, and is never a timed test
in CI. With ``--no-setup`` and no bench venv, the servers run on this
interpreter, and only those that need no peer package (the evloop variants and
``threading``) can be chosen; the smoke test runs that way.
"""

import argparse
import datetime
import http.client
import io
import json
import os
import platform
import re
import resource
import selectors
import shlex
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))  # browser.py, beside this file (also when imported as bench.run)
import browser  # noqa: E402

PEERS = HERE / "peers"
DEFAULT_VENV = HERE / ".venv"
RESULTS = REPO / "load" / "results"
BENCHMARKS_MD = REPO / "load" / "BENCHMARKS.md"
CLK_TCK = os.sysconf("SC_CLK_TCK")
HELLO = b"Hello, World!"

SERVER_CPU = "0"
CLIENT_CPU = "1"

# --------------------------------------------------------------------------- servers


class Spec:
    """How to start one server variant.

    ``log_file``: its stdout and stderr go to a fresh file in the run's temp dir
    (a server whose access log is on writes it there, as in a deployment, and the
    run reports how many lines it wrote); otherwise to the run's servers log.
    ``needs_venv``: it is a peer from the bench venv (not evloop or the stdlib).
    ``pythonpath``: where ``evloop`` is imported from (the work tree, or a revision
    extracted by ``--evloop-rev``).
    ``tls_args``: the options that turn TLS on, with ``{certfile}`` and ``{keyfile}``
    in place of the paths (None: the server is not run over TLS).
    ``static_args``: the options that make it serve the run's static root under
    ``/static/`` (``{root}`` in place of the directory; the ASGI app needs none:
    ``BENCH_STATIC_ROOT`` is set for every server in the static scenarios), or
    None: it serves no files and skips the static scenarios.
    ``serves``: the scenarios it can run (None: all of them); ``nginx``: the argv is
    made by ``start_nginx`` for each measurement.
    """

    def __init__(self, description, argv, *, log_file=False, needs_venv=True, pythonpath=None,
                 tls_args=None, static_args=None, serves=None, nginx=False):
        self.description = description
        self.argv = argv
        self.log_file = log_file
        self.needs_venv = needs_venv
        self.pythonpath = pythonpath
        self.tls_args = tls_args
        self.static_args = static_args
        self.serves = serves
        self.nginx = nginx

    def argv_for(self, certs, static_root=None):
        """The argv for one measurement: with the TLS options when ``certs`` is (certfile, keyfile),
        with the static options when ``static_root`` is the run's static directory."""
        argv = self.argv
        if certs is not None:
            certfile, keyfile = certs
            argv = [*argv, *(a.format(certfile=certfile, keyfile=keyfile) for a in self.tls_args)]
        if static_root is not None:
            argv = [*argv, *(a.format(root=static_root) for a in self.static_args)]
        return argv


EVLOOP_VARIANTS = ("evloop", "evloop-nolog")
EVLOOP_TLS = ["--certfile", "{certfile}", "--keyfile", "{keyfile}"]
EVLOOP_STATIC = ["--root", "{root}"]  # evloop-demo's files under /static/, in front of --wsgi too


def evloop_spec(variant, py, evloop_args, source, label=""):
    """``evloop`` is evloop-demo as deployed (access log on, to a file); ``evloop-nolog`` adds --no-access-log."""
    where = f" at {label}" if label else ""
    if variant == "evloop":
        return Spec(f"evloop-demo{where}, default config: access log on, to a file",
                    [py, "-m", "evloop.demo", "--port", "0", *evloop_args],
                    log_file=True, needs_venv=False, pythonpath=source, tls_args=EVLOOP_TLS,
                    static_args=EVLOOP_STATIC)
    return Spec(f"evloop-demo{where}, --no-access-log",
                [py, "-m", "evloop.demo", "--no-access-log", "--port", "0", *evloop_args],
                needs_venv=False, pythonpath=source, tls_args=EVLOOP_TLS, static_args=EVLOOP_STATIC)


def server_commands(py, venv_bin, evloop_args):
    """Map a server name to its Spec. Every argv binds 127.0.0.1 port 0."""
    uvicorn = [str(venv_bin / "uvicorn"), "asgi_app:app", "--host", "127.0.0.1", "--port", "0",
               "--backlog", "2048"]
    # One worker process, one Rust runtime thread (single-threaded runtime), one
    # Python thread running the app, HTTP/1 only: see "granian" in the docstring.
    granian = [str(venv_bin / "granian"), "--host", "127.0.0.1", "--port", "0", "--workers", "1",
               "--runtime-mode", "st", "--runtime-threads", "1", "--blocking-threads", "1",
               "--http", "1", "--backlog", "2048", "--log-level", "warning", "--no-access-log"]
    # Its access lines go through Python's logging to stdout whatever --log-level says.
    granian_log = [a if a != "--no-access-log" else "--access-log" for a in granian]
    uvicorn_tls = ["--ssl-certfile", "{certfile}", "--ssl-keyfile", "{keyfile}"]
    # granian's TLS minimum is 1.3 by default; every client here negotiates 1.3 anyway.
    granian_tls = ["--ssl-certificate", "{certfile}", "--ssl-keyfile", "{keyfile}"]
    # granian's own file server (Rust), in front of the app.
    granian_static = ["--static-path-mount", "{root}", "--static-path-route", "/static"]
    evloop_wsgi = [py, "-m", "evloop.demo", "--port", "0", *evloop_args, "--wsgi"]
    waitress = [str(venv_bin / "waitress-serve"), "--host=127.0.0.1", "--port=0",
                "--connection-limit=20000", "--backlog=2048"]
    gunicorn = [str(venv_bin / "gunicorn"), "-w", "1", "-k", "sync", "-b", "127.0.0.1:0",
                "--backlog", "2048", "--log-level", "warning"]
    uvicorn_httptools = [*uvicorn, "--http", "httptools", "--loop", "uvloop"]
    granian_asgi = ["--interface", "asgi", "--loop", "uvloop", "asgi_app:app"]
    granian_wsgi = ["--interface", "wsgi", "wsgi_app:app"]
    tornado = [py, "tornado_app.py", "--port", "0", "--backlog", "2048"]
    threading = [py, "threading_server.py", "--port", "0"]
    nginx = ["nginx", "-p", "DIR", "-c", "DIR/nginx.conf"]
    return {
        "evloop": evloop_spec("evloop", py, evloop_args, REPO),
        "evloop-nolog": evloop_spec("evloop-nolog", py, evloop_args, REPO),
        "evloop-wsgi": Spec(
            "evloop-demo --wsgi, default config: access log on, to a file",
            [*evloop_wsgi, "wsgi_app:app"], log_file=True, needs_venv=False, pythonpath=REPO,
            tls_args=EVLOOP_TLS, static_args=EVLOOP_STATIC,
        ),
        "evloop-wsgi-nolog": Spec(
            "evloop-demo --wsgi, --no-access-log",
            [*evloop_wsgi, "wsgi_app:app", "--no-access-log"], needs_venv=False, pythonpath=REPO,
            tls_args=EVLOOP_TLS, static_args=EVLOOP_STATIC,
        ),
        "evloop-wsgi-flask": Spec(
            "evloop-demo --wsgi, Flask, --no-access-log",
            [*evloop_wsgi, "flask_app:app", "--no-access-log"], needs_venv=False, pythonpath=REPO,
            tls_args=EVLOOP_TLS, static_args=EVLOOP_STATIC,
        ),
        "uvicorn": Spec(
            "uvicorn, httptools + uvloop, --no-access-log",
            [*uvicorn_httptools, "--no-access-log", "--log-level", "warning"],
            tls_args=uvicorn_tls, static_args=[],
        ),
        "uvicorn-log": Spec(
            "uvicorn, httptools + uvloop, access log on (to a file)",
            [*uvicorn_httptools, "--log-level", "info"],
            log_file=True, tls_args=uvicorn_tls, static_args=[],
        ),
        "uvicorn-h11": Spec(
            "uvicorn, h11 + asyncio, --no-access-log",
            [*uvicorn, "--http", "h11", "--loop", "asyncio", "--no-access-log", "--log-level", "warning"],
            static_args=[],
        ),
        "granian-asgi": Spec(
            "granian (Rust), ASGI on uvloop, 1 worker, 1 runtime thread",
            [*granian, *granian_asgi], tls_args=granian_tls, static_args=granian_static,
        ),
        "granian-asgi-log": Spec(
            "granian (Rust), ASGI on uvloop, 1 worker, 1 runtime thread, access log on (to a file)",
            [*granian_log, *granian_asgi], log_file=True, tls_args=granian_tls, static_args=granian_static,
        ),
        "granian-wsgi": Spec(
            "granian (Rust), WSGI, 1 worker, 1 runtime thread, 1 blocking thread",
            [*granian, *granian_wsgi], tls_args=granian_tls, static_args=granian_static,
        ),
        "granian-wsgi-log": Spec(
            "granian (Rust), WSGI, 1 worker, 1 runtime thread, 1 blocking thread, access log on (to a file)",
            [*granian_log, *granian_wsgi], log_file=True, tls_args=granian_tls, static_args=granian_static,
        ),
        "granian-wsgi-flask": Spec(
            "granian (Rust), WSGI, Flask, 1 worker, 1 runtime thread, 1 blocking thread",
            [*granian, "--interface", "wsgi", "flask_app:app"],
            tls_args=granian_tls, static_args=granian_static,
        ),
        "tornado": Spec("tornado", tornado),
        "tornado-log": Spec("tornado, access log on (to a file)", [*tornado, "--access-log"], log_file=True),
        "waitress": Spec("waitress (4 threads)", [*waitress, "wsgi_app:app"]),
        "waitress-flask": Spec("waitress (4 threads), Flask", [*waitress, "flask_app:app"]),
        "gunicorn": Spec("gunicorn, 1 sync worker", [*gunicorn, "wsgi_app:app"]),
        "gunicorn-log": Spec("gunicorn, 1 sync worker, access log on (to a file)",
                             [*gunicorn, "--access-logfile", "-", "wsgi_app:app"], log_file=True),
        "gunicorn-flask": Spec("gunicorn, 1 sync worker, Flask", [*gunicorn, "flask_app:app"]),
        "threading": Spec("stdlib ThreadingHTTPServer", threading, needs_venv=False),
        "threading-log": Spec("stdlib ThreadingHTTPServer, access log on (to a file)",
                              [*threading, "--access-log"], log_file=True, needs_venv=False),
        "nginx": Spec(
            "nginx (C), 1 worker process, access log off, the hello text, a 1 MiB file and the static root",
            nginx, needs_venv=False, tls_args=[], static_args=[], nginx=True, serves=NGINX_SCENARIOS,
        ),
        "nginx-log": Spec(
            "nginx (C), 1 worker process, access log on (combined format, to a file), as `nginx`",
            nginx, log_file=True, needs_venv=False, tls_args=[], static_args=[], nginx=True,
            serves=NGINX_SCENARIOS,
        ),
    }


def resolve_rev(rev):
    """Return the abbreviated commit id of ``rev`` in this repository, or exit with git's reason."""
    out = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--verify", "--quiet", "--short",
                          f"{rev}^{{commit}}"], capture_output=True, text=True)
    if out.returncode != 0 or not out.stdout.strip():
        sys.exit(f"evloop revision {rev!r}: not a commit of {REPO}")
    return out.stdout.strip()


def extract_rev(short, workdir):
    """Write the ``evloop`` package of commit ``short`` into ``workdir/rev-SHORT``; return that dir.

    ``git archive`` reads the object store only: unlike a ``git worktree`` it adds
    nothing under ``.git`` (no worktree entry to prune if the run is killed, no
    lock), which matters while others commit to the same repository.
    """
    dest = workdir / f"rev-{short}"
    archive = subprocess.run(["git", "-C", str(REPO), "archive", "--format=tar", short, "evloop"],
                             capture_output=True, check=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        if hasattr(tarfile, "data_filter"):  # Python 3.11.4 and later
            tar.extractall(dest, filter="data")
        else:
            tar.extractall(dest)
    return dest


def evloop_imported_from(py, env):
    """The directory ``py`` imports evloop from under ``env``, as the server will."""
    out = subprocess.run([py, "-c", "import evloop, os; print(os.path.dirname(evloop.__file__))"],
                         cwd=PEERS, env=env, capture_output=True, text=True)
    return Path(out.stdout.strip()).parent if out.returncode == 0 else None


def _children_map():
    kids = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                stat = f.read()
        except OSError:
            continue
        ppid = int(stat.rpartition(")")[2].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def process_tree(pid):
    """Return ``pid`` and all its descendants."""
    kids = _children_map()
    tree, todo = [], [pid]
    while todo:
        p = todo.pop()
        tree.append(p)
        todo.extend(kids.get(p, ()))
    return tree


def cpu_seconds(pids):
    """utime + stime of the given processes (all their threads), in seconds."""
    ticks = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime (fields 14, 15)
    return ticks / CLK_TCK


def cpu_busy_seconds(cpu):
    """Time CPU ``cpu`` was not idle since boot (user, nice, system, irq, softirq, steal), from /proc/stat."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith(f"cpu{cpu} "):
                v = [int(x) for x in line.split()[1:9]]
                return (v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / CLK_TCK
    return 0.0


def rss_kib(pids):
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            continue
    return total


def listening_port(pids):
    """Return a TCP port a socket of ``pids`` listens on at 127.0.0.1, or None."""
    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                try:
                    target = os.readlink(f"/proc/{pid}/fd/{fd}")
                except OSError:
                    continue
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    with open("/proc/net/tcp") as f:
        next(f)
        for line in f:
            parts = line.split()
            local, state, inode = parts[1], parts[3], parts[9]
            if state == "0A" and inode in inodes:  # 0A = LISTEN
                return int(local.split(":")[1], 16)
    return None


class Server:
    """One running server process, started fresh for one measurement.

    ``tls``: a client context for the server's HTTPS port (trusting the run's CA),
    or None for plain HTTP.  ``pass_fds``: descriptors the process inherits.
    """

    def __init__(self, name, argv, env, log, *, tls=None, pass_fds=()):
        self.name = name
        self.tls = tls
        cmd = ["taskset", "-c", SERVER_CPU, *argv] if PIN else argv
        self.proc = subprocess.Popen(
            cmd, cwd=PEERS, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log, pass_fds=pass_fds
        )
        self.port = None

    @property
    def pids(self):
        return process_tree(self.proc.pid)

    def wait_ready(self, timeout_s=20.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.name} exited with status {self.proc.returncode} on start")
            if self.port is None:
                self.port = listening_port(self.pids)
            if self.port is not None:
                try:
                    status, body = http_request(self.port, "GET", "/healthz", tls=self.tls)
                    if status == 200:
                        return
                except OSError:  # ssl.SSLError included
                    pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} not ready within {timeout_s} s")

    def stop(self, timeout_s=5.0):
        if self.proc.poll() is not None:
            return
        # Remember each process with its start time, so a pid the kernel has meanwhile
        # given to another process is never signalled.
        tree = [(pid, _start_time(pid)) for pid in self.pids]
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout_s)
        deadline = time.monotonic() + timeout_s
        for pid, started in tree[1:]:  # workers that outlived their parent
            while _start_time(pid) == started and time.monotonic() < deadline:
                time.sleep(0.05)
            if _start_time(pid) == started:
                os.kill(pid, signal.SIGKILL)


def _start_time(pid):
    """The start time of ``pid`` in clock ticks since boot, or None if it has exited."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rpartition(")")[2].split()
        return None if fields[0] == "Z" else int(fields[19])  # a zombie is gone already
    except (OSError, IndexError, ValueError):
        return None


def http_request(port, method, path, body=b"", headers=None, timeout=10.0, tls=None):
    """One request on a new connection: (status, body)."""
    status, _fields, body = http_exchange(port, method, path, body, headers, timeout, tls)
    return status, body


def http_exchange(port, method, path, body=b"", headers=None, timeout=10.0, tls=None):
    """One request on a new connection: (status, response fields as an ``http.client`` message, body)."""
    if tls is not None:
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=tls)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, body=body or None, headers=headers or {})
        resp = conn.getresponse()
        return resp.status, resp.headers, resp.read()
    finally:
        conn.close()


def preflight(port, tls=None, full=True):
    """Check that a server answers the benchmark's endpoints with the right bytes.

    ``full=False``: only ``GET /`` and ``GET /bytes/1048576`` (what nginx serves).
    """
    problems = []
    status, body = http_request(port, "GET", "/", tls=tls)
    if (status, body) != (200, HELLO):
        problems.append(f"GET / -> {status} {body[:40]!r}")
    if full:
        payload = os.urandom(4096)
        status, body = http_request(port, "POST", "/echo", payload,
                                    {"Content-Type": "application/octet-stream"}, tls=tls)
        if (status, body) != (200, payload):
            problems.append(f"POST /echo -> {status}, {len(body)} bytes")
    status, body = http_request(port, "GET", "/bytes/1048576", tls=tls)
    if status != 200 or len(body) != 1048576:
        problems.append(f"GET /bytes/1048576 -> {status}, {len(body)} bytes")
    if full:
        status, body = http_request(port, "GET", "/delay/1", tls=tls)
        if (status, body) != (200, b"delayed"):
            problems.append(f"GET /delay/1 -> {status} {body[:40]!r}")
    return problems


def scenario_preflight(port, opts, tls=None):
    """Check what a scenario needs beyond ``preflight``: ``/items/ID``, the static files, a 304.

    Returns (problems, fields): ``fields`` are the request fields the scenario's wrk
    run adds for this server (for ``revalidate``: the validators of its own 200,
    sent back as a browser revalidating its cache does).
    """
    problems, fields = [], []
    if opts.get("items"):
        status, body = http_request(port, "GET", "/items/3f2a?after=3f29", tls=tls)
        if (status, body) != (200, b"item 3f2a"):
            problems.append(f"GET /items/3f2a -> {status} {body[:40]!r}")
    if opts.get("static"):
        for name, data in STATIC_FILES.items():
            status, body = http_request(port, "GET", f"/static/{name}", tls=tls)
            if (status, body) != (200, data):
                problems.append(f"GET /static/{name} -> {status}, {len(body)} bytes")
    if opts.get("revalidate") and not problems:
        _status, got, _body = http_exchange(port, "GET", opts["path"], tls=tls)
        for name, validator in (("If-None-Match", got["ETag"]), ("If-Modified-Since", got["Last-Modified"])):
            if validator is not None:
                fields.append(f"{name}: {validator}")
        if not fields:
            problems.append(f"GET {opts['path']}: no ETag or Last-Modified, so no 304 to ask for")
        else:
            status, _got, body = http_exchange(port, "GET", opts["path"], tls=tls,
                                               headers=dict(f.split(": ", 1) for f in fields))
            if status != 304 or body:
                problems.append(f"GET {opts['path']} with {', '.join(fields)} -> {status}, {len(body)} bytes")
    return problems, fields


# --------------------------------------------------------------------------- TLS and nginx


def make_certificates(workdir):
    """A CA and a server certificate for 127.0.0.1 and localhost it signed, ECDSA P-256 keys
    (what trustme makes for the tests), with the openssl command line.

    Returns ``(ca_file, cert_file, key_file)``; the key is PKCS#8, which granian requires.
    """
    d = workdir / "certs"
    d.mkdir()
    ca_key, ca_cert, key, csr, cert = (d / n for n in ("ca.key", "ca.pem", "server.key", "server.csr",
                                                        "server.pem"))
    ext = d / "server.ext"
    ext.write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n"
                   "keyUsage=digitalSignature\nextendedKeyUsage=serverAuth\n")
    ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    for cmd in (
        ["openssl", "req", "-x509", *ec, "-keyout", ca_key, "-out", ca_cert, "-days", "2",
         "-subj", "/O=evloop bench CA/CN=evloop bench CA"],
        ["openssl", "req", *ec, "-keyout", key, "-out", csr, "-subj", "/CN=localhost"],
        ["openssl", "x509", "-req", "-in", csr, "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial",
         "-days", "2", "-extfile", ext, "-out", cert],
    ):
        subprocess.run([str(c) for c in cmd], check=True, capture_output=True)
    return ca_cert, cert, key


NGINX_CONF = """
worker_processes 1;
worker_rlimit_nofile 30000;
daemon off;
error_log {dir}/error.log warn;
pid {dir}/nginx.pid;
events {{ worker_connections 20000; }}
http {{
    access_log {access_log};
    client_body_temp_path {dir}/tmp;
    proxy_temp_path {dir}/tmp;
    fastcgi_temp_path {dir}/tmp;
    uwsgi_temp_path {dir}/tmp;
    scgi_temp_path {dir}/tmp;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{port}{ssl} backlog=2048;
        {tls}
        location = / {{ default_type text/plain; return 200 "Hello, World!"; }}
        location = /healthz {{ default_type text/plain; return 200 "ok"; }}
        location = /bytes/1048576 {{ default_type application/octet-stream; alias {dir}/1m; }}
        location ~ ^/items/([^/]+)$ {{ default_type text/plain; return 200 "item $1"; }}
        # The static root as Debian's nginx.conf serves files (sendfile, tcp_nopush); ETag and
        # Last-Modified are on by default, so revalidations get 304.
        location /static/ {{
            alias {static}/;
            sendfile on;
            tcp_nopush on;
            types {{ text/css css; application/octet-stream bin; }}
        }}
        location / {{ return 404; }}
    }}
}}
"""


def start_nginx(name, env, log, workdir, certs, tls, static_root, access_log=None):
    """nginx with one worker, serving the hello text, a 1 MiB file of ``x`` (as the peers send),
    ``/items/ID`` and ``static_root`` under ``/static/``; its access log to ``access_log``, else off.

    nginx cannot listen on port 0, so the listening socket is made here on port 0
    and handed over as nginx does across its own binary upgrades: the descriptor
    is inherited and named in the ``NGINX`` environment variable, and the
    configuration's ``listen`` names the port that socket got.
    """
    d = workdir / "nginx"
    (d / "tmp").mkdir(parents=True, exist_ok=True)
    (d / "1m").write_bytes(b"x" * 1048576)
    # nginx's worker runs as an unprivileged user: it must reach the file (the run's temp
    # dir is 0700). Only the master, as root, reads the key.
    workdir.chmod(0o711)
    d.chmod(0o755)
    (d / "1m").chmod(0o644)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    try:
        sock.bind(("127.0.0.1", 0))
        sock.listen(2048)
        port = sock.getsockname()[1]
        tls_text = ""
        if certs is not None:
            tls_text = (f"ssl_certificate {certs[0]}; ssl_certificate_key {certs[1]}; "
                        "ssl_protocols TLSv1.2 TLSv1.3; ssl_session_cache shared:SSL:10m;")
        conf = NGINX_CONF.format(dir=d, port=port, ssl=" ssl" if certs else "", tls=tls_text,
                                 static=static_root, access_log=access_log or "off")
        (d / "nginx.conf").write_text(conf)
        fd = sock.fileno()
        return Server(name, ["nginx", "-p", str(d), "-c", str(d / "nginx.conf")],
                      dict(env, NGINX=f"{fd};"), log, tls=tls, pass_fds=(fd,))
    finally:
        sock.close()  # nginx holds its own copy


# --------------------------------------------------------------------------- scenarios

WRK_DONE = r"""
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%.0f,"bytes":%.0f,"duration_us":%.0f,"connect":%.0f,"read":%.0f,' ..
    '"write":%.0f,"status":%.0f,"timeout":%.0f,"p50_us":%.0f,"p90_us":%.0f,"p99_us":%.0f,' ..
    '"p999_us":%.0f,"max_us":%.0f}\n',
    summary.requests, summary.bytes, summary.duration, e.connect, e.read, e.write, e.status,
    e.timeout, latency:percentile(50), latency:percentile(90), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
"""

PIPELINE_LUA = r"""
init = function(args)
  local r = {}
  for i = 1, 16 do r[i] = wrk.format("GET", "/") end
  req = table.concat(r)
end
request = function() return req end
"""

# Every request's head differs (an X-Request-Id counter), as from real clients:
# no server can answer from a cache of heads it has seen. The counter starts at
# the script's argument (``run_wrk`` gives each wrk run its own), so the measured
# run does not repeat the warm-up's heads.
UNIQUE_LUA = r"""
counter = 0
init = function(args) counter = tonumber(args[1]) or 0 end
request = function()
  counter = counter + 1
  return wrk.format("GET", "/", {["X-Request-Id"] = tostring(counter)})
end
"""

def rate_lua(rate, conns):
    """A wrk script holding ``conns`` connections to ``rate`` requests a second in all: before each
    request a connection waits ``conns / rate`` seconds (``delay()``, whole milliseconds, the
    fractions carried over so the mean is exact). Each connection's next request waits for its
    response, so a server slower than that gets fewer: the report gives the rate reached."""
    return f"""
local interval_ms = {conns * 1000.0 / rate!r}
local owed = 0
delay = function()
  owed = owed + interval_ms
  local ms = math.floor(owed)
  owed = owed - ms
  return ms
end
"""


ECHO_LUA = r"""
wrk.method = "POST"
wrk.path = "/echo"
wrk.body = string.rep("e", 4096)
wrk.headers["Content-Type"] = "application/octet-stream"
"""

# name -> (title, kind, options)
SCENARIOS = {
    "hello": ("hello, keep-alive, 50 connections", "wrk", {"conns": 50, "path": "/"}),
    "hello-unique": ("hello, keep-alive, 50 connections, every head different", "wrk",
                     {"conns": 50, "path": "/", "lua": UNIQUE_LUA}),
    "hello-close": ("hello, `Connection: close`, 50 connections", "wrk",
                    {"conns": 50, "path": "/", "headers": ["Connection: close"]}),
    "pipeline16": ("hello, pipelined 16 deep, 50 connections", "wrk",
                   {"conns": 50, "path": "/", "lua": PIPELINE_LUA}),
    "conns1000": ("hello, keep-alive, 1,000 connections", "wrk", {"conns": 1000, "path": "/"}),
    "echo4k": ("POST /echo, 4 KiB bodies, 50 connections", "wrk",
               {"conns": 50, "path": "/echo", "lua": ECHO_LUA}),
    "bytes1m": ("GET /bytes/1048576, 10 connections", "wrk",
                {"conns": 10, "path": "/bytes/1048576", "bytes": True}),
    "latency": ("latency percentiles, hello keep-alive, 50 connections", "wrk",
                {"conns": 50, "path": "/", "latency": True}),
    # wrk's own histogram (what --latency prints), read in done(): p50, p99, p99.9.
    "latency-rate": ("latency percentiles at a fixed rate below saturation (`--latency-rate`), hello "
                     "keep-alive, 50 connections", "wrk", {"conns": 50, "path": "/", "latency": True, "rate": True}),
    # Heads as a browser sends them (load/bench/browser.py), new on every request.
    "browser-unique": ("browser-sized heads (12 fields, ~730 bytes) with a new path, query, referer and "
                       "cookie on every request: GET /items/ID, keep-alive, 50 connections", "wrk",
                       {"conns": 50, "path": "/", "lua": browser.lua_script(), "items": True}),
    # Files of the run's static root (STATIC_FILES) under /static/; nginx is the anchor.
    "static-1m": ("static file of 1 MiB, GET /static/1m.bin, 10 connections", "wrk",
                  {"conns": 10, "path": "/static/1m.bin", "bytes": True, "static": True}),
    "static-small": ("static file of 2 KiB, GET /static/2k.css, keep-alive, 50 connections", "wrk",
                     {"conns": 50, "path": "/static/2k.css", "static": True}),
    "static-304": ("static file revalidated: GET /static/2k.css with the If-None-Match and "
                   "If-Modified-Since of the server's own 200, answered 304, 50 connections", "wrk",
                   {"conns": 50, "path": "/static/2k.css", "static": True, "revalidate": True}),
    "idle-memory": ("idle memory per open keep-alive connection", "idle", {}),
    "delay1000": ("1,000 concurrent GET /delay/100, wall time", "delay", {}),
    # Over TLS (every server over TLS in the same run, the run's own certificates):
    "tls-hello": ("TLS: hello, keep-alive, 50 connections", "wrk", {"conns": 50, "path": "/", "tls": True}),
    "tls-handshake": ("TLS: hello, a full handshake per request (`openssl s_time -new`, 4 clients)",
                      "s_time", {"clients": 4, "path": "/", "tls": True}),
    # wrk keeps the session of a connection and offers it on the next one: with
    # `Connection: close` every request is a resumed handshake (a ticket, TLS 1.3).
    "tls-resume": ("TLS: hello, `Connection: close`, 50 connections: a resumed handshake per request",
                   "wrk", {"conns": 50, "path": "/", "headers": ["Connection: close"], "tls": True}),
    "tls-bytes1m": ("TLS: GET /bytes/1048576, 10 connections", "wrk",
                    {"conns": 10, "path": "/bytes/1048576", "bytes": True, "tls": True}),
    "tls-idle-memory": ("TLS: idle memory per open keep-alive connection, after its handshake and a request",
                        "idle", {"tls": True}),
}
NGINX_SCENARIOS = frozenset(s for s in SCENARIOS if s not in ("echo4k", "delay1000"))


def _css(size):
    rule = b".item-card { margin: 0 auto; padding: 8px 12px; border: 1px solid #d0d7de; }\n"
    return (rule * (size // len(rule) + 1))[:size]


# The static root of the run, made in its temp dir: (name, bytes).
STATIC_FILES = {"1m.bin": bytes(range(256)) * 4096, "2k.css": _css(2048)}


def make_static_root(workdir):
    """Write STATIC_FILES into ``workdir/static`` (readable by nginx's unprivileged worker); return it."""
    root = workdir / "static"
    root.mkdir()
    for name, data in STATIC_FILES.items():
        (root / name).write_bytes(data)
        (root / name).chmod(0o644)
    root.chmod(0o755)
    workdir.chmod(0o711)
    return root


_wrk_runs = 0


def run_wrk(port, opts, duration_s, workdir, timeout_s="5s"):
    """One wrk run; over https when ``opts["tls"]`` (wrk does not verify the certificate)."""
    global _wrk_runs
    _wrk_runs += 1
    script = workdir / "scenario.lua"
    script.write_text(opts.get("lua", "") + WRK_DONE)
    cmd = ["wrk", "-t1", f"-c{opts['conns']}", f"-d{duration_s}s", f"--timeout={timeout_s}",
           "-s", str(script)]
    for header in opts.get("headers", ()):
        cmd += ["-H", header]
    if PIN:
        cmd = ["taskset", "-c", CLIENT_CPU, *cmd]
    scheme = "https" if opts.get("tls") else "http"
    cmd.append(f"{scheme}://127.0.0.1:{port}{opts['path']}")
    # A counter's start for scripts that number their requests: each run its own range.
    cmd += ["--", str(_wrk_runs * 10**9)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=duration_s + 60)
    for line in out.stdout.splitlines():
        if line.startswith("WRKJSON "):
            return json.loads(line[8:])
    raise RuntimeError(f"wrk gave no summary: {out.stdout[-300:]} {out.stderr[-300:]}")


def measure_wrk(server, opts, duration_s, warmup_s, workdir):
    if warmup_s > 0:
        run_wrk(server.port, opts, warmup_s, workdir)
    pids = server.pids
    cpu0 = cpu_seconds(pids)
    busy0 = cpu_busy_seconds(SERVER_CPU)
    res = run_wrk(server.port, opts, duration_s, workdir)
    cpu_s = cpu_seconds(pids) - cpu0
    busy = cpu_busy_seconds(SERVER_CPU) - busy0
    seconds = res["duration_us"] / 1e6
    # The share of the server's CPU that other processes (or the hypervisor) took
    # during the run: near 0 on a quiet machine. Busy CPUs change what a request
    # costs (the server gets fewer, larger batches), so the figures are clean only then.
    others = max(0.0, busy - cpu_s) / seconds if PIN and seconds else None
    errors = res["connect"] + res["read"] + res["write"] + res["timeout"] + res["status"]
    if opts.get("bytes"):
        mib = res["bytes"] / 1048576
        return {"rate": mib / seconds, "per_cpu": mib / cpu_s if cpu_s else None,
                "cpu_s": cpu_s, "errors": errors, "cpu0_others": others, "detail": res}
    return {
        "rate": res["requests"] / seconds,
        "per_cpu": res["requests"] / cpu_s if cpu_s else None,
        "cpu_s": cpu_s,
        "errors": errors,
        "cpu0_others": others,
        "p50_ms": res["p50_us"] / 1000,
        "p90_ms": res["p90_us"] / 1000,
        "p99_ms": res["p99_us"] / 1000,
        "p999_ms": res["p999_us"] / 1000,
        "detail": res,
    }


S_TIME_LINE = re.compile(r"^(\d+) connections in [\d.]+s;.*bytes read (\d+)", re.M)


def run_s_time(port, opts, duration_s):
    """``opts["clients"]`` ``openssl s_time -new`` processes at once: a full handshake and one
    ``GET / HTTP/1.0`` per connection. Returns (connections, bytes read, wall seconds)."""
    cmd = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new", "-www", opts["path"],
           "-time", str(duration_s)]
    if PIN:
        cmd = ["taskset", "-c", CLIENT_CPU, *cmd]
    started = time.monotonic()
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(opts["clients"])]
    outs = [p.communicate(timeout=duration_s + 60)[0] for p in procs]
    wall = time.monotonic() - started
    conns = nbytes = 0
    for out in outs:
        match = S_TIME_LINE.search(out)
        if match is None:
            raise RuntimeError(f"openssl s_time gave no summary: {out[-300:]}")
        conns += int(match.group(1))
        nbytes += int(match.group(2))
    return conns, nbytes, wall


def measure_s_time(server, opts, duration_s, warmup_s):
    """Full handshakes (one request each) per second and per CPU-second of the server."""
    if warmup_s > 0:
        run_s_time(server.port, opts, warmup_s)
    pids = server.pids
    cpu0 = cpu_seconds(pids)
    busy0 = cpu_busy_seconds(SERVER_CPU)
    conns, nbytes, wall = run_s_time(server.port, opts, duration_s)
    cpu_s = cpu_seconds(pids) - cpu0
    busy = cpu_busy_seconds(SERVER_CPU) - busy0
    others = max(0.0, busy - cpu_s) / wall if PIN and wall else None
    # Every connection must have got its answer: s_time counts the bytes it read.
    short = 0 if conns and nbytes >= conns * len(HELLO) else 1
    return {"rate": conns / wall, "per_cpu": conns / cpu_s if cpu_s else None, "cpu_s": cpu_s,
            "errors": short, "cpu0_others": others, "detail": {"connections": conns, "bytes": nbytes}}


class _Conn:
    __slots__ = ("sock", "buf", "state", "started", "done_at")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.state = "connecting"
        self.started = 0.0
        self.done_at = 0.0


def _response_complete(buf):
    head_end = buf.find(b"\r\n\r\n")
    if head_end < 0:
        return False
    match = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", bytes(buf[:head_end]))
    length = int(match.group(1)) if match else 0
    return len(buf) >= head_end + 4 + length


def _says_close(buf):
    head = bytes(buf[: buf.find(b"\r\n\r\n")])
    return re.search(rb"(?im)^connection:[ \t]*close[ \t]*\r?$", head) is not None


def open_and_request(port, count, request, timeout_s, max_pending=256, send_now=True, tls=None):
    """Open ``count`` connections (at most ``max_pending`` connecting at once).

    With ``send_now`` each sends ``request`` as soon as it is connected and the
    function returns once every response is complete or ``timeout_s`` ran out.
    Without it, it returns once all are connected. With ``tls`` (a client
    context) each completes a TLS handshake first. Returns the connections.
    """
    sel = selectors.DefaultSelector()
    conns, opened, pending = [], 0, 0
    deadline = time.monotonic() + timeout_s
    finished = 0

    def done(conn, state):
        nonlocal pending, finished
        conn.state = state
        sel.unregister(conn.sock)
        pending -= 1
        finished += 1

    def send_request(conn):
        conn.started = time.monotonic()
        conn.sock.send(request)
        conn.state = "waiting"
        sel.modify(conn.sock, selectors.EVENT_READ, conn)

    try:
        while finished < count and time.monotonic() < deadline:
            while opened < count and pending < max_pending:
                sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
                sock.setblocking(False)
                sock.connect_ex(("127.0.0.1", port))
                conn = _Conn(sock)
                conns.append(conn)
                sel.register(sock, selectors.EVENT_WRITE, conn)
                opened += 1
                pending += 1
            for key, _mask in sel.select(0.05):
                conn = key.data
                if conn.state == "connecting":
                    err = conn.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        done(conn, "failed")
                        continue
                    if not send_now:
                        done(conn, "connected")
                        continue
                    if tls is not None:
                        sel.unregister(conn.sock)
                        conn.sock = tls.wrap_socket(conn.sock, server_side=False, do_handshake_on_connect=False,
                                                    server_hostname="127.0.0.1")
                        sel.register(conn.sock, selectors.EVENT_WRITE, conn)
                        conn.state = "handshaking"
                    else:
                        send_request(conn)
                        continue
                if conn.state == "handshaking":
                    try:
                        conn.sock.do_handshake()
                    except ssl.SSLWantReadError:
                        sel.modify(conn.sock, selectors.EVENT_READ, conn)
                        continue
                    except ssl.SSLWantWriteError:
                        sel.modify(conn.sock, selectors.EVENT_WRITE, conn)
                        continue
                    except OSError:
                        done(conn, "failed")
                        continue
                    send_request(conn)
                    continue
                try:
                    data = conn.sock.recv(65536)
                    while tls is not None and data and conn.sock.pending():
                        data += conn.sock.recv(65536)
                except ssl.SSLWantReadError:
                    continue  # a session ticket, or part of a record
                except (ConnectionError, ssl.SSLError):
                    data = b""
                if data:
                    conn.buf += data
                if not data or _response_complete(conn.buf):
                    conn.done_at = time.monotonic()
                    done(conn, "answered" if data else "closed")
                    if _says_close(conn.buf):
                        # As a real client does: some servers (gunicorn) linger
                        # until the client closes.
                        conn.sock.close()
                        conn.state = "closed"
    finally:
        sel.close()
    return conns


def still_open(conns):
    """Count answered connections the server has not closed."""
    alive = 0
    for conn in conns:
        if conn.state != "answered":
            continue
        try:
            # The socket's own recv, not a TLS socket's (which refuses flags): any byte means open.
            data = socket.socket.recv(conn.sock, 1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
            if data:
                alive += 1  # unexpected bytes, but open
        except BlockingIOError:
            alive += 1
        except OSError:
            pass
    return alive


def close_all(conns):
    for conn in conns:
        conn.sock.close()


def measure_idle(server, count, timeout_s):
    """RSS growth per connection left open after one request (over TLS for a server with ``tls``)."""
    # Warm the server up so lazily created state is in the baseline.
    for _ in range(50):
        http_request(server.port, "GET", "/", tls=server.tls)
    time.sleep(0.5)
    pids = server.pids
    base = rss_kib(pids)
    request = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    conns = open_and_request(server.port, count, request, timeout_s, tls=server.tls)
    try:
        time.sleep(1.0)
        alive = still_open(conns)
        grown = rss_kib(pids) - base
        started = time.monotonic()
        try:
            status, body = http_request(server.port, "GET", "/", timeout=10, tls=server.tls)
            fresh_ms = (time.monotonic() - started) * 1000 if status == 200 else None
        except OSError:
            fresh_ms = None
    finally:
        close_all(conns)
    answered = sum(1 for c in conns if c.state == "answered")
    return {
        "kib_per_conn": grown / alive if alive else None,
        "open": alive,
        "answered": answered,
        "rss_growth_kib": grown,
        "fresh_request_ms": fresh_ms,
        "errors": count - alive,
    }


def measure_delay(server, count, timeout_s):
    # Open all connections and make one request on each first, so every one has been
    # accepted (and, in threaded servers, has its thread): the timed part is the
    # delayed requests alone. Connections the server closed are replaced by fresh ones.
    warm = open_and_request(server.port, count, b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
                            timeout_s)
    conns = [c for c in warm if c.state == "answered"]
    close_all(c for c in warm if c.state != "answered")
    for conn in conns:
        conn.buf = bytearray()
    if len(conns) < count:
        conns += open_and_request(server.port, count - len(conns), b"", timeout_s, send_now=False)
    try:
        connected = [c for c in conns if c.state in ("answered", "connected")]
        request = b"GET /delay/100 HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
        sel = selectors.DefaultSelector()
        pids = server.pids
        cpu0 = cpu_seconds(pids)
        started = time.monotonic()
        for conn in connected:
            conn.sock.send(request)
            conn.state = "waiting"
            sel.register(conn.sock, selectors.EVENT_READ, conn)
        waiting = len(connected)
        deadline = started + timeout_s
        last = started
        while waiting and time.monotonic() < deadline:
            for key, _mask in sel.select(0.05):
                conn = key.data
                try:
                    data = conn.sock.recv(65536)
                except ConnectionError:
                    data = b""
                if data:
                    conn.buf += data
                if not data or _response_complete(conn.buf):
                    ok = data and conn.buf.startswith(b"HTTP/1.1 200") and conn.buf.endswith(b"delayed")
                    conn.state = "answered" if ok else "failed"
                    last = time.monotonic()
                    sel.unregister(conn.sock)
                    waiting -= 1
                    if _says_close(conn.buf):
                        conn.sock.close()
        sel.close()
        cpu_s = cpu_seconds(pids) - cpu0
        done = sum(1 for c in connected if c.state == "answered")
    finally:
        close_all(conns)
    return {
        "wall_s": (last - started) if done == count else None,
        "done": done,
        "cpu_s": cpu_s,
        "errors": count - done,
    }


# --------------------------------------------------------------------------- setup


def setup(venv, requirements, nginx=False):
    if not (venv / "bin" / "python").exists():
        print(f"creating {venv}", file=sys.stderr)
        base = getattr(sys, "_base_executable", sys.executable)
        subprocess.run([base, "-m", "venv", str(venv)], check=True)
    py = str(venv / "bin" / "python")
    probe = "import " + ", ".join(PEER_PACKAGES)
    if subprocess.run([py, "-c", probe], capture_output=True).returncode != 0:
        print("installing the peers into the bench venv", file=sys.stderr)
        subprocess.run([py, "-m", "pip", "install", "-q", "-r", str(requirements)], check=True)
    debs = [tool for tool in ("wrk", "nginx") if shutil.which(tool) is None and (tool != "nginx" or nginx)]
    if debs:
        if os.geteuid() != 0:
            sys.exit(f"{' and '.join(debs)} missing: install (apt-get install {' '.join(debs)}) or run this as root")
        print(f"installing {' and '.join(debs)} with apt-get", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=True)
        # The nginx package's own service is not wanted (and not started where policy-rc.d says so):
        # the benchmark runs nginx itself, in its temp dir.
        subprocess.run(["apt-get", "install", "-y", "-qq", *debs], check=True)
    if shutil.which("taskset") is None:
        sys.exit("taskset (util-linux) is missing")


PEER_PACKAGES = ("uvicorn", "httptools", "uvloop", "h11", "granian", "tornado", "waitress", "gunicorn", "flask",
                 "starlette")


def peer_versions(py):
    """The versions of the peer packages ``py`` has (those it lacks are left out), and wrk's."""
    code = (
        "import importlib.metadata as m\n"
        f"for n in {PEER_PACKAGES!r}:\n"
        "    try:\n"
        "        print(n, m.version(n))\n"
        "    except m.PackageNotFoundError:\n"
        "        pass"
    )
    out = subprocess.run([py, "-c", code], capture_output=True, text=True)
    first = "not installed"
    if shutil.which("wrk"):
        wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True)
        text = wrk.stdout or wrk.stderr
        first = text.splitlines()[0].split()[1] if text else "?"
    return out.stdout.split("\n")[:-1] + [f"wrk {first}"]


def machine_text():
    model = "unknown"
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return (f"{os.cpu_count()} CPUs ({model}), Linux {platform.release()}, "
            f"Python {platform.python_version()}")


# --------------------------------------------------------------------------- report


def _median_spread(values):
    values = [v for v in values if v is not None]
    if not values:
        return None, None
    med = statistics.median(values)
    spread = (max(values) - min(values)) / 2 / med if med else 0.0
    return med, spread


def _fmt(value, digits=0):
    if value is None:
        return "—"
    if digits == 0:
        return f"{value:,.0f}"
    return f"{value:,.{digits}f}"


def _ratio(value, base):
    if value is None or not base:
        return "—"
    return f"{value / base:.2f}x"


def report(results, servers, scenarios, baseline, names, pairs=()):
    """Return the markdown tables for ``results[scenario][server] -> [run dict]``.

    ``pairs`` is a sequence of ``(a, b)`` server names whose headline figures are
    also reported as the ratio a / b, in a table of their own.
    """
    lines = []
    headline = {}
    figures = {}
    for scen in scenarios:
        title, kind, opts = SCENARIOS[scen]
        runs = results.get(scen, {})
        lines.append(f"#### {title} (`{scen}`)")
        lines.append("")

        def med(server, key, runs=runs):
            return _median_spread([r.get(key) for r in runs.get(server, []) if "error" not in r])

        def errs(server, runs=runs):
            rs = runs.get(server, [])
            failed = [r["error"] for r in rs if "error" in r]
            if failed:
                return f"failed: {failed[0][:60]}"
            return _fmt(statistics.median([r.get("errors", 0) for r in rs])) if rs else "—"

        # Each table: columns of (label, key, digits, kind); kind "ratio" is the
        # figure over the baseline's, "spread" its spread over rounds.  The
        # headline key is the figure the ratios table above reports.
        if kind == "wrk" and opts.get("latency"):
            columns = [("p50 ms", "p50_ms", 2, "value"), (f"vs {baseline}", "p50_ms", 0, "ratio"),
                       ("p90 ms", "p90_ms", 2, "value"), ("p99 ms", "p99_ms", 2, "value"),
                       (f"vs {baseline}", "p99_ms", 0, "ratio"), ("p99.9 ms", "p999_ms", 2, "value"),
                       (f"vs {baseline}", "p999_ms", 0, "ratio")]
            if opts.get("rate"):  # the rate reached: below the one asked for, the server saturated
                columns.insert(0, ("req/s", "rate", 0, "value"))
            headline_key = "p99_ms"
        elif kind in ("wrk", "s_time"):
            unit = "MiB" if opts.get("bytes") else "req"
            columns = [(f"{unit}/s", "rate", 0, "value"), ("±", "rate", 0, "spread"),
                       (f"vs {baseline}", "rate", 0, "ratio"), (f"{unit}/CPU-s", "per_cpu", 0, "value"),
                       ("±", "per_cpu", 0, "spread"), (f"vs {baseline}", "per_cpu", 0, "ratio")]
            headline_key = "per_cpu"
        elif kind == "idle":
            columns = [("KiB/conn", "kib_per_conn", 2, "value"), ("±", "kib_per_conn", 0, "spread"),
                       (f"vs {baseline}", "kib_per_conn", 0, "ratio"), ("open", "open", 0, "value"),
                       ("fresh request ms", "fresh_request_ms", 1, "value")]
            headline_key = "kib_per_conn"
        else:  # delay
            columns = [("wall s", "wall_s", 3, "value"), ("±", "wall_s", 0, "spread"),
                       (f"vs {baseline}", "wall_s", 0, "ratio"), ("done", "done", 0, "value"),
                       ("server CPU s", "cpu_s", 2, "value")]
            headline_key = "wall_s"
        lines.append("| server | " + " | ".join(label for label, *_ in columns) + " | errors |")
        lines.append("|---|" + "---:|" * (len(columns) + 1))
        for s in servers:
            cells = []
            for _, key, digits, what in columns:
                value, spread = med(s, key)
                if what == "value":
                    cells.append(_fmt(value, digits))
                elif what == "spread":
                    cells.append(_pct(spread))
                else:
                    cells.append(_ratio(value, med(baseline, key)[0]))
            lines.append(f"| {names[s]} | " + " | ".join(cells) + f" | {errs(s)} |")
            value, base = med(s, headline_key)[0], med(baseline, headline_key)[0]
            headline.setdefault(s, {})[scen] = (value / base) if value and base else None
            figures.setdefault(s, {})[scen] = value
        lines.append("")

    head = [f"#### Ratios to {baseline}", "",
            "Requests (MiB for `bytes1m`, `tls-bytes1m` and `static-1m`) per CPU-second of the server as a "
            f"ratio to {baseline}; for `latency` and `latency-rate` p99, `idle-memory` and `tls-idle-memory` KiB "
            "per connection and `delay1000` wall time the ratio is of the figure itself (lower is better "
            "there).", "",
            "| server | " + " | ".join(scenarios) + " |",
            "|---|" + "---:|" * len(scenarios)]
    for s in servers:
        cells = [f"{headline.get(s, {}).get(sc):.2f}x" if headline.get(s, {}).get(sc) else "—"
                 for sc in scenarios]
        head.append(f"| {names[s]} | " + " | ".join(cells) + " |")
    pairs = [(a, b) for a, b in pairs if a in servers and b in servers]
    if pairs:
        head += ["", "#### Pairs", "",
                 "The same headline figures as a ratio of one server to another (`a / b`): above 1 "
                 "means more requests per CPU-second for `a`, except for `latency`, `latency-rate`, "
                 "`idle-memory` and `delay1000`, where lower is better.", "",
                 "| a / b | " + " | ".join(scenarios) + " |",
                 "|---|" + "---:|" * len(scenarios)]
        for a, b in pairs:
            cells = []
            for sc in scenarios:
                fa, fb = figures.get(a, {}).get(sc), figures.get(b, {}).get(sc)
                cells.append(f"{fa / fb:.2f}x" if fa and fb else "—")
            head.append(f"| {names[a]} / {names[b]} | " + " | ".join(cells) + " |")
    return "\n".join(head + [""] + lines)


def default_pairs(servers):
    """The comparisons issue 14 asks about, among ``servers``: access log on against off,
    evloop against uvicorn and granian in like configurations, and after against before."""
    pairs = [("evloop", "evloop-nolog"), ("evloop", "uvicorn-log"), ("evloop-nolog", "uvicorn"),
             ("evloop", "uvicorn"), ("evloop-nolog", "granian-asgi"), ("evloop-nolog", "granian-wsgi"),
             ("evloop-nolog", "nginx"),
             # Every server's access log on against off, and evloop against the peers with theirs on.
             ("uvicorn-log", "uvicorn"), ("granian-asgi-log", "granian-asgi"), ("nginx-log", "nginx"),
             ("evloop", "granian-asgi-log"), ("evloop", "nginx-log"),
             # WSGI (issue 18): against granian's WSGI interface and waitress, on the raw app and on Flask.
             ("evloop-wsgi", "evloop-wsgi-nolog"), ("evloop-wsgi-nolog", "granian-wsgi"),
             ("evloop-wsgi-nolog", "waitress"), ("evloop-wsgi-nolog", "gunicorn"),
             ("evloop-wsgi-flask", "granian-wsgi-flask"), ("evloop-wsgi-flask", "waitress-flask"),
             ("evloop-wsgi-flask", "gunicorn-flask")]
    for base in EVLOOP_VARIANTS:
        # Each revision against the work tree, or against the first revision named when the
        # work tree is not in the run.
        revised = [s for s in servers if s.partition("@")[0] == base and "@" in s]
        reference = base if base in servers else (revised[0] if revised else None)
        pairs += [(reference, s) for s in revised if s != reference]
    return pairs


def _pct(spread):
    return "—" if spread is None else f"{spread * 100:.0f}%"


# --------------------------------------------------------------------------- main


def serves(spec, scenario):
    """Whether the server can run ``scenario`` (its endpoints; TLS options for a TLS scenario; a
    way to serve the static root for a static one)."""
    if spec.serves is not None and scenario not in spec.serves:
        return False
    opts = SCENARIOS[scenario][2]
    if opts.get("static") and spec.static_args is None:
        return False
    return spec.tls_args is not None or not opts.get("tls")


def select_servers(spec_text, revs, parser):
    """Return (server names, revision ids) from ``--servers`` and ``--evloop-rev``.

    A name ``evloop@REV`` or ``evloop-nolog@REV`` runs that variant from commit
    REV (any name git knows; reported by its abbreviated id). Each ``--evloop-rev``
    adds both variants of that commit, after the last evloop server in the list,
    unless the list already names one of them.
    """
    known = list(server_commands("", Path(), []))
    names = [s for s in spec_text.split(",") if s] if spec_text else known
    servers, shorts = [], []
    for name in names:
        base, at, rev = name.partition("@")
        if at:
            if base not in EVLOOP_VARIANTS:
                parser.error(f"{name!r}: only {' and '.join(EVLOOP_VARIANTS)} run from another revision")
            short = resolve_rev(rev)
            name = f"{base}@{short}"
            if short not in shorts:
                shorts.append(short)
        elif name not in known:
            parser.error(f"unknown server {name!r}; known: {', '.join(known)}, and evloop@REV, evloop-nolog@REV")
        if name not in servers:
            servers.append(name)
    for rev in revs:
        short = resolve_rev(rev)
        if short in shorts:
            continue
        shorts.append(short)
        last = max((i for i, s in enumerate(servers) if s.partition("@")[0] in EVLOOP_VARIANTS), default=len(servers) - 1)
        servers[last + 1:last + 1] = [f"{v}@{short}" for v in EVLOOP_VARIANTS]
    return servers, shorts


def log_summary(path):
    """Count the lines and bytes a server wrote to its log file; keep its first and last lines."""
    lines, first, last = 0, [], []
    with open(path, "rb") as f:
        for line in f:
            lines += 1
            if len(first) < 5:
                first.append(line)
            last = (last + [line])[-2:]
    sample = first + last[-max(0, lines - 5):] if lines > 5 else first
    return lines, path.stat().st_size, b"".join(sample)


def short_argv(argv, py, venv_bin):
    """The command line as a person would type it: the interpreter as ``python``, venv tools by name."""
    words = ["python" if a == py else a.removeprefix(str(venv_bin) + os.sep) for a in argv]
    return shlex.join(words)


def main(argv=None):
    global PIN
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--duration", type=int, default=10, help="seconds per measured wrk run")
    parser.add_argument("--warmup", type=int, default=None,
                        help="seconds of unmeasured wrk load first (default: 1, or 2 from --duration 10)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--servers", default=None,
                        help="comma-separated names (default: all; see the docstring), "
                             "evloop@REV and evloop-nolog@REV included")
    parser.add_argument("--evloop-rev", action="append", default=[], metavar="REV",
                        help="also run evloop@REV and evloop-nolog@REV: evloop from commit REV of this "
                             "repository (repeatable)")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS), help="comma-separated names")
    parser.add_argument("--baseline", default="evloop", help="server the ratios are relative to")
    parser.add_argument("--idle-conns", type=int, default=5000)
    parser.add_argument("--delay-conns", type=int, default=1000)
    parser.add_argument("--latency-rate", type=float, default=10000.0, metavar="REQ_PER_S",
                        help="requests a second in all for latency-rate (default 10,000: below the saturation "
                             "of evloop, uvicorn, granian and nginx on one core; the table gives the rate reached)")
    parser.add_argument("--client-timeout", type=float, default=20.0,
                        help="limit for the idle-memory and delay clients, seconds")
    parser.add_argument("--evloop-args", default="--backlog 2048",
                        help="extra evloop-demo options (one string), for every evloop variant")
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--no-setup", action="store_true",
                        help="skip building the venv / installing wrk; without the venv, only the "
                             "servers that need no peer package (evloop*, threading) can run")
    parser.add_argument("--results-dir", type=Path, default=RESULTS,
                        help="where the raw JSON and the servers' log go (default: load/results)")
    parser.add_argument("--append", action="store_true", help=f"append the report to {BENCHMARKS_MD}")
    args = parser.parse_args(argv)

    servers, revs = select_servers(args.servers, args.evloop_rev, parser)
    scenarios = [s for s in args.scenarios.split(",") if s]
    for s in scenarios:
        if s not in SCENARIOS:
            parser.error(f"unknown scenario {s!r}; known: {', '.join(SCENARIOS)}")
    if not args.no_setup:
        setup(args.venv, HERE / "requirements.txt", nginx="nginx" in servers)
    venv_bin = args.venv / "bin"
    py = str(venv_bin / "python")
    if not Path(py).exists():
        # Only with --no-setup: evloop and the stdlib server need nothing from the venv.
        print(f"note: no bench venv at {args.venv}; the servers run on {sys.executable}", file=sys.stderr)
        py = sys.executable
    commands = server_commands(py, venv_bin, shlex.split(args.evloop_args))
    workdir = Path(tempfile.mkdtemp(prefix="evloop-bench-"))
    for short in revs:
        source = extract_rev(short, workdir)
        for variant in EVLOOP_VARIANTS:
            commands[f"{variant}@{short}"] = evloop_spec(variant, py, shlex.split(args.evloop_args), source,
                                                         label=short)
    missing = [s for s in servers if commands[s].needs_venv and not Path(commands[s].argv[0]).exists()
               or commands[s].nginx and shutil.which("nginx") is None]
    if missing:
        shutil.rmtree(workdir, ignore_errors=True)
        parser.error(f"{', '.join(missing)}: not installed in {args.venv} (nginx: not on PATH) "
                     "(run without --no-setup to build the bench venv and install nginx)")
    baseline = args.baseline if args.baseline in servers else servers[0]
    if baseline != args.baseline:
        print(f"note: {args.baseline} is not in --servers; ratios are to {baseline}", file=sys.stderr)
    warmup = args.warmup if args.warmup is not None else (2 if args.duration >= 10 else 1)

    PIN = (os.cpu_count() or 1) >= 2
    if PIN:
        os.sched_setaffinity(0, {int(CLIENT_CPU)})  # this script's clients stay off the server's CPU
    else:
        print("warning: fewer than 2 CPUs, nothing is pinned", file=sys.stderr)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536)
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    if want < max(args.idle_conns, args.delay_conns) + 100:
        print(f"warning: open-file limit {want} is low for the connection scenarios", file=sys.stderr)

    base_env = dict(os.environ)
    base_env.pop("PYTHONDONTWRITEBYTECODE", None)
    envs = {}
    for s in servers:
        spec = commands[s]
        envs[s] = dict(base_env, PYTHONPATH=os.pathsep.join([str(PEERS), str(spec.pythonpath or REPO)]))
        if spec.pythonpath is not None:
            found = evloop_imported_from(py, envs[s])
            if found is None or found.resolve() != Path(spec.pythonpath).resolve():
                shutil.rmtree(workdir, ignore_errors=True)
                sys.exit(f"{s}: {py} imports evloop from {found}, not from {spec.pythonpath}")
    tls_files, tls_client = (), None
    if any(SCENARIOS[s][2].get("tls") for s in scenarios):
        tls_files = make_certificates(workdir)  # (CA, certificate, key), made for this run
        tls_client = ssl.create_default_context(cafile=str(tls_files[0]))
    static_root = make_static_root(workdir)  # nginx serves it in every scenario; the others in static-*
    results_dir = args.results_dir
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    log_path = results_dir / f"bench-{stamp}-servers.log"
    results = {}
    names = {s: s for s in servers}
    started_at = time.monotonic()

    with open(log_path, "ab") as log:
        for rnd in range(args.rounds):
            order = servers[rnd % len(servers):] + servers[:rnd % len(servers)]
            for scen in scenarios:
                title, kind, opts = SCENARIOS[scen]
                if opts.get("rate"):
                    opts = dict(opts, lua=rate_lua(args.latency_rate, opts["conns"]))
                for name in order:
                    spec = commands[name]
                    if not serves(spec, scen):
                        continue
                    log.write(f"=== round {rnd + 1} {scen} {name}\n".encode())
                    log.flush()
                    own_log = workdir / (re.sub(r"[^\w.-]", "_", name) + ".log") if spec.log_file else None
                    out = open(own_log, "wb") if own_log else log  # closed below
                    certs = tls_files[1:] if opts.get("tls") else None
                    client_tls = tls_client if opts.get("tls") else None
                    static = static_root if opts.get("static") else None
                    env = dict(envs[name], BENCH_STATIC_ROOT=str(static_root)) if static else envs[name]
                    server = None
                    try:
                        if spec.nginx:
                            server = start_nginx(name, env, out, workdir, certs, client_tls, static_root,
                                                 access_log=own_log)
                        else:
                            server = Server(name, spec.argv_for(certs, static), env, out, tls=client_tls)
                        server.wait_ready()
                        problems = preflight(server.port, client_tls, full=spec.serves is None)
                        more, fields = scenario_preflight(server.port, opts, client_tls)
                        if problems or more:
                            raise RuntimeError("; ".join(problems + more))
                        if kind == "wrk":
                            wrk_opts = dict(opts, headers=[*opts.get("headers", ()), *fields])
                            res = measure_wrk(server, wrk_opts, args.duration, warmup, workdir)
                        elif kind == "s_time":
                            res = measure_s_time(server, opts, args.duration, warmup)
                        elif kind == "idle":
                            res = measure_idle(server, args.idle_conns, args.client_timeout)
                        else:
                            res = measure_delay(server, args.delay_conns, args.client_timeout)
                        if server.proc.poll() is not None:
                            raise RuntimeError(
                                f"server exited with status {server.proc.returncode} during the run"
                            )
                    except Exception as exc:  # a server that fails is reported, not fatal
                        res = {"error": f"{type(exc).__name__}: {exc}"}
                    finally:
                        if server is not None:
                            server.stop()
                        if own_log:
                            out.close()
                    if own_log:
                        # The log's size is the evidence that it was written (warm-up and
                        # preflight requests included); the file itself is not kept.
                        lines, size, sample = log_summary(own_log)
                        res["log_lines"], res["log_bytes"] = lines, size
                        log.write(f"--- {own_log.name}: {lines} lines, {size} bytes; first and last:\n".encode()
                                  + sample)
                        own_log.unlink()
                    results.setdefault(scen, {}).setdefault(name, []).append(res)
                    brief = {k: (round(v, 3) if isinstance(v, float) else v)
                             for k, v in res.items() if k != "detail"}
                    print(f"round {rnd + 1}/{args.rounds} {scen:12} {name:16} {brief}",
                          file=sys.stderr, flush=True)

    shutil.rmtree(workdir, ignore_errors=True)
    raw_path = results_dir / f"bench-{stamp}.json"
    raw_path.write_text(json.dumps(results, indent=1))
    command = "python load/bench/run.py " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    body = report(results, servers, scenarios, baseline, names, default_pairs(servers))
    server_lines = []
    for s in servers:
        spec = commands[s]
        where = " (stdout and stderr to a file in a temp dir)" if spec.log_file else ""
        server_lines.append(f"  - `{s}`: {spec.description}: `{short_argv(spec.argv, py, venv_bin)}`{where}")
    for short in revs:
        server_lines.append(f"  - `@{short}`: evloop's package from commit {short} (`git archive`), "
                            "imported through PYTHONPATH by the same interpreter")
    raw_shown = (f"`load/results/{raw_path.name}`" if results_dir.resolve() == RESULTS.resolve()
                 else f"`{raw_path}`")
    header = "\n".join([
        f"### Benchmark run {datetime.datetime.now().strftime('%Y-%m-%d %H:%M')}",
        "",
        f"- Machine: {machine_text()}",
        f"- Command: `{command.strip()}`",
        f"- Peers: {', '.join(peer_versions(py))}",
        f"- evloop: work tree at {work_tree_text()}",
        "- Servers:",
        *server_lines,
        f"- {args.rounds} round(s) of {args.duration:g} s per wrk run (after {warmup:g} s warm-up); "
        f"server on CPU {SERVER_CPU}, wrk and clients on CPU {CLIENT_CPU}"
        if PIN else "- not pinned (fewer than 2 CPUs)",
        f"- Wall time of the run: {time.monotonic() - started_at:.0f} s; raw results: {raw_shown}",
        *busy_text(results),
        "- Median over rounds; ± is (max - min) / 2 / median.",
        "",
        "",
    ])
    text = header + body
    print(text)
    if args.append:
        with open(BENCHMARKS_MD, "a") as f:
            f.write("\n" + text + "\n")
        print(f"appended to {BENCHMARKS_MD}", file=sys.stderr)
    return 0


def busy_text(results):
    """A header line on how much of the server's CPU other work took during the wrk runs."""
    shares = [r["cpu0_others"] for per_server in results.values() for runs in per_server.values()
              for r in runs if r.get("cpu0_others") is not None]
    if not shares:
        return []
    return [f"- CPU {SERVER_CPU} taken by other processes during the measured wrk runs: median "
            f"{statistics.median(shares):.0%}, max {max(shares):.0%} of the run (near 0% on a quiet "
            "machine; more changes what a request costs, so figures are not clean)"]


def work_tree_text():
    """The commit the work tree is at, and whether evloop/ differs from it."""
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"],
                          capture_output=True, text=True).stdout.strip() or "?"
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "evloop"],
                           capture_output=True, text=True).stdout.strip()
    return f"{head}" + (" with uncommitted changes under evloop/" if dirty else " (evloop/ as committed)")


PIN = False

if __name__ == "__main__":
    sys.exit(main())
