#!/usr/bin/env python3
"""The reactor alone, side by side: evloop's Reactor, asyncio's default loop and uvloop.

Run: .venv/bin/python load/bench_reactor.py [--quick] [--rounds N] [--loops evloop,asyncio,uvloop]
                                            [--results-dir DIR]

Four scenarios, each run for every loop in turn within a round (the order
rotates from round to round, so no loop always goes first); the table gives
the median over ``--rounds`` rounds and the ratios of evloop to each peer.

1. timers.  Schedule 100,000 timers with ``call_later`` (delays spread
   uniformly over 1..100 s, one fixed pseudo-random sequence for every loop,
   so the heap sees a realistic order rather than sorted deadlines), cancel
   them all, then run one pass of the loop.  The wall time (``perf_counter_ns``)
   covers all three steps, because asyncio drops cancelled timers lazily in
   its next pass and uvloop frees a cancelled timer's libuv handle there too:
   leaving the pass out would bill evloop (which compacts while cancelling)
   for work the others defer.  A second, separate pass of the same steps
   under ``tracemalloc`` (which slows allocation several-fold, so it never
   overlaps the timed pass) gives the peak bytes per timer over the sequence
   and the bytes the loop still holds after the pass.  The timed figure also
   includes this script's own ``for`` loop, the same for every event loop,
   which pulls the ratios slightly towards 1.
2. call_soon.  N trivial callbacks queued with ``call_soon`` and run, in
   batches of 10,000 (queue a batch and ``stop``, run the loop: one pass runs
   the batch); callbacks per CPU-second of this process (``process_time``).
3. call_soon_threadsafe wake-up.  The loop sleeps in its selector with no
   timer pending; a plain ``threading.Thread`` sleeps 1 ms (so the loop is
   back asleep), calls ``call_soon_threadsafe(fn, perf_counter())`` and waits
   until ``fn`` has run before sending the next.  The latency is the time from
   that timestamp to the start of ``fn``; median and p99 over the wake-ups
   (after a few unrecorded warm-up ones).  Loops without the method (evloop
   before ``Reactor.call_soon_threadsafe`` exists) show ``n/a``.
4. TCP echo.  The server (an echo protocol: ``data_received`` writes the
   data back) runs in a child process of this script (``--serve-echo LOOP``)
   pinned to one CPU; this process, pinned to another, is a blocking-socket
   client with K connections doing M ping-pong rounds of a 64-byte message
   (each round sends on every connection, then reads every reply, so each
   connection has one message in flight).  The server reports its own CPU
   time (``process_time``: user + system, nanosecond resolution) when asked
   over its stdin, before and after the measured rounds; the figure is
   round-trips per CPU-second of the server, which does not depend on how fast
   the Python client is.  Round-trips per wall-second are reported too, but
   they are bounded by the client.

Every ratio is arranged so that above 1.00 means evloop is better (faster,
smaller).  The goal printed with the table: evloop at least as good as
asyncio on every row, and evloop within 2x of uvloop on echo.  It reports;
it never asserts.  The result is also written as JSON to ``load/results/``
(or ``--results-dir``).

Bounds: each in-process scenario runs under a SIGALRM time limit, every
socket and pipe read has a timeout, and each echo server is stopped by closing
its stdin (it exits on EOF, so it also dies with this process) and killed by
its pid if it has not exited within 5 s.  Only 127.0.0.1 is used.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime
import gc
import json
import os
import platform
import random
import select
import signal
import socket
import statistics
import subprocess
import sys
import threading
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
RESULTS = HERE / "results"
sys.path.insert(0, str(REPO))

from evloop import Protocol, Reactor, listen  # noqa: E402

ALL_LOOPS = ("evloop", "asyncio", "uvloop")

# Sizes per mode.  The full sizes take about 30 s for three loops and three
# rounds on a 2-core machine; --quick is a smoke test of a few seconds.  The
# echo rounds give each measured window about 0.7 s of server CPU time.
SIZES = {
    "full": {
        "timers": 100_000,
        "call_soon": 500_000, "call_soon_batch": 10_000,
        "wakeups": 500, "wakeup_warmup": 10,
        "echo_connections": 16, "echo_rounds": 5_000, "echo_warmup_rounds": 200,
    },
    "quick": {
        "timers": 10_000,
        "call_soon": 50_000, "call_soon_batch": 10_000,
        "wakeups": 50, "wakeup_warmup": 5,
        "echo_connections": 4, "echo_rounds": 300, "echo_warmup_rounds": 30,
    },
}

ECHO_MESSAGE = bytes(range(64))
WAKEUP_GAP_S = 0.001          # between wake-ups: long enough for the loop to be back in select()
WAKEUP_TIMEOUT_S = 5.0        # a wake-up not handled by then counts as a failure
SCENARIO_TIME_LIMIT_S = 120.0  # per loop and scenario, in-process
SOCKET_TIMEOUT_S = 10.0
SERVER_START_TIMEOUT_S = 15.0
SERVER_STOP_TIMEOUT_S = 5.0
CPU_QUERY_TIMEOUT_S = 5.0

# (key, label, unit format, better) for every row of the table, in order.
# ``better`` says which direction is good, so each ratio can be arranged with
# above 1.00 meaning evloop is better.
METRICS = [
    ("timer_ns", "timers: schedule+cancel+pass, ns/timer", "{:,.0f}", "lower"),
    ("timer_peak_bytes", "timers: peak bytes/timer (tracemalloc)", "{:,.1f}", "lower"),
    ("timer_retained_bytes", "timers: bytes retained after cancel+pass", "{:,.0f}", "lower"),
    ("call_soon_per_cpu_s", "call_soon: callbacks per CPU-second", "{:,.0f}", "higher"),
    ("wakeup_median_us", "call_soon_threadsafe wake-up: median us", "{:,.1f}", "lower"),
    ("wakeup_p99_us", "call_soon_threadsafe wake-up: p99 us", "{:,.1f}", "lower"),
    ("echo_per_cpu_s", "TCP echo: round-trips per server CPU-s", "{:,.0f}", "higher"),
    ("echo_per_s", "TCP echo: round-trips per s (client-bound)", "{:,.0f}", "higher"),
]
# Goals, as minimum ratios (evloop better above 1.00).  The wall-clock echo
# rate is bounded by this script's Python client, so it carries no goal.
GOAL_VS_ASYNCIO = {key: 1.0 for key, *_ in METRICS if key != "echo_per_s"}
GOAL_VS_UVLOOP = {"echo_per_cpu_s": 0.5}
# Retained bytes are near zero for a loop that frees cancelled timers, so a
# ratio means nothing there; the goal compares the totals with this slack
# (tracemalloc sees a few small allocations of the interpreter's own).
RETAINED_SLACK_BYTES = 4096


# ------------------------------------------------------------------ loops
def new_loop(name: str) -> Any:
    """A fresh event loop of the named kind."""
    if name == "evloop":
        return Reactor()
    if name == "asyncio":
        return asyncio.new_event_loop()  # the default loop: a selector loop (epoll) on Linux
    if name == "uvloop":
        import uvloop

        return uvloop.new_event_loop()
    raise ValueError(f"unknown loop {name!r}")


def run_loop(loop: Any) -> None:
    """Run until ``loop.stop()``: evloop calls it ``run``, asyncio ``run_forever``."""
    if isinstance(loop, Reactor):
        loop.run()
    else:
        loop.run_forever()


def run_one_pass(loop: Any) -> None:
    """One pass of the loop: ``stop`` is queued behind whatever is ready, so the pass runs it all."""
    loop.call_soon(loop.stop)
    run_loop(loop)


def noop() -> None:
    """The timers' callback (they never fire)."""


class BenchTimeout(Exception):
    pass


@contextlib.contextmanager
def time_limit(seconds: float, what: str, loop: Any = None) -> Iterator[None]:
    """Bound a scenario run in this (main) thread; ``loop``: the loop it may sleep in.

    The handler must both stop the loop and raise.  In evloop and asyncio the
    raise is what leaves the sleeping ``select`` (a handler that returned
    would have the call resumed, PEP 475); uvloop runs Python signal handlers
    inside a callback of its own and logs what they raise, so there ``stop``
    is what ends the run.
    """
    expired = []

    def on_alarm(signum: int, frame: Any) -> None:
        expired.append(True)
        if loop is not None:
            loop.stop()
        raise BenchTimeout(f"{what} took longer than {seconds} s")

    previous = signal.signal(signal.SIGALRM, on_alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    if expired:
        raise BenchTimeout(f"{what} took longer than {seconds} s")


# ----------------------------------------------------------- 1. timers
def timer_delays(n: int) -> list[float]:
    """The same n delays in 1..100 s for every loop, in a fixed pseudo-random order."""
    rng = random.Random(20261126)
    return [rng.uniform(1.0, 100.0) for _ in range(n)]


def bench_timers(name: str, delays: list[float]) -> dict[str, float]:
    n = len(delays)
    result: dict[str, float] = {}

    # Timed pass.
    loop = new_loop(name)
    try:
        run_one_pass(loop)  # first-run set-up (asyncio's running-loop hooks) stays out of the figures
        handles: list[Any] = [None] * n  # allocated up front: the list is the benchmark's, not the loop's
        call_later = loop.call_later
        gc.collect()
        t0 = time.perf_counter_ns()
        for i in range(n):
            handles[i] = call_later(delays[i], noop)
        t1 = time.perf_counter_ns()
        for handle in handles:
            handle.cancel()
        t2 = time.perf_counter_ns()
        run_one_pass(loop)
        t3 = time.perf_counter_ns()
    finally:
        loop.close()
    result["timer_ns"] = (t3 - t0) / n
    result["timer_schedule_ns"] = (t1 - t0) / n
    result["timer_cancel_ns"] = (t2 - t1) / n
    result["timer_pass_ns"] = (t3 - t2) / n
    del handles

    # Memory pass, separate: tracemalloc hooks every allocation and would distort the timing.
    loop = new_loop(name)
    try:
        run_one_pass(loop)
        handles = [None] * n
        nones: list[Any] = [None] * n
        call_later = loop.call_later
        gc.collect()
        tracemalloc.start()
        try:
            base = tracemalloc.get_traced_memory()[0]
            tracemalloc.reset_peak()
            for i in range(n):
                handles[i] = call_later(delays[i], noop)
            for handle in handles:
                handle.cancel()
            # Drop our references (a slice assignment of equal length does not
            # reallocate the list), so what remains is what the loop keeps.
            handles[:] = nones
            run_one_pass(loop)
            gc.collect()  # count what is still reachable, not garbage awaiting a collection
            current, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    finally:
        loop.close()
    result["timer_peak_bytes"] = (peak - base) / n
    result["timer_retained_bytes"] = current - base
    return result


# -------------------------------------------------------- 2. call_soon
calls = 0


def count_call() -> None:
    """The trivial callback: counts, so the run can check every callback ran."""
    global calls
    calls += 1


def bench_call_soon(name: str, n: int, batch: int) -> dict[str, float]:
    global calls
    loop = new_loop(name)
    try:
        run_one_pass(loop)
        call_soon = loop.call_soon
        stop = loop.stop
        batches = n // batch
        calls = 0
        gc.collect()
        t0 = time.process_time()
        for _ in range(batches):
            for _ in range(batch):
                call_soon(count_call)
            call_soon(stop)
            run_loop(loop)
        t1 = time.process_time()
    finally:
        loop.close()
    if calls != batches * batch:
        raise RuntimeError(f"{name}: {calls} of {batches * batch} callbacks ran")
    return {"call_soon_per_cpu_s": batches * batch / (t1 - t0)}


# ------------------------------------------- 3. call_soon_threadsafe wake-up
def bench_wakeup(name: str, count: int, warmup: int) -> dict[str, float] | None:
    """Wake-up latency of call_soon_threadsafe, or None when the loop has no such method."""
    loop = new_loop(name)
    try:
        if not hasattr(loop, "call_soon_threadsafe"):
            return None
        latencies: list[float] = []
        handled = threading.Event()
        failures: list[str] = []

        def on_wakeup(sent: float) -> None:  # on the loop's thread
            latencies.append(time.perf_counter() - sent)
            handled.set()

        def sender() -> None:  # on the other thread
            try:
                for i in range(warmup + count):
                    time.sleep(WAKEUP_GAP_S)
                    handled.clear()
                    loop.call_soon_threadsafe(on_wakeup, time.perf_counter())
                    if not handled.wait(WAKEUP_TIMEOUT_S):
                        failures.append(f"wake-up {i} was not handled within {WAKEUP_TIMEOUT_S} s")
                        break
            except Exception as exc:  # reported by the main thread below
                failures.append(repr(exc))
            finally:
                with contextlib.suppress(Exception):  # the loop may be closed after a time-out
                    loop.call_soon_threadsafe(loop.stop)

        thread = threading.Thread(target=sender, name=f"wakeup-sender-{name}", daemon=True)
        # Started from inside the loop, so no wake-up is sent before the loop runs.
        loop.call_soon(thread.start)
        with time_limit(SCENARIO_TIME_LIMIT_S, f"{name} wake-up", loop):
            run_loop(loop)
        thread.join(WAKEUP_TIMEOUT_S)
    finally:
        loop.close()
    if failures:
        raise RuntimeError(f"{name} wake-up: {failures[0]}")
    samples = latencies[warmup:]
    return {
        "wakeup_median_us": statistics.median(samples) * 1e6,
        "wakeup_p99_us": statistics.quantiles(samples, n=100, method="inclusive")[98] * 1e6,
    }


# ------------------------------------------------------------ 4. TCP echo
class EvloopEcho(Protocol):
    """The README's echo protocol."""

    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False


class AsyncioEcho(asyncio.Protocol):
    def connection_made(self, transport: Any) -> None:
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.transport.write(data)

    def eof_received(self) -> bool:
        return False


def start_tcp_echo(name: str, loop: Any) -> tuple[int, Callable[[], None]]:
    """The TCP echo server on ``loop``: its port, and what closes it."""
    if name == "evloop":
        listener = listen(loop, EvloopEcho, "127.0.0.1", 0)
        return listener.port, listener.close
    server = loop.run_until_complete(loop.create_server(AsyncioEcho, "127.0.0.1", 0))
    return server.sockets[0].getsockname()[1], server.close


def serve_echo(name: str, cpu: int | None,
               start_server: Callable[[str, Any], tuple[int, Callable[[], None]]] = start_tcp_echo) -> None:
    """The child: an echo server on 127.0.0.1, port 0; prints the port, answers CPU queries.

    Each byte read from stdin asks for the CPU time used so far (one line on
    stdout); EOF on stdin stops the server, so it never outlives its parent.
    ``start_server(name, loop)`` makes the server (``load/bench_udp.py`` passes its UDP echo).
    """
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    loop = new_loop(name)

    def on_stdin() -> None:
        data = os.read(0, 64)
        if not data:
            loop.stop()
            return
        for _ in data:
            os.write(1, f"{time.process_time():.9f}\n".encode())

    loop.add_reader(0, on_stdin)
    port, close = start_server(name, loop)
    os.write(1, f"{port}\n".encode())
    try:
        run_loop(loop)
    finally:
        close()
        loop.close()


class EchoServer:
    """A ``--serve-echo`` child process of ``script`` (this one), stopped in ``stop()`` whatever happens."""

    script = Path(__file__).resolve()

    def __init__(self, name: str, cpu: int | None) -> None:
        argv = [sys.executable, str(self.script), "--serve-echo", name]
        if cpu is not None:
            argv += ["--cpu", str(cpu)]
        # Unbuffered pipes: a reply is read with select() and os.read(), which
        # a buffered reader could have emptied into its own buffer.
        self.proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0)
        try:
            self.port = int(self._read_line(SERVER_START_TIMEOUT_S))
        except BaseException:
            self.stop()
            raise

    def _read_line(self, timeout_s: float) -> str:
        assert self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout_s
        data = b""
        while not data.endswith(b"\n"):
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not select.select([fd], [], [], remaining)[0]:
                raise TimeoutError(f"echo server {self.proc.args[-1]} did not answer within {timeout_s} s")
            chunk = os.read(fd, 4096)
            if not chunk:
                raise RuntimeError(f"echo server exited with status {self.proc.wait()}")
            data += chunk
        return data.decode()

    def cpu_seconds(self) -> float:
        """The server's CPU time so far (user + system), as it measures itself."""
        assert self.proc.stdin is not None
        self.proc.stdin.write(b"c")
        return float(self._read_line(CPU_QUERY_TIMEOUT_S))

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            assert self.proc.stdin is not None
            self.proc.stdin.close()  # EOF: the server stops its loop and exits
        try:
            self.proc.wait(SERVER_STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()
        if self.proc.stdout is not None:
            self.proc.stdout.close()


def recv_exactly(sock: socket.socket, size: int) -> bytes:
    data = sock.recv(size)
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the echo server closed the connection")
        data += chunk
    return data


def ping_pong(socks: list[socket.socket], rounds: int) -> None:
    """Each round: one message out on every connection, then every reply read and checked."""
    size = len(ECHO_MESSAGE)
    for _ in range(rounds):
        for sock in socks:
            sock.sendall(ECHO_MESSAGE)
        for sock in socks:
            if recv_exactly(sock, size) != ECHO_MESSAGE:
                raise RuntimeError("the echo server sent back different bytes")


def open_tcp_client(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port), timeout=SOCKET_TIMEOUT_S)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def bench_echo(name: str, connections: int, rounds: int, warmup_rounds: int, server_cpu: int | None, *,
               server_class: type[EchoServer] = EchoServer,
               open_client: Callable[[int], socket.socket] = open_tcp_client) -> dict[str, float]:
    """The echo scenario; ``load/bench_udp.py`` passes its UDP server and client sockets."""
    server = server_class(name, server_cpu)
    socks: list[socket.socket] = []
    try:
        for _ in range(connections):
            socks.append(open_client(server.port))
        ping_pong(socks, warmup_rounds)
        cpu0 = server.cpu_seconds()
        t0 = time.perf_counter()
        ping_pong(socks, rounds)
        t1 = time.perf_counter()
        cpu1 = server.cpu_seconds()
    finally:
        for sock in socks:
            sock.close()
        server.stop()
    round_trips = connections * rounds
    return {
        "echo_per_cpu_s": round_trips / (cpu1 - cpu0),
        "echo_per_s": round_trips / (t1 - t0),
        "echo_server_cpu_s": cpu1 - cpu0,
    }


# ------------------------------------------------------------ the report
def ratio(key: str, better: str, evloop: float | None, other: float | None) -> float | None:
    """evloop against a peer, arranged so that above 1.00 means evloop is better."""
    if evloop is None or other is None or key == "timer_retained_bytes":
        return None
    if better == "higher":
        return evloop / other if other > 0 else None
    return other / evloop if evloop > 0 else None


def goal_met(key: str, peer: str, medians: dict[str, dict[str, float | None]], r: float | None) -> str:
    """'ok', 'MISS' or '' (no goal for this row and peer), for one ratio column."""
    goals = GOAL_VS_ASYNCIO if peer == "asyncio" else GOAL_VS_UVLOOP
    if key not in goals:
        return ""
    if key == "timer_retained_bytes":
        evloop, other = medians[key].get("evloop"), medians[key].get(peer)
        if evloop is None or other is None:
            return ""
        return "ok" if evloop <= other + RETAINED_SLACK_BYTES else "MISS"
    if r is None:
        return ""
    return "ok" if r >= goals[key] else "MISS"


def print_report(loops: list[str], medians: dict[str, dict[str, float | None]],
                 ratios: dict[str, dict[str, float | None]]) -> None:
    peers = [peer for peer in ("asyncio", "uvloop") if peer in loops and "evloop" in loops]
    header = f"{'scenario':44s}" + "".join(f"{name:>14s}" for name in loops)
    header += "".join(f"{'evloop/' + peer:>16s}" for peer in peers)
    print(header)
    print("-" * len(header))
    for key, label, fmt, _ in METRICS:
        if key not in medians:
            continue
        row = f"{label:44s}"
        for name in loops:
            value = medians[key].get(name)
            row += f"{'n/a' if value is None else fmt.format(value):>14s}"
        evloop_missing = "evloop" in loops and medians[key].get("evloop") is None
        for peer in peers:
            r = ratios[key].get(peer)
            goal = goal_met(key, peer, medians, r)
            if evloop_missing:
                cell = "n/a"
            elif key == "timer_retained_bytes":
                cell = "-"
            else:
                cell = "-" if r is None else f"{r:.2f}x"
            row += f"{cell + (' ' + goal if goal else ''):>16s}"
        if evloop_missing:
            row += "   evloop: n/a (not available)"
        print(row)


def git_state() -> dict[str, Any]:
    """The commit measured, and whether evloop/ had uncommitted changes (work in progress)."""
    def git(*args: str) -> str:
        proc = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10)
        return proc.stdout.strip()

    try:
        return {"commit": git("rev-parse", "HEAD"), "evloop_dirty": bool(git("status", "--porcelain", "evloop"))}
    except (OSError, subprocess.SubprocessError):
        return {}


def save_result(results_dir: Path, script: str, fields: dict[str, Any]) -> None:
    """Write ``fields``, after the facts of this run (date, command, Python, machine, commit), as JSON."""
    results_dir.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now()
    path = results_dir / f"{script}-{now:%Y%m%d-%H%M%S}.json"
    result = {
        "date": now.isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "git": git_state(),
        **fields,
    }
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(f"result: {path}")


def parse_arguments(description: str) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    """The command line of this script, shared by ``load/bench_udp.py``."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test of a few seconds")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; the report gives medians (default 3)")
    parser.add_argument("--loops", default=",".join(ALL_LOOPS), help="comma-separated, of: " + ",".join(ALL_LOOPS))
    parser.add_argument("--results-dir", type=Path, default=RESULTS, help="where the JSON goes (default load/results)")
    parser.add_argument("--serve-echo", metavar="LOOP", help=argparse.SUPPRESS)  # the echo child
    parser.add_argument("--cpu", type=int, help=argparse.SUPPRESS)
    return parser, parser.parse_args()


def chosen_loops(parser: argparse.ArgumentParser, args: argparse.Namespace,
                 notes: list[str]) -> tuple[list[str], str | None]:
    """The loops of ``--loops`` (uvloop left out, with a note, when it is not installed) and uvloop's version."""
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    loops = [name.strip() for name in args.loops.split(",") if name.strip()]
    for name in loops:
        if name not in ALL_LOOPS:
            parser.error(f"unknown loop {name!r}; choose from {','.join(ALL_LOOPS)}")
    uvloop_version = None
    if "uvloop" in loops:
        try:
            import uvloop
            uvloop_version = uvloop.__version__
        except ImportError:
            loops.remove("uvloop")
            notes.append("uvloop skipped: not installed (.venv/bin/python -m pip install uvloop)")
    return loops, uvloop_version


def pin_cpus(notes: list[str]) -> tuple[int | None, str]:
    """Pin this process (the client) to the second allowed CPU; the server's CPU (the first) and a description.

    So the server and the client never share a core.
    """
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < 2:
        notes.append("echo: server and client share the only CPU")
        return None, "not pinned (fewer than 2 CPUs available)"
    server_cpu, client_cpu = cpus[0], cpus[1]
    os.sched_setaffinity(0, {client_cpu})
    return server_cpu, f"echo server on CPU {server_cpu}, this process on CPU {client_cpu}"


def main() -> None:
    parser, args = parse_arguments(__doc__.split("\n\n")[0])
    if args.serve_echo:
        serve_echo(args.serve_echo, args.cpu)
        return
    notes: list[str] = []
    loops, uvloop_version = chosen_loops(parser, args, notes)
    server_cpu, pinning = pin_cpus(notes)

    mode = "quick" if args.quick else "full"
    sizes = SIZES[mode]
    delays = timer_delays(sizes["timers"])
    per_round: dict[str, dict[str, list[float | None]]] = {}

    def record(name: str, values: dict[str, float] | None, keys: list[str]) -> None:
        for key in keys:
            per_round.setdefault(key, {}).setdefault(name, []).append(None if values is None else values[key])

    started = time.monotonic()
    for round_no in range(args.rounds):
        order = loops[round_no % len(loops):] + loops[:round_no % len(loops)]
        for name in order:
            # These two never sleep in select (something is always ready), so
            # the time limit needs no loop to stop.
            with time_limit(SCENARIO_TIME_LIMIT_S, f"{name} timers"):
                record(name, bench_timers(name, delays),
                       ["timer_ns", "timer_schedule_ns", "timer_cancel_ns", "timer_pass_ns",
                        "timer_peak_bytes", "timer_retained_bytes"])
            with time_limit(SCENARIO_TIME_LIMIT_S, f"{name} call_soon"):
                record(name, bench_call_soon(name, sizes["call_soon"], sizes["call_soon_batch"]),
                       ["call_soon_per_cpu_s"])
        for name in order:
            record(name, bench_wakeup(name, sizes["wakeups"], sizes["wakeup_warmup"]),
                   ["wakeup_median_us", "wakeup_p99_us"])
        for name in order:
            record(name, bench_echo(name, sizes["echo_connections"], sizes["echo_rounds"],
                                    sizes["echo_warmup_rounds"], server_cpu),
                   ["echo_per_cpu_s", "echo_per_s", "echo_server_cpu_s"])
    elapsed = time.monotonic() - started

    medians: dict[str, dict[str, float | None]] = {}
    for key, by_loop in per_round.items():
        medians[key] = {}
        for name, values in by_loop.items():
            present = [v for v in values if v is not None]
            medians[key][name] = statistics.median(present) if present else None
    ratios: dict[str, dict[str, float | None]] = {}
    for key, _, _, better in METRICS:
        ratios[key] = {peer: ratio(key, better, medians[key].get("evloop"), medians[key].get(peer))
                       for peer in ("asyncio", "uvloop") if peer in loops and "evloop" in loops}
    if "evloop" in loops and medians["wakeup_median_us"].get("evloop") is None:
        notes.append("call_soon_threadsafe: evloop's Reactor has no call_soon_threadsafe yet")

    print(f"evloop reactor microbenchmark ({mode} sizes, median of {args.rounds} round(s), {elapsed:.1f} s)")
    print(f"python {platform.python_version()}, uvloop {uvloop_version or '-'}; {pinning}")
    print(f"timers: {sizes['timers']:,} (delays 1..100 s); call_soon: {sizes['call_soon']:,} in batches of "
          f"{sizes['call_soon_batch']:,}; wake-ups: {sizes['wakeups']}; echo: {sizes['echo_connections']} "
          f"connections x {sizes['echo_rounds']:,} round-trips of {len(ECHO_MESSAGE)} bytes")
    print()
    print_report(loops, medians, ratios)
    print()
    print("ratios: above 1.00x means evloop is better (faster, or fewer bytes)")
    print("goal: evloop >= asyncio on every row (ratio >= 1.00x; retained bytes: no more than asyncio's "
          f"+ {RETAINED_SLACK_BYTES} B), and evloop within 2x of uvloop on echo per CPU-s (ratio >= 0.50x)")
    for note in notes:
        print(f"note: {note}")

    save_result(args.results_dir, "bench_reactor", {
        "uvloop": uvloop_version,
        "pinning": pinning,
        "mode": mode,
        "sizes": sizes,
        "rounds": args.rounds,
        "loops": loops,
        "elapsed_s": round(elapsed, 2),
        "per_round": per_round,
        "medians": medians,
        "ratios": ratios,
        "goal": {"vs_asyncio_min_ratio": GOAL_VS_ASYNCIO, "vs_uvloop_min_ratio": GOAL_VS_UVLOOP},
        "notes": notes,
    })


if __name__ == "__main__":
    main()
