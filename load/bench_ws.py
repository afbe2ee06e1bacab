#!/usr/bin/env python3
"""WebSocket echo benchmark: messages per CPU-second of the server, evloop against its peers.

    python load/bench_ws.py                                   # every server, every scenario
    python load/bench_ws.py --duration 3 --rounds 1 --servers evloop,uvicorn-websockets

Theory of operation
-------------------
Each server echoes text messages on ``/ws/echo`` (evloop-demo's own endpoint;
``load/bench/peers/ws_asgi_app.py`` under uvicorn with ``--ws websockets`` and
with ``--ws wsproto`` and under granian's ASGI interface (Rust HTTP and
WebSocket, one worker, one runtime thread, uvloop for the app, as
``load/bench/run.py`` runs it), ``ws_tornado_app.py`` under tornado), runs on the bench
venv's interpreter (``load/bench/.venv``, built by ``load/bench/run.py``;
uvicorn runs with httptools and uvloop) and is pinned to CPU 0 with
``taskset``.  evloop runs in its default configuration (access log on, to a
file; it logs the 101 of each connection).

The client is this script again (``--client``), pinned to CPU 1: 50 raw
sockets, each past its handshake (no compression offered, so none is used),
each keeping 1 or 16 messages in flight.  Frames are masked once before the
run; a reply is a fixed number of bytes, so the client only counts bytes and
sends one prepared frame back per reply: it costs a fraction of the server's
CPU, and the report shows its share.  The server's CPU time is utime + stime
of its process tree from ``/proc`` at the start and end of the measured
window (after a warm-up); messages per CPU-second is the headline, messages
per second is shown beside it.  Servers take turns round by round; the
report gives the median of the rounds.  It reports; it never asserts.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import select
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "load" / "bench" / "peers"
SERVER_CPU, CLIENT_CPU = "0", "1"
SCENARIOS = {"16B-x1": (16, 1), "4KiB-x1": (4096, 1), "16B-x16": (16, 16), "4KiB-x16": (4096, 16)}
CONNECTIONS = 50
MASK = b"\x12\x34\x56\x78"
_URL = re.compile(r"http://127\.0\.0\.1:(\d+)")


def servers(python: str) -> dict[str, list[str]]:
    uvicorn = [python, "-m", "uvicorn", "ws_asgi_app:app", "--host", "127.0.0.1", "--port", "0", "--http",
               "httptools", "--loop", "uvloop", "--no-access-log", "--log-level", "info", "--ws-ping-interval", "20"]
    return {
        "evloop": [python, "-m", "evloop.demo", "--port", "0", "--backlog", "2048"],
        "uvicorn-websockets": [*uvicorn, "--ws", "websockets"],
        "uvicorn-wsproto": [*uvicorn, "--ws", "wsproto"],
        "tornado": [python, str(PEERS / "ws_tornado_app.py"), "--port", "0"],
        # granian prints the port it was given, so it gets a free one ("{port}", filled in by start_server).
        "granian": [str(Path(python).parent / "granian"), "--interface", "asgi", "--loop", "uvloop", "--host",
                    "127.0.0.1", "--port", "{port}", "--workers", "1", "--runtime-mode", "st", "--runtime-threads",
                    "1", "--blocking-threads", "1", "--http", "1", "--log-level", "info", "--no-access-log",
                    "ws_asgi_app:app"],
    }


# ------------------------------------------------------------------ the client


def masked_text_frame(size: int) -> bytes:
    payload = b"x" * size
    head = bytes((0x81, 0x80 | size)) if size < 126 else bytes((0x81, 0x80 | 126)) + size.to_bytes(2, "big")
    key = int.from_bytes((MASK * (size // 4 + 1))[:size], "big")
    return head + MASK + (int.from_bytes(payload, "big") ^ key).to_bytes(size, "big")


def reply_length(size: int) -> int:
    return size + (2 if size < 126 else 4)


def open_socket(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall((f"GET /ws/echo HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                  f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        chunk = sock.recv(1)
        if not chunk:
            raise ConnectionError(f"closed during the handshake: {head!r}")
        head += chunk
    if not head.startswith(b"HTTP/1.1 101"):
        raise ConnectionError(f"handshake refused: {head[:200]!r}")
    sock.setblocking(False)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def tree_cpu_seconds(pid: int) -> float:
    """utime + stime of ``pid`` and its descendants."""
    children: dict[int, list[int]] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                fields = f.read().rpartition(")")[2].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(entry))
        times[int(entry)] = (int(fields[11]) + int(fields[12])) / tick
    total, todo = 0.0, [pid]
    while todo:
        current = todo.pop()
        total += times.get(current, 0.0)
        todo.extend(children.get(current, ()))
    return total


def run_client(port: int, server_pid: int, size: int, in_flight: int, warmup_s: float, duration_s: float) -> dict:
    """The client's loop, kept cheap so that the server, not the client, is what runs out (the report shows the
    client's CPU): epoll itself rather than ``selectors`` (no key objects a pass), each reply read into one
    reused buffer (``recv(1 << 20)`` allocated, and with glibc mmapped, a MiB a read), and the frames to send
    back prepared for every count of replies one read can hold."""
    reply = reply_length(size)
    frames = [masked_text_frame(size) * count for count in range(in_flight + 1)]
    socks = [open_socket(port) for _ in range(CONNECTIONS)]
    poller = select.epoll()
    connections = {}  # fd -> [socket, bytes of an incomplete reply]
    for sock in socks:
        poller.register(sock.fileno(), select.EPOLLIN)
        connections[sock.fileno()] = [sock, 0]
        sock.sendall(frames[in_flight])
    buffer = bytearray(max(1 << 16, reply * in_flight))
    received = 0
    start = time.monotonic()
    measuring = False
    window_start = cpu_start = client_cpu_start = 0.0
    count_start = 0
    while True:
        now = time.monotonic()
        if not measuring and now - start >= warmup_s:
            measuring = True
            window_start, count_start = now, received
            cpu_start, client_cpu_start = tree_cpu_seconds(server_pid), time.process_time()
        elif measuring and now - window_start >= duration_s:
            break
        for fd, _ in poller.poll(0.5):
            connection = connections[fd]
            sock = connection[0]
            count = sock.recv_into(buffer)
            if not count:
                raise ConnectionError("the server closed a connection")
            done, connection[1] = divmod(connection[1] + count, reply)
            if done:
                received += done
                sock.sendall(frames[done])  # blocking would be a bug: at most in_flight frames are out
    window = time.monotonic() - window_start
    result = {"messages": received - count_start, "seconds": window,
              "server_cpu_s": tree_cpu_seconds(server_pid) - cpu_start,
              "client_cpu_s": time.process_time() - client_cpu_start}
    poller.close()
    for sock in socks:
        sock.close()
    return result


# ------------------------------------------------------------------ the servers


def start_server(name: str, argv: list[str], log_dir: Path) -> tuple[subprocess.Popen, int, Path]:
    log_path = log_dir / f"{name}.log"
    if "{port}" in argv:
        with socket.socket() as probe:  # a port free now; the server binds it a moment later
            probe.bind(("127.0.0.1", 0))
            free = str(probe.getsockname()[1])
        argv = [free if arg == "{port}" else arg for arg in argv]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(PEERS)])}
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(["taskset", "-c", SERVER_CPU, *argv], stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, cwd=PEERS, env=env)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        match = _URL.search(log_path.read_text(errors="replace"))
        if match:
            return proc, int(match.group(1)), log_path
        if proc.poll() is not None:
            break
        time.sleep(0.05)  # waiting on a log file: there is no event to wait on
    proc.kill()
    raise RuntimeError(f"{name} did not start:\n{log_path.read_text(errors='replace')[-2000:]}")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(10)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def measure(name: str, argv: list[str], scenario: str, args: argparse.Namespace, log_dir: Path) -> dict:
    size, in_flight = SCENARIOS[scenario]
    proc, port, _ = start_server(name, argv, log_dir)
    try:
        client = subprocess.run(
            ["taskset", "-c", CLIENT_CPU, sys.executable, __file__, "--client", str(port), str(proc.pid), str(size),
             str(in_flight), str(args.warmup), str(args.duration)],
            capture_output=True, text=True, timeout=args.warmup + args.duration + 60, check=True,
        )
    finally:
        stop_server(proc)
    return json.loads(client.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--client", nargs=6, help=argparse.SUPPRESS)
    parser.add_argument("--servers", default="evloop,uvicorn-websockets,uvicorn-wsproto,tornado,granian")
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--duration", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--python", default=None, help="the servers' interpreter (default: load/bench/.venv's)")
    args = parser.parse_args()
    if args.client:
        port, pid, size, in_flight = (int(v) for v in args.client[:4])
        print(json.dumps(run_client(port, pid, size, in_flight, float(args.client[4]), float(args.client[5]))))
        return
    if shutil.which("taskset") is None:
        sys.exit("taskset (util-linux) is missing")
    python = args.python or str(ROOT / "load" / "bench" / ".venv" / "bin" / "python")
    if not os.path.exists(python):
        sys.exit(f"{python} is missing: build it with load/bench/run.py (or pass --python)")
    table = servers(python)
    names = args.servers.split(",")
    scenarios = args.scenarios.split(",")
    results: dict[tuple[str, str], list[dict]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-ws-") as tmp:
        for round_number in range(args.rounds):
            for scenario in scenarios:
                order = names[round_number % len(names):] + names[:round_number % len(names)]
                for name in order:
                    result = measure(name, table[name], scenario, args, Path(tmp))
                    results.setdefault((name, scenario), []).append(result)
                    print(f"round {round_number + 1} {scenario:9} {name:19} "
                          f"{result['messages'] / result['server_cpu_s']:>9,.0f} msg/CPU-s "
                          f"{result['messages'] / result['seconds']:>9,.0f} msg/s "
                          f"(client CPU {result['client_cpu_s'] / result['seconds']:.0%})", flush=True)
    print(f"\nmedian of {args.rounds} rounds, {CONNECTIONS} connections, {args.duration:g} s each "
          "(messages per CPU-second of the server; messages per second; ratio evloop / server)")
    print(f"| scenario | {' | '.join(names)} |")
    print("| --- |" + " ---: |" * len(names))
    for scenario in scenarios:
        cells = []
        evloop = statistics.median(r["messages"] / r["server_cpu_s"] for r in results.get(("evloop", scenario), [])
                                   ) if ("evloop", scenario) in results else None
        for name in names:
            runs = results[name, scenario]
            per_cpu = statistics.median(r["messages"] / r["server_cpu_s"] for r in runs)
            per_s = statistics.median(r["messages"] / r["seconds"] for r in runs)
            ratio = f", {evloop / per_cpu:.2f}x" if evloop and name != "evloop" else ""
            cells.append(f"{per_cpu:,.0f} ({per_s:,.0f}/s{ratio})")
        print(f"| {scenario} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
