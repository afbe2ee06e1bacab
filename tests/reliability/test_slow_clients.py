"""Slowloris and slow readers against the real demo server, with /proc figures."""

from __future__ import annotations

import selectors
import socket
import threading
import time

from support.clients import MIB, connect, error_lines, fd_count, request, rss_bytes, wait_until

SLOWLORIS_CONNECTIONS = 300
HEADER_TIMEOUT_S = 2.0


def test_slowloris_closed_at_header_deadline_while_others_are_served(start_demo, nofile):
    nofile(SLOWLORIS_CONNECTIONS + 200)
    server = start_demo("--header-timeout", str(HEADER_TIMEOUT_S), "--no-access-log")
    sel = selectors.DefaultSelector()
    opened: dict[socket.socket, float] = {}
    late: list[socket.socket] = []
    for i in range(SLOWLORIS_CONNECTIONS):
        sock = connect(server.port)
        sock.setblocking(False)
        if i % 6 == 0:
            # Silent for a second first: the deadline counts from the accept, which Linux defers until the first
            # bytes come (--deferred-accept, on by default), at most a second.
            late.append(sock)
        else:
            sock.send(b"GET / HTTP/1.1\r\n")
        opened[sock] = time.monotonic()
        sel.register(sock, selectors.EVENT_READ)

    silent = set(late)
    good: list[float] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def well_behaved() -> None:
        while not stop.is_set():
            started = time.monotonic()
            try:
                status, _, body = request(server.port, "/", timeout_s=5)
                assert (status, body) == (200, b"Hello, World!")
                good.append(time.monotonic() - started)
            except BaseException as exc:  # reported by the main thread
                failures.append(exc)
            stop.wait(0.02)

    client = threading.Thread(target=well_behaved)
    client.start()
    closed_after: dict[socket.socket, float] = {}
    deadline = time.monotonic() + HEADER_TIMEOUT_S + 4
    next_byte = 0.0
    try:
        while len(closed_after) < len(opened) and time.monotonic() < deadline:
            now = time.monotonic()
            if late and now - opened[late[0]] > 1.0:
                for sock in late:
                    sock.send(b"GET / HTTP/1.1\r\n")
                late = []
            if now >= next_byte:
                # Trickle one header byte per connection every 200 ms: each
                # byte is progress, but the head deadline must not move.
                next_byte = now + 0.2
                for sock in opened:
                    if sock not in closed_after and sock not in late:
                        try:
                            sock.send(b"X")
                        except OSError:
                            pass
            for key, _ in sel.select(timeout=0.05):
                sock = key.fileobj
                try:
                    data = sock.recv(65536)
                except OSError:
                    data = b""
                if not data or b"408" in data:
                    closed_after[sock] = time.monotonic() - opened[sock]
                    sel.unregister(sock)
    finally:
        stop.set()
        client.join(10)
        for sock in opened:
            sock.close()
        sel.close()

    assert not failures, failures[:3]
    assert len(closed_after) == SLOWLORIS_CONNECTIONS, f"only {len(closed_after)} slowloris connections closed"
    earliest, latest = min(closed_after.values()), max(closed_after.values())
    latest_speaking = max(after for sock, after in closed_after.items() if sock not in silent)
    print(f"slowloris: {SLOWLORIS_CONNECTIONS} closed after {earliest:.2f}..{latest:.2f} s; "
          f"{len(good)} good requests, slowest {max(good):.3f} s")
    assert earliest >= HEADER_TIMEOUT_S - 0.05
    assert latest_speaking <= HEADER_TIMEOUT_S + 0.5
    assert latest <= HEADER_TIMEOUT_S + 1.0 + 0.5  # the silent ones: accepted with their first bytes, a second on
    assert len(good) >= 20 and max(good) < 1.0
    assert not error_lines(server.log())


SLOW_READERS = 50
BIG = 100 * MIB
RSS_BOUND = 24 * MIB      # growth over the idle server's resident size
SEND_TIMEOUT_S = 3.0


def test_slow_readers_cost_bounded_memory_and_are_dropped_at_send_timeout(start_demo):
    server = start_demo("--send-timeout", str(SEND_TIMEOUT_S), "--no-access-log")
    pid = server.proc.pid
    assert request(server.port, "/bytes/1000000")[0] == 200   # warm up the code paths
    base_rss, base_fds = rss_bytes(pid), fd_count(pid)

    readers = []
    for _ in range(SLOW_READERS):
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)
        sock.connect(("127.0.0.1", server.port))
        sock.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: t\r\n\r\n" % BIG)
        readers.append(sock)
    # One reader that keeps reading slowly: it must not be dropped.
    steady = connect(server.port)
    steady.sendall(b"GET /bytes/%d HTTP/1.1\r\nHost: t\r\n\r\n" % BIG)
    steady_bytes = 0

    peak = 0
    started = time.monotonic()
    while time.monotonic() - started < SEND_TIMEOUT_S - 0.5:
        peak = max(peak, rss_bytes(pid))
        steady_bytes += len(steady.recv(64 * 1024))
        time.sleep(0.05)   # sampling period of the slow reader and of RSS
    growth = peak - base_rss
    print(f"slow readers: RSS {base_rss / MIB:.1f} MiB idle, peak {peak / MIB:.1f} MiB "
          f"(+{growth / MIB:.1f} MiB) with {SLOW_READERS} x 100 MiB responses pending")
    assert growth < RSS_BOUND

    # The stalled readers are aborted at the send timeout; the steady one survives.
    wait_until(lambda: fd_count(pid) <= base_fds + 1, SEND_TIMEOUT_S + 3, what="stalled readers aborted")
    dropped_at = time.monotonic() - started
    for _ in range(20):
        steady_bytes += len(steady.recv(64 * 1024))
    assert steady_bytes > 1 * MIB
    print(f"slow readers: aborted {dropped_at:.1f} s after the start (send timeout {SEND_TIMEOUT_S} s); "
          f"steady reader got {steady_bytes / MIB:.1f} MiB and is still served")
    for sock in readers:
        sock.close()
    steady.close()
    assert request(server.port, "/")[0] == 200
    assert not error_lines(server.log())
