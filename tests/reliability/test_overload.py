"""Overload: pipelining floods, 2,000 concurrent slow requests, --max-connections."""

from __future__ import annotations

import errno
import os
import selectors
import socket
import time

from support.clients import (
    MIB,
    Responses,
    connect,
    error_lines,
    request,
    rss_bytes,
    wait_until,
)


def _drive(port: int, payloads: list[bytes], expected: list[int], timeout_s: float, pid: int | None = None,
           connect_nonblocking: bool = False) -> tuple[list[Responses], int]:
    """Open one connection per payload, send it all while reading; return the parsers and peak RSS.

    ``expected[i]`` is how many responses connection ``i`` must get.
    """
    sel = selectors.DefaultSelector()
    states = []
    for i, payload in enumerate(payloads):
        sock = socket.socket()
        sock.setblocking(False)
        err = sock.connect_ex(("127.0.0.1", port))
        assert err in (0, errno.EINPROGRESS), os.strerror(err)
        state = {"sock": sock, "out": memoryview(payload), "parser": Responses(), "want": expected[i]}
        states.append(state)
        sel.register(sock, selectors.EVENT_READ | selectors.EVENT_WRITE, state)
    pending = len(states)
    peak = 0
    deadline = time.monotonic() + timeout_s
    next_sample = 0.0
    try:
        while pending:
            assert time.monotonic() < deadline, f"{pending} connections unfinished after {timeout_s} s"
            if pid is not None and time.monotonic() >= next_sample:
                peak = max(peak, rss_bytes(pid))
                next_sample = time.monotonic() + 0.05
            for key, events in sel.select(timeout=0.05):
                state = key.data
                sock = state["sock"]
                if events & selectors.EVENT_WRITE and state["out"]:
                    try:
                        sent = sock.send(state["out"][:256 * 1024])
                        state["out"] = state["out"][sent:]
                    except BlockingIOError:
                        pass
                    if not state["out"]:
                        sel.modify(sock, selectors.EVENT_READ, state)
                if events & selectors.EVENT_READ:
                    data = sock.recv(1 << 20)
                    assert data, f"server closed connection {states.index(state)} early after {len(state['parser'].parsed)} responses"
                    state["parser"].feed(data)
                    if len(state["parser"].parsed) >= state["want"]:
                        sel.unregister(sock)
                        sock.close()
                        pending -= 1
    finally:
        for state in states:
            state["sock"].close()
        sel.close()
    return [state["parser"] for state in states], peak


FLOOD_CONNECTIONS = 20
FLOOD_REQUESTS = 2_000
BURST = 10_000
FLOOD_RSS_BOUND = 48 * MIB


def test_pipelining_flood_is_answered_in_order_with_bounded_memory(start_demo):
    server = start_demo("--no-access-log")
    pid = server.proc.pid
    assert request(server.port, "/bytes/100")[0] == 200
    base = rss_bytes(pid)
    # Each connection pipelines /bytes/k with k varying: the body lengths prove the order.
    sizes = [[(c * 7 + i) % 97 + 1 for i in range(FLOOD_REQUESTS)] for c in range(FLOOD_CONNECTIONS)]
    payloads = [b"".join(b"GET /bytes/%d HTTP/1.1\r\nHost: t\r\n\r\n" % k for k in ks) for ks in sizes]
    # Pipelined static files (sendfile) on one more connection.
    payloads.append(b"GET /static/style.css HTTP/1.1\r\nHost: t\r\n\r\n" * FLOOD_REQUESTS)
    # And one connection sends 10,000 pipelined requests in one burst.
    payloads.append(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n" * BURST)
    started = time.monotonic()
    parsers, peak = _drive(server.port, payloads, [FLOOD_REQUESTS] * (FLOOD_CONNECTIONS + 1) + [BURST], 60,
                           pid=pid)
    elapsed = time.monotonic() - started
    for ks, parser in zip(sizes, parsers[:len(sizes)], strict=True):  # the last two are checked below
        assert [len(body) for _, _, body in parser.parsed] == ks
        assert all(status == 200 for status, _, _ in parser.parsed)
    css = request(server.port, "/static/style.css")[2]
    assert [body for _, _, body in parsers[-2].parsed] == [css] * FLOOD_REQUESTS
    assert [body for _, _, body in parsers[-1].parsed] == [b"Hello, World!"] * BURST
    total = (FLOOD_CONNECTIONS + 1) * FLOOD_REQUESTS + BURST
    print(f"pipelining flood: {total} requests on {FLOOD_CONNECTIONS + 2} connections answered in order "
          f"in {elapsed:.2f} s; RSS {base / MIB:.1f} MiB -> peak {peak / MIB:.1f} MiB")
    assert peak - base < FLOOD_RSS_BOUND
    assert not error_lines(server.log())


def test_pipelining_flood_that_never_reads_pauses_reading(start_demo):
    """A client that pipelines without reading: the server stops reading, memory stays flat."""
    server = start_demo("--no-access-log")
    pid = server.proc.pid
    base = rss_bytes(pid)
    sock = connect(server.port)
    sock.setblocking(False)
    request_bytes = b"GET /inspect HTTP/1.1\r\nHost: t\r\n\r\n"
    sent = 0
    stalled_since = None
    deadline = time.monotonic() + 20
    # Keep writing until the server stops reading (our sends stall for 0.5 s).
    while time.monotonic() < deadline:
        try:
            sent += sock.send(request_bytes * 1000)
            stalled_since = None
        except BlockingIOError:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 0.5:
                break
            time.sleep(0.01)
    growth = rss_bytes(pid) - base
    print(f"unread pipelining: server stopped reading after {sent / MIB:.1f} MiB of requests; "
          f"RSS growth {growth / MIB:.1f} MiB")
    assert stalled_since is not None, "the server never stopped reading"
    assert growth < 16 * MIB
    sock.close()


DELAYED = 2_000


def test_2000_concurrent_delayed_requests_finish_promptly(start_demo, nofile):
    nofile(DELAYED + 500)
    server = start_demo("--no-access-log", "--backlog", "4096")
    payloads = [b"GET /delay/200 HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n"] * DELAYED
    started = time.monotonic()
    parsers, _ = _drive(server.port, payloads, [1] * DELAYED, 30)
    elapsed = time.monotonic() - started
    assert all(p.parsed[0][0] == 200 and p.parsed[0][2] == b"delayed" for p in parsers)
    print(f"{DELAYED} concurrent /delay/200: all answered in {elapsed:.2f} s")
    assert elapsed < 5.0


LIMIT = 10


def _socket_fds(pid: int) -> int:
    count = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{name}").startswith("socket:"):
                count += 1
        except FileNotFoundError:
            pass
    return count


def test_max_connections_stops_accepting_and_logs_once_per_episode(start_demo):
    server = start_demo("--max-connections", str(LIMIT), "--no-access-log")
    pid = server.proc.pid
    base_sockets = _socket_fds(pid)
    clients = []
    for _ in range(3 * LIMIT):
        sock = connect(server.port)    # completes in the kernel's backlog even when not accepted
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
        sock.setblocking(False)
        clients.append(sock)

    def answered() -> list[socket.socket]:
        done = []
        for sock in clients:
            try:
                if sock.recv(4096, socket.MSG_PEEK):
                    done.append(sock)
            except BlockingIOError:
                pass
        return done

    wait_until(lambda: len(answered()) >= LIMIT, 5, what=f"{LIMIT} answers")
    assert _socket_fds(pid) - base_sockets == LIMIT
    assert len(answered()) == LIMIT
    # Hover at the limit: close one served client at a time; one waiting client gets in each time.
    served = 0
    for _ in range(2 * LIMIT):
        done = answered()
        victim = done[0]
        clients.remove(victim)
        victim.close()
        served += 1
        wait_until(lambda: len(answered()) == min(LIMIT, len(clients)), 5, what="the next client admitted")
        assert _socket_fds(pid) - base_sockets <= LIMIT
    assert served == 2 * LIMIT and len(clients) == LIMIT
    log = server.log()
    pauses = log.count("pausing accepts")
    print(f"--max-connections {LIMIT}: {3 * LIMIT} clients, never more than {LIMIT} accepted; "
          f"{2 * LIMIT + 1} pauses at the limit logged {pauses} time(s)")
    assert pauses == 1
    for sock in clients:
        sock.close()
    wait_until(lambda: _socket_fds(pid) == base_sockets, 5, what="all connections closed")
    assert request(server.port, "/")[0] == 200
    assert not error_lines(server.log())
