"""A transport's send queue is its own only once something must wait (``net/tcp.py`` ``_NothingQueued``).

Until then every transport reads one shared, empty queue.  Against the
plain path (a queue of its own from the start): the same bytes, in the same
order, the same write buffer sizes and the same close, for a transport whose
writes back up, while another transport of the same listener, which never
queued, keeps an empty buffer and sends at once.
"""

from __future__ import annotations

import os
import socket

import pytest

from evloop import Protocol, SocketTransport, listen


class Held(Protocol):
    """Keeps its transport; records connection_lost."""

    def __init__(self) -> None:
        self.transport: SocketTransport | None = None
        self.lost: list[BaseException | None] = []

    def connection_made(self, transport):
        self.transport = transport

    def data_received(self, data):
        pass

    def connection_lost(self, exc):
        self.lost.append(exc)


def _drain(reactor, run_until, client: socket.socket, size: int) -> bytes:
    client.setblocking(False)
    got = bytearray()

    def read() -> bool:
        try:
            while chunk := client.recv(1 << 20):
                got.extend(chunk)
        except BlockingIOError:
            pass
        return len(got) >= size

    run_until(reactor, read, 10)
    return bytes(got)


@pytest.mark.parametrize("own_from_start", [False, True], ids=["shared-until-needed", "plain"])
def test_a_backed_up_transport_queues_in_its_own_queue_and_the_others_stay_empty(reactor, run_until,
                                                                                  own_from_start):
    made: list[Held] = []

    def factory() -> Held:
        made.append(Held())
        return made[-1]

    listener = listen(reactor, factory, "127.0.0.1", 0)
    try:
        slow = socket.socket()
        slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 64 * 1024)  # before connecting: a small window
        slow.settimeout(5)
        slow.connect(("127.0.0.1", listener.port))
        quick = socket.create_connection(("127.0.0.1", listener.port), timeout=5)
        run_until(reactor, lambda: len(made) == 2 and all(p.transport is not None for p in made))
        backed, other = made[0].transport, made[1].transport
        assert backed is not None and other is not None
        if own_from_start:
            backed._own_queue()  # the plain path: a queue of its own before the first write
        payload = os.urandom(24 * 1024 * 1024)
        backed.write(payload[:8 * 1024 * 1024])
        backed.writelines([payload[8 * 1024 * 1024:16 * 1024 * 1024], bytearray(payload[16 * 1024 * 1024:])])
        queued = backed.get_write_buffer_size()
        assert 0 < queued < len(payload)  # the slow client reads nothing yet
        # The other transport never queued: its buffer is empty and its writes go out at once.
        assert other.get_write_buffer_size() == 0
        other.write(b"quick")
        other.writelines([b" and ", bytearray(b"gathered")])
        assert other.get_write_buffer_size() == 0
        assert quick.recv(100) == b"quick and gathered"
        backed.close()  # after the queue drains
        assert made[0].lost == []
        assert _drain(reactor, run_until, slow, len(payload)) == payload
        run_until(reactor, lambda: made[0].lost == [None])
        assert backed.get_write_buffer_size() == 0
        other.abort()  # the shared queue is not cleared: there is nothing in it
        assert made[1].lost == []  # connection_lost comes on the next pass, as reactor.call_soon's would
        run_until(reactor, lambda: made[1].lost == [None])
        assert other.get_write_buffer_size() == 0
        slow.close()
        quick.close()
    finally:
        listener.close()
