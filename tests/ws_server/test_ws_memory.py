"""WebSocket memory against the real ``evloop-demo``: idle connections, and peers that never read."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest
from _ws_raw import handshake_request, masked, open_raw, read_frame
from support.clients import MIB, rss_bytes
from support.demo import DemoStarter, wait_for_log

HERE = Path(__file__).resolve().parent
IDLE_CONNECTIONS = 1000


@pytest.fixture
def start_demo(tmp_path):
    starter = DemoStarter(tmp_path)
    yield starter
    starter.stop_all()


def flood_app_env() -> dict[str, str]:
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(HERE), os.environ.get("PYTHONPATH")]))}


def test_idle_websockets_cost_at_most_4_kib_each(start_demo, capsys):
    server = start_demo("--no-access-log")  # pings on (20 s): each connection has its timer
    warm = [open_raw(server.port) for _ in range(50)]  # the allocator's pools and the code paths exist
    for sock in warm:
        sock.sendall(masked(0x1, b"warm"))
        assert read_frame(sock) == (0x1, b"warm")
    before = rss_bytes(server.proc.pid)
    held = [open_raw(server.port) for _ in range(IDLE_CONNECTIONS)]  # each past its 101: switched
    held[-1].sendall(masked(0x1, b"last"))
    assert read_frame(held[-1]) == (0x1, b"last")
    per_connection_kib = (rss_bytes(server.proc.pid) - before) / IDLE_CONNECTIONS / 1024
    with capsys.disabled():
        print(f"\nidle WebSocket connections: {per_connection_kib:.2f} KiB each (server RSS, "
              f"{IDLE_CONNECTIONS} connections, no compression)")
    assert per_connection_kib <= 4.0
    for sock in warm + held:
        sock.close()


def never_reading(port: int, path: str) -> socket.socket:
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # the kernel holds little for us
    sock.settimeout(10)
    sock.connect(("127.0.0.1", port))
    sock.sendall(handshake_request(path))
    return sock  # and never reads a byte


def test_peers_that_never_read_cost_bounded_memory_and_are_cut_off_at_the_send_timeout(start_demo):
    server = start_demo("--no-access-log", "--app", "ws_flood_app:app", "--send-timeout", "1", env=flood_app_env())
    before = rss_bytes(server.proc.pid)
    peers = [never_reading(server.port, "/polite") for _ in range(10)]
    wait_for_log(server, r"WebSocket send timeout: peer \S+ stopped reading; aborting", timeout_s=15, count=10)
    growth = rss_bytes(server.proc.pid) - before
    # Each queue stops at 1 MiB (the app's own bound): 10 MiB of frames and their bookkeeping.
    assert growth < 20 * MIB, f"{growth / MIB:.1f} MiB"
    for sock in peers:
        sock.close()


def test_an_app_that_ignores_backpressure_is_cut_off_at_the_queue_bound(start_demo):
    server = start_demo("--no-access-log", "--app", "ws_flood_app:app", "--ws-max-queue", str(2 * MIB),
                        env=flood_app_env())
    before = rss_bytes(server.proc.pid)
    peers = [never_reading(server.port, "/rude") for _ in range(5)]
    wait_for_log(server, r"over 2097152 bytes queued \(the app ignores backpressure\); aborting", timeout_s=15,
                 count=5)
    assert rss_bytes(server.proc.pid) - before < 20 * MIB
    for sock in peers:
        sock.close()
