"""Descriptor exhaustion: EMFILE on accept backs off (no spin), logs once, recovers."""

from __future__ import annotations

import resource
import time

from support.clients import connect, cpu_seconds, error_lines, fd_count, read_response, request, wait_until

LIMIT = 256
CLIENTS = 400
CPU_WINDOW_S = 3.0
CPU_BOUND_S = 0.3        # at most 10 % of one core while the clients hold every descriptor


def _nofile_limits(pid: int) -> tuple[int, int]:
    with open(f"/proc/{pid}/limits") as f:
        for line in f:
            if line.startswith("Max open files"):
                soft, hard = line.split()[3:5]
                return int(soft), int(hard)
    raise AssertionError("no 'Max open files' in /proc/PID/limits")


def test_fd_exhaustion_does_not_spin_and_recovers(start_demo, nofile):
    nofile(CLIENTS + 200)
    server = start_demo(
        "--header-timeout", "60", "--keepalive-timeout", "60", "--no-access-log",
        preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, LIMIT)),
    )
    pid = server.proc.pid
    assert _nofile_limits(pid) == (LIMIT, LIMIT)
    clients = [connect(server.port) for _ in range(CLIENTS)]   # the backlog takes what is not accepted
    for sock in clients:
        # A request begun: the connection is accepted now, in order (the server defers accepting a silent one
        # for a second, after which the kernel hands them over in no set order), and clients[0] is served.
        sock.sendall(b"GET / HTTP/1.1\r\n")
    wait_until(lambda: "accept() failed" in server.log(), 5, what="the EMFILE log line")
    assert fd_count(pid) == LIMIT

    cpu_before = cpu_seconds(pid)
    time.sleep(CPU_WINDOW_S)   # measuring CPU use over a window: there is no event to wait for
    cpu_used = cpu_seconds(pid) - cpu_before
    print(f"fd exhaustion: {CLIENTS} clients, limit {LIMIT}: server CPU {cpu_used:.3f} s "
          f"in {CPU_WINDOW_S} s while accept() fails")
    assert cpu_used < CPU_BOUND_S

    # The connections it did accept are still served.
    clients[0].sendall(b"Host: t\r\n\r\n")
    assert read_response(clients[0])[0] == 200
    log = server.log()
    assert log.count("accept() failed") == 1, "the EMFILE episode is logged once"

    for sock in clients:
        sock.close()
    started = time.monotonic()
    wait_until(lambda: _serves(server.port), 10, interval_s=0.05, what="serving again")
    print(f"fd exhaustion: serving again {time.monotonic() - started:.2f} s after the clients left")
    assert "accepting connections again" in server.log()
    assert not [line for line in error_lines(server.log()) if "accept() failed" not in line]


def _serves(port: int) -> bool:
    try:
        return request(port, "/", timeout_s=2)[0] == 200
    except OSError:
        return False


def test_soft_nofile_limit_is_raised_to_the_hard_limit_at_start(start_demo):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard <= LIMIT:
        hard = 4096
    server = start_demo(preexec_fn=lambda: resource.setrlimit(resource.RLIMIT_NOFILE, (LIMIT, hard)))
    assert _nofile_limits(server.proc.pid) == (hard, hard)
    assert f"RLIMIT_NOFILE from {LIMIT} to {hard}" in server.log()
