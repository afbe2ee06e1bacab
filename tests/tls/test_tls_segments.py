"""How a streamed TLS batch leaves the socket: TCP segments and send calls, not only the bytes.

A 64 KiB plaintext piece is 65,624 bytes of ciphertext (four records), a
little over loopback's MSS (65,483): sent one piece a call with TCP_NODELAY,
every piece was a full segment and a 141-byte one.  ``SocketTransport.write(more=True)``
(``MSG_MORE``) lets the kernel hold such a tail for the next piece, so a
batch leaves in about as many segments as its size needs (Linux only:
``TCP_INFO``'s segment counter).  And a small chunk held in the outgoing BIO
for the next piece never stays behind.
"""

from __future__ import annotations

import queue
import socket
import struct
import sys
from typing import Any

import pytest
from test_tls_transport import TIMEOUT_S, ReactorThread, recv_exactly

from evloop import Protocol, listen

linux_only = pytest.mark.skipif(sys.platform != "linux", reason="TCP_INFO's layout and MSG_MORE are Linux's")

_TCPI_SND_MSS = 16          # offsets in struct tcp_info (linux/tcp.h)
_TCPI_DATA_SEGS_OUT = 156
_PIECE = 64 * 1024
_PIECES = 4
_WARM_UP = 2
_MEASURED = 8


@pytest.fixture
def loop_thread():
    thread = ReactorThread()
    yield thread
    thread.stop()


def _segments_and_mss(sock: socket.socket) -> tuple[int, int]:
    info = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
    return struct.unpack_from("I", info, _TCPI_DATA_SEGS_OUT)[0], struct.unpack_from("I", info, _TCPI_SND_MSS)[0]


class BatchWriter(Protocol):
    """Each message received: the TCP counters of its socket into ``counts``, then a streamed batch written."""

    def __init__(self, counts: queue.Queue[tuple[int, int]], batch: list[bytes]) -> None:
        self.counts = counts
        self.batch = batch

    def connection_made(self, transport: Any) -> None:
        self.transport = transport
        self.sock = transport.get_extra_info("socket")
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4 << 20)  # every send taken whole

    def data_received(self, data: bytes) -> None:
        self.counts.put(_segments_and_mss(self.sock))
        self.transport.writelines(list(self.batch))


@linux_only
def test_a_streamed_batch_leaves_in_about_as_many_segments_as_its_size_needs(loop_thread, certs):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 262144\r\n\r\n"
    batch = [head] + [bytes([65 + i]) * _PIECE for i in range(_PIECES)]
    expected = b"".join(batch)
    counts: queue.Queue[tuple[int, int]] = queue.Queue()
    listener = loop_thread.call(lambda: listen(loop_thread.reactor, lambda: BatchWriter(counts, batch),
                                               "127.0.0.1", 0, ssl=certs.server_context()))
    raw = socket.socket()
    raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    raw.settimeout(TIMEOUT_S)
    raw.connect(("127.0.0.1", listener.port))
    with certs.client_context().wrap_socket(raw, server_hostname="localhost") as client:
        marks = []
        for i in range(_WARM_UP + _MEASURED + 1):  # the first batches open the window (the MSS is bounded by half of it)
            client.sendall(b"go")
            marks.append(counts.get(timeout=TIMEOUT_S))
            if i < _WARM_UP + _MEASURED:
                assert recv_exactly(client, len(expected)) == expected
    loop_thread.call(listener.close)
    segments = marks[-1][0] - marks[_WARM_UP][0]
    mss = marks[-1][1]
    assert mss < _PIECE + 22 * 4  # a piece's ciphertext does not fit one segment (else there is nothing to save)
    # One piece a send without MSG_MORE: at least two segments a piece, whatever the timing.  With it,
    # a tail waits for the next piece unless an ACK comes between the two sends (the socket has
    # TCP_NODELAY, so an ACK pushes it): about 5.6 a batch on loopback, 4 at best.
    assert segments < 2 * _PIECES * _MEASURED, (segments, mss)


def test_small_chunks_held_in_the_bio_leave_without_a_close(loop_thread, certs):
    # A small chunk's records wait in the outgoing BIO for the next piece's; the batch's last chunk
    # never waits, so everything arrives while the connection stays open (a close would flush the BIO
    # and hide a chunk left behind).
    batch = [b"h" * 100, b"a" * 10000, b"b" * 9000, b"c" * 65536, b"x" * 5000, b"d" * 70000, b"end"]
    expected = b"".join(batch)
    counts: queue.Queue[tuple[int, int]] = queue.Queue()
    listener = loop_thread.call(lambda: listen(loop_thread.reactor, lambda: BatchWriter(counts, batch),
                                               "127.0.0.1", 0, ssl=certs.server_context()))
    raw = socket.create_connection(("127.0.0.1", listener.port), timeout=TIMEOUT_S)
    with certs.client_context().wrap_socket(raw, server_hostname="localhost") as client:
        for _ in range(2):
            client.sendall(b"go")
            assert recv_exactly(client, len(expected)) == expected
    loop_thread.call(listener.close)
