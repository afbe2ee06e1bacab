"""Issue 15, item 6, as the issue measured it: bodies that arrive in small reads, against the real server.

50 connections each send a 10 KB body to ``POST /echo`` a byte per ``send``, round-robin,
so the server reads each body in reads of a byte or a few.  Kept as one ``bytes`` object
per read, the bodies cost ~52 bytes of memory per body byte (26 MB here); joined as they
arrive, about their own size.  (``tests/server/test_body_memory.py`` forces one-byte reads
exactly, in-process.)
"""

from __future__ import annotations

from support.clients import MIB, connect, read_response, rss_bytes

CONNECTIONS, BODY = 50, 10_000


def test_bodies_sent_a_byte_at_a_time_cost_about_their_size(start_demo):
    server = start_demo("--no-access-log")
    socks = [connect(server.port, timeout_s=20) for _ in range(CONNECTIONS)]
    for sock in socks:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % BODY)
    before = rss_bytes(server.proc.pid)
    for _ in range(BODY - 1):
        for sock in socks:
            sock.send(b"x")
    grown = rss_bytes(server.proc.pid) - before
    for sock in socks:
        sock.send(b"x")
    for sock in socks:
        status, _, body = read_response(sock)
        assert status == 200 and body == b"x" * BODY
        sock.close()
    assert grown < 8 * MIB, f"{grown / MIB:.1f} MiB for {CONNECTIONS * BODY / MIB:.1f} MiB of bodies"
