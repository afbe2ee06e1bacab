"""Peak memory of a WSGI server while it takes one large upload: evloop, waitress and gunicorn side by side.

Run: .venv/bin/python load/upload_memory.py [--size 1G] [--servers evloop,waitress,gunicorn]
                                            [--chunked] [--to-file] [--max-rise-mib N]

Each server runs the same WSGI app (written to a temporary folder): it reads
``wsgi.input`` in 64 KiB blocks until the body ends, throws the bytes away
(``--to-file``: writes them to a temporary file) and answers with how many it
read.  One client on a raw socket sends ``--size`` bytes (Content-Length, or
``--chunked``) from one repeated 1 MiB block, so the client holds 1 MiB
whatever the size.  The figure is the rise of the server's peak resident
memory (``VmHWM`` in ``/proc/PID/status``: the kernel's own high-water mark,
so no peak between samples is missed) from just before the upload (after one
4 KiB warm-up upload) to just after its response: for each process of the
server (gunicorn's master and worker), the largest rise.

Servers: ``evloop`` (``python -m evloop.demo --wsgi``, defaults but the access
log off; this checkout), ``waitress`` (``waitress-serve``, 4 threads;
its ``max_request_body_size``, 1 GiB, refuses a body of exactly 1 GiB, so
it is raised to twice the upload) and ``gunicorn`` (one sync worker) when they are installed (``pip install -e '.[load]'`` has waitress;
the ``test`` extra has gunicorn).  Ports are found from ``/proc`` (each
server binds port 0).  With ``--max-rise-mib`` the exit status is 1 when
evloop's rise passes it (the test suite's smoke run asserts 16 MiB for 64 MiB).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from bench.run import listening_port, process_tree  # noqa: E402

MIB = 1 << 20
BLOCK = bytes(range(256)) * 4096  # 1 MiB

APP = '''
import os, tempfile

def app(environ, start_response):
    stream = environ["wsgi.input"]
    length = environ.get("CONTENT_LENGTH")
    left = int(length) if length else None  # None: chunked, read to the end
    sink = tempfile.TemporaryFile() if os.environ.get("UPLOAD_TO_FILE") else None
    got = 0
    while left is None or left > 0:
        block = stream.read(65536 if left is None else min(65536, left))
        if not block:
            break
        got += len(block)
        if left is not None:
            left -= len(block)
        if sink is not None:
            sink.write(block)
    if sink is not None:
        sink.close()
    body = b"%d" % got
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]
'''


def server_commands(py: str, size: int) -> dict[str, list[str] | None]:
    """Each server's command line for a ``size``-byte upload, or None when it is not installed."""
    def installed(module: str) -> bool:
        return importlib.util.find_spec(module) is not None

    return {
        "evloop": [py, "-m", "evloop.demo", "--wsgi", "upload_app:app", "--port", "0", "--no-access-log",
                   "--log-level", "warning", "--max-body-bytes", str(max(size, 1 << 30))],
        # waitress refuses a body of max_request_body_size (1 GiB) or more, chunk framing
        # counted: raised well past the upload.
        "waitress": [py, "-m", "waitress", "--host=127.0.0.1", "--port=0", "--threads=4",
                     f"--max-request-body-size={max(2 * size, 1 << 30)}", "upload_app:app"]
        if installed("waitress") else None,
        "gunicorn": [py, "-m", "gunicorn", "-w", "1", "-k", "sync", "-b", "127.0.0.1:0", "--timeout", "300",
                     "--log-level", "warning", "upload_app:app"] if installed("gunicorn") else None,
    }


def peak_rss(pids: list[int]) -> dict[int, int]:
    """``VmHWM`` of each process, in bytes."""
    peaks = {}
    for pid in pids:
        try:
            with open(f"/proc/{pid}/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        peaks[pid] = int(line.split()[1]) * 1024
        except OSError:
            continue
    return peaks


def upload(port: int, size: int, chunked: bool) -> int:
    """POST ``size`` bytes; returns the count the app answers with."""
    with socket.create_connection(("127.0.0.1", port), timeout=600) as sock:
        framing = b"Transfer-Encoding: chunked" if chunked else b"Content-Length: %d" % size
        sock.sendall(b"POST /upload HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n%s\r\n\r\n" % framing)
        left = size
        while left:
            block = BLOCK if left >= len(BLOCK) else BLOCK[:left]
            sock.sendall(b"%x\r\n%s\r\n" % (len(block), block) if chunked else block)
            left -= len(block)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        reply = b""
        while chunk := sock.recv(65536):
            reply += chunk
    head, _, body = reply.partition(b"\r\n\r\n")
    if not head.startswith(b"HTTP/1.1 200"):
        raise RuntimeError(f"the upload got {head[:200]!r}")
    return int(body)


def measure(name: str, argv: list[str], folder: Path, size: int, chunked: bool, to_file: bool) -> dict[str, float]:
    """Start ``argv`` in ``folder``, warm it up, upload ``size`` bytes; the figures."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{folder}", "UPLOAD_TO_FILE": "1" if to_file else ""}
    log = open(folder / f"{name}.log", "wb")  # noqa: SIM115 (closed below)
    proc = subprocess.Popen(argv, cwd=folder, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=log)
    try:
        deadline = time.monotonic() + 30
        port = None
        while port is None:
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start:\n{(folder / f'{name}.log').read_text()[-2000:]}")
            port = listening_port(process_tree(proc.pid))
            time.sleep(0.05)  # polling /proc: there is no event to wait on
        upload(port, 4096, chunked)  # warm-up: imports and code paths, not the large-body path being measured
        before = peak_rss(process_tree(proc.pid))
        started = time.monotonic()
        got = upload(port, size, chunked)
        elapsed = time.monotonic() - started
        after = peak_rss(process_tree(proc.pid))
        if got != size:
            raise RuntimeError(f"{name}: the app read {got} bytes of {size}")
        rise = max(after[pid] - before.get(pid, after[pid]) for pid in after)
        return {"rise_mib": rise / MIB, "peak_mib": max(after.values()) / MIB, "seconds": elapsed}
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def parse_size(text: str) -> int:
    units = {"K": 1 << 10, "M": 1 << 20, "G": 1 << 30}
    return int(text[:-1]) * units[text[-1].upper()] if text[-1:].upper() in units else int(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="1G", help="bytes to upload: 1073741824, 64M, 1G (default: %(default)s)")
    parser.add_argument("--servers", default="evloop,waitress,gunicorn",
                        help="comma-separated, those not installed are skipped (default: %(default)s)")
    parser.add_argument("--chunked", action="store_true", help="send the body chunked instead of with a length")
    parser.add_argument("--to-file", action="store_true", help="the app writes the body to a temporary file")
    parser.add_argument("--max-rise-mib", type=float, default=None,
                        help="exit 1 when evloop's peak RSS rises by more than this")
    args = parser.parse_args()
    size = parse_size(args.size)
    commands = server_commands(sys.executable, size)
    wanted = [name.strip() for name in args.servers.split(",") if name.strip()]
    for name in wanted:
        if name not in commands:
            parser.error(f"unknown server {name!r}; known: {', '.join(commands)}")
    folder = Path(tempfile.mkdtemp(prefix="upload-memory-"))
    failed = False
    try:
        (folder / "upload_app.py").write_text(APP)
        print(f"upload of {size:,} bytes ({'chunked' if args.chunked else 'Content-Length'}), the app "
              f"{'writes it to a temporary file' if args.to_file else 'reads it in 64 KiB blocks'}; "
              f"python {sys.version.split()[0]}")
        print(f"{'server':10s} {'peak RSS rise':>14s} {'peak RSS':>10s} {'seconds':>8s}")
        for name in wanted:
            argv = commands[name]
            if argv is None:
                print(f"{name:10s} not installed, skipped")
                continue
            figures = measure(name, argv, folder, size, args.chunked, args.to_file)
            print(f"{name:10s} {figures['rise_mib']:10.1f} MiB {figures['peak_mib']:6.1f} MiB "
                  f"{figures['seconds']:8.2f}", flush=True)
            if name == "evloop" and args.max_rise_mib is not None and figures["rise_mib"] > args.max_rise_mib:
                print(f"evloop's peak RSS rose by {figures['rise_mib']:.1f} MiB, over {args.max_rise_mib} MiB")
                failed = True
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
