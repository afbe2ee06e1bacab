"""How a streamed TLS batch leaves the socket: a small chunk (a response head) waits in the
outgoing BIO for the next piece's records, and never stays behind."""

from __future__ import annotations

import socket
from typing import Any

import pytest
from test_tls_transport import TIMEOUT_S, ReactorThread, recv_exactly

from evloop import Protocol, listen


@pytest.fixture
def loop_thread():
    thread = ReactorThread()
    yield thread
    thread.stop()


class BatchWriter(Protocol):
    """Each message received: a streamed batch written."""

    def __init__(self, batch: list[bytes]) -> None:
        self.batch = batch

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.sock = transport.get_extra_info("socket")
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)  # every send taken whole

    def data_received(self, data: bytes) -> None:
        self.transport.writelines(list(self.batch))


def test_small_chunks_held_in_the_bio_leave_without_a_close(loop_thread, certs):
    # A small chunk's records wait in the outgoing BIO for the next piece's; the batch's last chunk
    # never waits, so everything arrives while the connection stays open (a close would flush the BIO
    # and hide a chunk left behind).
    batch = [b"h" * 100, b"a" * 10000, b"b" * 9000, b"c" * 65536, b"x" * 5000, b"d" * 70000, b"end"]
    expected = b"".join(batch)
    listener = loop_thread.call(lambda: listen(loop_thread.reactor, lambda: BatchWriter(batch),
                                               "127.0.0.1", 0, ssl=certs.server_context()))
    raw = socket.create_connection(("127.0.0.1", listener.port), timeout=TIMEOUT_S)
    with certs.client_context().wrap_socket(raw, server_hostname="localhost") as client:
        for _ in range(2):
            client.sendall(b"go")
            assert recv_exactly(client, len(expected)) == expected
    loop_thread.call(listener.close)
